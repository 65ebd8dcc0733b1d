"""Mock executor: runs a tool call against its schema and returns a typed, deterministic result.

The result is drawn from the tool's return schema with a random generator seeded by the call's
content, so the same call always gives the same result and chains can use an earlier result in
a later call. Arguments are checked first (`calls.check_call`); a bad call raises
`ExecutionError`. The executor receives a parsed `ToolCall`, never model text: nothing is
evaluated.

Deliberately left out: any real side effect or network call, and results that depend on the
argument values beyond seeding (a mock cannot know what a weather API would say).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from toolmodal.calls import ToolCall, check_call
from toolmodal.datagen.values import order_pairs, sample_value
from toolmodal.schema import Param, Tool

DEFAULT_RESULT = Param(type="object", properties=(Param(name="status", type="string",
                                                        enum=("ok",), required=True),))


class ExecutionError(ValueError):
    """A call that the mock executor refused: unknown tool or arguments that break the schema."""


def execute(call: ToolCall, tools: list[Tool]) -> Any:
    """Run `call` against the offered `tools` and return a fake result of the declared type.

    Args:
        call: A parsed call (name and JSON arguments).
        tools: The tools offered with the call.

    Returns:
        A JSON value shaped like the tool's `returns` schema (`{"status": "ok"}` when the tool
        declares none).

    Raises:
        ExecutionError: Naming the tool and every problem found in the arguments.
    """
    problems = check_call(call, tools)
    if problems:
        raise ExecutionError(f"{call.name}: " + "; ".join(problems))
    tool = next(t for t in tools if t.name == call.name)
    seed = hashlib.sha256(call.to_json().encode("utf-8")).hexdigest()
    return result_value(tool.returns or DEFAULT_RESULT, random.Random(seed))


def result_value(param: Param, rng: random.Random) -> Any:
    """A fake value for a return schema: every declared property is present, each of the kind
    its name says (`sent_at` a date-time, `html_link` a URL), paired fields ordered
    (`temp_min` below `temp_max`)."""
    if param.type == "object" and param.properties:
        value = {p.name: result_value(p, rng) for p in param.properties}
        return order_pairs(param.properties, value, rng)
    if param.type == "array" and param.items is not None:
        return [result_value(param.items, rng) for _ in range(2)]
    if param.type in ("null", "any"):
        return None if param.type == "null" else "ok"
    return sample_value(param, rng)


def result_message(result: Any) -> str:
    """The content of the `tool` chat message that carries a result."""
    return json.dumps(result, ensure_ascii=False)
