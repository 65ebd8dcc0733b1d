"""ZenML materializers for toolmodal's own artifact types (never for builtins)."""
