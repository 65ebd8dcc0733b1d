"""The short plan a call row may show before its calls ("I'll use get_weather for this."): lines
by kind from `data/requests/reasoning.yaml`, human-written data."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

KINDS = ("single", "parallel", "multiple", "chain_start", "chain_next")


def load_reasoning(path: Path) -> dict[str, list[str]]:
    """Read the reasoning lines; every key of `KINDS` needs a non-empty list of strings.

    Raises:
        ValueError: A kind is missing or empty, or a key is unknown, naming the file.
    """
    lines = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    unknown = sorted(set(lines) - set(KINDS))
    missing = [k for k in KINDS if not (isinstance(lines.get(k), list) and lines[k]
                                        and all(isinstance(t, str) for t in lines[k]))]
    if unknown or missing:
        raise ValueError(f"{path}: every kind of {list(KINDS)} needs a non-empty list of "
                         f"lines (missing or not a list: {missing}; unknown: {unknown})")
    return lines


def reasoning_text(lines: dict[str, list[str]], kind: str, names: list[str],
                   rng: random.Random, step: int = 0) -> str:
    """One line for a row of `kind` calling `names`, with the space before the calls; `step` is
    the chain step (0: the first)."""
    if kind == "chain":
        kind = "chain_next" if step > 0 else "chain_start"
    line = rng.choice(lines[kind])
    return line.format(tool=names[0], tools=" and ".join(names)) + " "
