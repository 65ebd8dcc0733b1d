"""ZenML steps: one thin `@step` per file over the core package `toolmodal`."""
