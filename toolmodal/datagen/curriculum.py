"""Curriculum: how hard an example is, and ordering or staging a dataset by it.

Difficulty adds up what makes a call hard to get right: tools offered (3 -> 20+), arguments to
fill, nesting depth of the values, calls in the turn and steps in a chain. Every row carries it;
`order_by_difficulty` and `stage_by_difficulty` turn it into a schedule.

Deliberately left out: the schedule itself (the training stage decides whether to sort, stage or
ignore it).
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

TOOL_LEVELS = (3, 6, 12, 19)  # <=3 tools: 0, <=6: 1, <=12: 2, <=19: 3, 20+: 4


def difficulty(n_tools: int, n_args: int, depth: int, n_calls: int, chain_steps: int) -> int:
    """Difficulty from 1 (one tool, one argument) to about 12.

    Args:
        n_tools: Tools offered in the prompt.
        n_args: Leaf argument values in the target calls.
        depth: Deepest nesting of an argument value (0 for scalars).
        n_calls: Calls in the target.
        chain_steps: Steps of the chain the row belongs to (1 if none).
    """
    tools_level = sum(n_tools > level for level in TOOL_LEVELS)
    args_level = 0 if n_args <= 1 else 1 if n_args <= 3 else 2
    return 1 + tools_level + args_level + depth + (n_calls - 1) + (chain_steps - 1)


def value_depth(value: Any) -> int:
    """Nesting depth of a JSON value: 0 for scalars, +1 per array/object level."""
    if isinstance(value, dict):
        return 1 + max((value_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((value_depth(v) for v in value), default=0)
    return 0


def leaf_count(value: Any) -> int:
    """Number of scalar leaves in a JSON value."""
    if isinstance(value, dict):
        return sum(leaf_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaf_count(v) for v in value)
    return 1


def order_by_difficulty(dataset: Dataset) -> Dataset:
    """Easiest first; ties keep their order (stable), so the result is deterministic."""
    levels = list(dataset["difficulty"])
    order = sorted(range(len(levels)), key=levels.__getitem__)
    return dataset.select(order)


def stage_by_difficulty(dataset: Dataset, bounds: list[int]) -> list[Dataset]:
    """Split into stages: stage k holds difficulties in (bounds[k-1], bounds[k]].

    Args:
        dataset: Rows with a `difficulty` column.
        bounds: Increasing upper bounds; a last stage takes everything above the last bound.
    """
    if bounds != sorted(bounds):
        raise ValueError(f"stage bounds must increase, got {bounds}")
    levels = list(dataset["difficulty"])
    edges = [float("-inf"), *bounds, float("inf")]
    return [dataset.select([i for i, d in enumerate(levels) if lo < d <= hi])
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
