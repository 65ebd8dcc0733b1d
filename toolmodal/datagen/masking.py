"""Function masking (Hammer): random names for tools and parameters, random defaults.

A masked example renames every offered tool that has a description, and every parameter (at any
nesting depth) that has one, to a random identifier; defaults of parameters the call does not
pass are redrawn. Tools, expected calls and (because the prompt is rendered afterwards) the
prompt and target all use the same new names, so the model must read descriptions rather than
memorise names. Descriptions, types and enums stay as they are.

Deliberately left out: chains (their history would need rewriting) and the tool results'
field names (return schemas are not renamed).
"""

from __future__ import annotations

import random
import string
from typing import Any

from toolmodal.calls import ToolCall
from toolmodal.datagen.values import sample_value
from toolmodal.schema import Param, Tool

_ALNUM = string.ascii_lowercase + string.digits
# name -> (new name, mapping of the nested properties / array item properties)
Renames = dict[str, tuple[str, "Renames"]]


def random_name(rng: random.Random) -> str:
    """A random identifier that is valid in both the JSON and the Python call styles."""
    tail = rng.choices(_ALNUM, k=rng.randint(4, 9))
    return rng.choice(string.ascii_lowercase) + "".join(tail)


def mask_example(tools: list[Tool], calls: list[ToolCall],
                 rng: random.Random) -> tuple[list[Tool], list[ToolCall]]:
    """Rename tools and parameters consistently in the offered tools and the expected calls.

    Args:
        tools: Tools offered in the example.
        calls: Expected calls (names and argument keys refer to `tools`).
        rng: Source of the random names and defaults.

    Returns:
        The masked tools (same order) and the masked calls.
    """
    used = {(c.name, k) for c in calls for k in c.arguments}
    new_tools, tool_names, param_maps = [], {}, {}
    for tool in tools:
        params, renames = _mask_params(tool.parameters, rng, {k for n, k in used
                                                               if n == tool.name})
        name = random_name(rng) if tool.description else tool.name
        tool_names[tool.name], param_maps[tool.name] = name, renames
        new_tools.append(tool.model_copy(update={"name": name, "parameters": params}))
    new_calls = [ToolCall(name=tool_names[c.name],
                          arguments=_rename_value(c.arguments, param_maps[c.name]))
                 for c in calls]
    return new_tools, new_calls


def _mask_params(params: tuple[Param, ...], rng: random.Random,
                 passed: set[str]) -> tuple[tuple[Param, ...], Renames]:
    out, renames = [], {}
    for param in params:
        # nested defaults stay: only top-level omitted parameters get a new default
        nested, sub = _mask_params(param.properties, rng, {p.name for p in param.properties})
        update: dict[str, Any] = {"properties": nested}
        if param.items is not None and param.items.properties:
            items, sub = _mask_params(param.items.properties, rng,
                                      {p.name for p in param.items.properties})
            update["items"] = param.items.model_copy(update={"properties": items})
        if param.description:
            update["name"] = random_name(rng)
        if param.has_default and param.name not in passed and not param.enum:
            update["default"] = sample_value(param, rng)
        renames[param.name] = (update.get("name", param.name), sub)
        out.append(param.model_copy(update=update))
    return tuple(out), renames


def _rename_value(value: Any, renames: Renames) -> Any:
    if isinstance(value, dict):
        return {renames.get(k, (k, {}))[0]: _rename_value(v, renames.get(k, (k, {}))[1])
                for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_value(v, renames) for v in value]
    return value
