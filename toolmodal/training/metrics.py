"""Per-step training metrics: one JSON line per logged step, plus optional callbacks.

The JSONL file is the record of a run (it survives a kill and is appended to on resume); the
callbacks let the pipeline forward the same dicts elsewhere (e.g. MLflow) without this module
knowing about it. A TRL `TrainerCallback` adapter feeds TRL trainers' logs into the same file.
Deliberately left out: plotting and any tracker client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

MetricsHook = Callable[[int, dict[str, float]], None]


class MetricsLogger:
    """Appends `{"step": N, ...metrics}` lines to a JSONL file and calls the hooks."""

    def __init__(self, path: Path, hooks: list[MetricsHook] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hooks = list(hooks or [])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Write one line (flushed at once, so a killed run keeps its history) and call hooks."""
        clean = {k: _number(v) for k, v in metrics.items()}
        with self.path.open("a") as fh:
            fh.write(json.dumps({"step": step, **clean}) + "\n")
        for hook in self.hooks:
            hook(step, clean)


def _number(value) -> float | int | str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: Path) -> list[dict]:
    """All lines of a metrics file, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class MetricsCallback(TrainerCallback):
    """Forwards a TRL/transformers Trainer's `on_log` dicts to a `MetricsLogger`."""

    def __init__(self, logger: MetricsLogger) -> None:
        self.logger = logger

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 (Trainer API)
        numeric = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float)}
        self.logger.log(state.global_step, numeric)
