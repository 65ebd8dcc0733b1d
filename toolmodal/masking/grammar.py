"""The hard-masking language, built from the offered tools, in each backend's notation.

The language (the same for every backend and engine):

    output   := reasoning call*
    reasoning:= "none": empty; "line": one line of text; "free": any text; never a "<"
    call     := "<tool_call>" CALL_JSON "</tool_call>"

where CALL_JSON is `{"name": N, "arguments": {...}}` with no free whitespace and the separators
", " and ": " (what `ToolCall.to_json` writes), N one of the offered tool names, and the
arguments an object with only that tool's parameter names, every required one present, each
value of its declared type, within its enum, numeric bounds, minLength and pattern. maxLength is
left out of the mask (the scorer's `check_call` still checks it): xgrammar expands a string of
at most N characters into N optional repetitions, and the catalogue's maxLength values (60 to
5000) made a 20-tool grammar take ~58 s to compile with the 262k-token vocabulary instead of
~1 s without them; compile time grows with N and with the vocabulary. The default reasoning mode,
"line", bounds the text structurally: after the first newline the model must call or stop, so
it cannot ramble on without deciding. (A bound in characters, `[^<]{0,N}`, was measured first:
xgrammar's compile time grows with N, 8 s for N=50 and 40 s for N=200, so it was dropped.)
Since reasoning may be empty and calls are optional, "no call" (just stopping) stays reachable.
"<" is excluded from reasoning so no text can start a call outside the grammar. With no tools
offered only reasoning is allowed.

Notations: a JSON schema of one call (`call_schema`), xgrammar EBNF (`ebnf`, also accepted by
vLLM's `grammar=`; llama.cpp's GBNF is a close dialect), a Lark grammar with an embedded JSON
schema for llguidance (`lark`; it needs the call delimiters in the tokenizer, as
`toolmodal.tool_tokens` adds them), and a regular expression for outlines (`regex`).

Deliberately left out: compiling and applying masks (see `toolmodal.masking.hard`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from toolmodal.calls import CALL_END, CALL_START
from toolmodal.schema import Param, Tool

SEPARATORS = (", ", ": ")
Reasoning = Literal["none", "line", "free"]
# Character class of reasoning text per mode (regex syntax shared by EBNF, Lark and outlines).
REASONING_CLASS: dict[str, str] = {"line": r"[^<\n]", "free": "[^<]"}


def param_schema(param: Param) -> dict[str, Any]:
    """JSON schema for one parameter value (recursing into items and properties)."""
    schema: dict[str, Any] = {} if param.type == "any" else {"type": param.type}
    if param.enum is not None:
        schema["enum"] = list(param.enum)
    # No maxLength: too costly to compile as a mask (see the module docstring).
    bounds = {"minimum": param.minimum, "maximum": param.maximum,
              "minLength": param.min_length, "pattern": param.pattern}
    schema |= {k: v for k, v in bounds.items() if v is not None}
    if param.type == "array" and param.items is not None:
        schema["items"] = param_schema(param.items)
    if param.type == "object":
        schema |= object_schema(param.properties)
    if param.has_default and param.default is None and param.type != "null":
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def object_schema(properties: tuple[Param, ...]) -> dict[str, Any]:
    """Object schema with exactly these properties (free-form when none are declared)."""
    if not properties:
        return {"type": "object", "additionalProperties": True}
    return {"type": "object",
            "properties": {p.name: param_schema(p) for p in properties},
            "required": [p.name for p in properties if p.required],
            "additionalProperties": False}


def tool_call_schema(tool: Tool) -> dict[str, Any]:
    """JSON schema of a call to this one tool."""
    arguments = object_schema(tool.parameters)
    if not tool.parameters:
        arguments = {"type": "object", "properties": {}, "additionalProperties": False}
    return {"type": "object",
            "properties": {"name": {"const": tool.name}, "arguments": arguments},
            "required": ["name", "arguments"], "additionalProperties": False}


def call_schema(tools: list[Tool]) -> dict[str, Any]:
    """JSON schema of one call to any of the offered tools."""
    if not tools:
        raise ValueError("call_schema needs at least one tool")
    cases = [tool_call_schema(t) for t in tools]
    return cases[0] if len(cases) == 1 else {"anyOf": cases}


def ebnf(tools: list[Tool], reasoning: Reasoning = "line", any_order: bool = False) -> str:
    """xgrammar EBNF of the whole output; the call JSON comes from xgrammar's schema converter."""
    import xgrammar as xgr

    text = f"{REASONING_CLASS[reasoning]}*" if reasoning != "none" else '""'
    head = [f"root ::= reasoning{' calls' if tools else ''}", f"reasoning ::= {text}"]
    if not tools:
        return "\n".join(head) + "\n"
    body = str(xgr.Grammar.from_json_schema(call_schema(tools), any_whitespace=False,
                                            separators=SEPARATORS, any_order=any_order))
    body = re.sub(r"\broot\b", "call_json", body)
    head.append(f"calls ::= ({json.dumps(CALL_START)} call_json {json.dumps(CALL_END)})*")
    return "\n".join(head) + "\n" + body


def lark(tools: list[Tool], reasoning: Reasoning = "line") -> str:
    """llguidance Lark grammar of the whole output, the call JSON as an inline %json schema."""
    text = " REASONING?" if reasoning != "none" else ""
    lines = [f"start:{text}" + (" call*" if tools else "")]
    if reasoning != "none":
        lines.append(f"REASONING: /{REASONING_CLASS[reasoning]}+/")
    if tools:
        schema = call_schema(tools) | {"x-guidance": {
            "whitespace_flexible": False, "item_separator": SEPARATORS[0],
            "key_separator": SEPARATORS[1], "whitespace_pattern": ""}}
        # llguidance reads added tokens as special: <tool_call> names the token, "..." the text.
        lines.append(f"call: ({json.dumps(CALL_START)} | {CALL_START}) call_json "
                     f"({json.dumps(CALL_END)} | {CALL_END})")
        lines.append(f"call_json: %json {json.dumps(schema)}")
    if len(lines) == 1:
        lines[0] = 'start: ""'
    return "\n".join(lines) + "\n"


def regex(tools: list[Tool], reasoning: Reasoning = "line") -> str:
    """Regular expression of the whole output for outlines (whitespace: at most one space)."""
    from outlines_core.json_schema import build_regex_from_schema

    text = f"{REASONING_CLASS[reasoning]}*" if reasoning != "none" else ""
    if not tools:
        return text
    body = build_regex_from_schema(json.dumps(call_schema(tools)), r"[ ]?")
    return f"{text}({re.escape(CALL_START)}{body}{re.escape(CALL_END)})*"


def tool_set_key(tools: list[Tool]) -> str:
    """Order-free content hash of a tool set (the grammar does not depend on tool order)."""
    joined = "\n".join(sorted(t.content_hash() for t in tools))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()
