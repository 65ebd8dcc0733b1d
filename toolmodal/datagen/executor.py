"""Mock executor: runs a tool call against its schema and returns a typed, deterministic result.

The result is drawn from the tool's return schema with a random generator seeded by the call's
content, so the same call always gives the same result and chains can use an earlier result in
a later call. Arguments are checked first (`calls.check_call`); a bad call raises
`ExecutionError`. The executor receives a parsed `ToolCall`, never model text: nothing is
evaluated.

A result field named like an argument of the call (and valid for it) echoes the argument's
value, as real APIs do (`get_exchange_rate(base="NOK")` returns `"base": "NOK"`, not a random
currency), unless that would put a pair of fields out of order.

Deliberately left out: any real side effect or network call, and results that depend on the
argument values beyond seeding and echoing (a mock cannot know what a weather API would say).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from toolmodal.calls import ToolCall, check_call, check_value
from toolmodal.datagen.values import order_pairs, pairs_in_order, sample_value
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
    returns = tool.returns or DEFAULT_RESULT
    return echo_arguments(returns, result_value(returns, random.Random(seed)), call.arguments)


def echo_arguments(returns: Param, result: Any, arguments: dict[str, Any]) -> Any:
    """`result` with its top-level fields that share a name with an argument set to that
    argument's value (where the value is valid for the field); unchanged when that would order
    a pair of fields wrongly (an echoed `check_out` before a drawn `check_in`)."""
    if not isinstance(result, dict):
        return result
    echoed = dict(result)
    for field in returns.properties:
        value = arguments.get(field.name)
        if value is not None and not check_value(value, field, field.name):
            echoed[field.name] = value
    return echoed if pairs_in_order(returns.properties, echoed) else result


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
