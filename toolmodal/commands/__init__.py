"""Sub-command implementations of the `toolmodal` CLI, one module per area."""
