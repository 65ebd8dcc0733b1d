"""Where a tool name is being written, and which tokens continue it (no torch: shared by the
soft-masking processor of `toolmodal.masking.soft` and the llama.cpp engine).

Deliberately left out: applying a bias (the callers do, each to its own logits).
"""

from __future__ import annotations

import re

from toolmodal.calls import CALL_START

_NAME_POSITION = re.compile(r'^\s*\{\s*"name"\s*:\s*"([^"]*)$')
_AFTER_NAME = '", "arguments": {'
TAIL_TOKENS = 32  # recent tokens decoded to find a name position


def name_prefix(tail: str) -> str | None:
    """The part of a tool name written so far when `tail` (recent text) ends inside the name
    of the last call; None anywhere else."""
    if CALL_START not in tail:
        return None
    match = _NAME_POSITION.match(tail.rsplit(CALL_START, 1)[1])
    return None if match is None else match.group(1)


def continuation_ids(partial: str, names: list[str], table: dict[str, list[int]]) -> list[int]:
    """Ids of tokens that extend `partial` along one of `names` (past its closing quote)."""
    ids: set[int] = set()
    for name in names:
        if not name.startswith(partial):
            continue
        rest = name[len(partial):] + _AFTER_NAME
        for end in range(1, len(rest) + 1):
            ids.update(table.get(rest[:end], ()))
    return sorted(ids)
