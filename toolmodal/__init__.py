"""toolmodal: tool schemas in, a small tool-calling model out (core package, no ZenML)."""
