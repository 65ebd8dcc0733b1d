"""Which repeated calls of one tool make sense in one turn (the "parallel" kind).

Two calls of a tool in one turn must not be identical and must differ in a required parameter
when the tool has one; the rules in `data/requests/parallel_calls.yaml` add parameters that must
differ (`move_file` twice on one source, two deletions of one path) and tools never called twice
in one turn (a setting: the second call undoes the first).

Deliberately left out: different tools in one turn ("multiple"), which need no such rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from toolmodal.calls import ToolCall
from toolmodal.schema import Tool


@dataclass(frozen=True)
class RepeatRules:
    """Parameters that must differ per tool, and tools never repeated."""

    distinct: dict[str, tuple[str, ...]]
    never: frozenset[str]


@lru_cache(maxsize=4)
def load_rules(path: Path) -> RepeatRules:
    """Read the rules file (keys `distinct` and `never`)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    unknown = set(data) - {"distinct", "never"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed distinct, never")
    return RepeatRules({k: tuple(v) for k, v in data.get("distinct", {}).items()},
                       frozenset(data.get("never", [])))


def must_differ(tool: Tool, rules: RepeatRules) -> tuple[str, ...]:
    """Parameters the second call has to change (listed ones that the tool has)."""
    names = {p.name for p in tool.parameters}
    return tuple(p for p in rules.distinct.get(tool.name, ()) if p in names)


def check_repeat(tool: Tool, calls: list[ToolCall], rules: RepeatRules) -> str | None:
    """None when the calls of `tool` in one turn make sense, else a "label:..." reason."""
    if tool.name in rules.never:
        return "label:tool_never_repeated"
    required = [p.name for p in tool.parameters if p.required]
    for i, first in enumerate(calls):
        for second in calls[i + 1:]:
            if first.arguments == second.arguments:
                return "label:identical_calls"
            if required and all(first.arguments.get(k) == second.arguments.get(k)
                                for k in required):
                return "label:same_required_arguments"
            if any(_overlap(first.arguments.get(k), second.arguments.get(k))
                   for k in must_differ(tool, rules)):
                return "label:same_resource_twice"
    return None


def _overlap(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return any(x in b for x in a)
    return a is not None and a == b
