"""The model's output format and its parser.

An assistant turn is optional free reasoning text followed by zero or more tool calls, each between
the call delimiters:

    Checking.<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>

Zero calls means "no tool fits". Inside the delimiters the JSON form above is canonical; the
Python form `get_weather(city="Oslo")` (used by one system-prompt variant) is accepted too. The
parser never evaluates model text: JSON goes through `json.loads`, the Python form through
`ast.parse` and a walk that only accepts literals.

Deliberately left out: scoring (see `toolmodal.scoring`) and any repair of broken output.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from toolmodal.schema import Param, Tool

CALL_START = "<tool_call>"
CALL_END = "</tool_call>"
_CALL_RE = re.compile(re.escape(CALL_START) + r"(.*?)(?:" + re.escape(CALL_END) + r"|$)", re.S)


@dataclass(frozen=True)
class ToolCall:
    """One call: a tool name and JSON-typed arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON form, as written between the delimiters."""
        return json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)

    def to_python(self) -> str:
        """Python-call form, `name(a=1, b="x")`, for the tool_name(args) prompt variant."""
        args = ", ".join(f"{k}={_py_literal(v)}" for k, v in self.arguments.items())
        return f"{self.name}({args})"


@dataclass
class ParsedOutput:
    """What the parser found: reasoning text, the calls that parsed, and what failed.

    `errors` holds one "code: detail" string per problem; an empty list means well-formed.
    Codes: unterminated_call, stray_close, not_json, not_object, missing_name, bad_arguments,
    python_syntax.
    """

    reasoning: str
    calls: list[ToolCall]
    errors: list[str]

    @property
    def ok(self) -> bool:
        """True when every call block parsed."""
        return not self.errors


def format_output(calls: list[ToolCall], reasoning: str = "", style: str = "json") -> str:
    """Render an assistant turn: reasoning, then each call between the delimiters.

    Args:
        calls: Calls to render; empty for "no tool fits" (then `reasoning` should say so).
        reasoning: Optional text before the calls.
        style: "json" (canonical) or "python".
    """
    if style not in ("json", "python"):
        raise ValueError(f"unknown call style {style!r}; expected 'json' or 'python'")
    bodies = [c.to_json() if style == "json" else c.to_python() for c in calls]
    return reasoning + "".join(f"{CALL_START}{b}{CALL_END}" for b in bodies)


def parse_output(text: str) -> ParsedOutput:
    """Split model output into reasoning and calls; never raises on any string."""
    first = text.find(CALL_START)
    reasoning = (text if first < 0 else text[:first]).strip()
    calls: list[ToolCall] = []
    errors: list[str] = []
    closed = 0
    for match in _CALL_RE.finditer(text):
        terminated = match.group(0).endswith(CALL_END)
        closed += terminated
        if not terminated:
            errors.append("unterminated_call: no closing " + CALL_END)
        call, error = _parse_body(match.group(1).strip())
        if call is not None:
            calls.append(call)
        if error:
            errors.append(error)
    if text.count(CALL_END) > closed:  # a call written without its opening token
        errors.append(f"stray_close: {CALL_END} without an opening {CALL_START}")
    return ParsedOutput(reasoning=reasoning, calls=calls, errors=errors)


def _parse_body(body: str) -> tuple[ToolCall | None, str]:
    if body.startswith("{"):
        return _parse_json_body(body)
    return _parse_python_body(body)


def _parse_json_body(body: str) -> tuple[ToolCall | None, str]:
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"not_json: {exc}"
    if not isinstance(obj, dict):
        return None, "not_object: call body is not a JSON object"
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None, "missing_name: call has no string 'name'"
    args = obj.get("arguments", {})
    if not isinstance(args, dict):
        return None, f"bad_arguments: 'arguments' of {name!r} is not an object"
    return ToolCall(name=name, arguments=args), ""


def _parse_python_body(body: str) -> tuple[ToolCall | None, str]:
    try:
        node = ast.parse(body, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return None, f"not_json: neither JSON nor a Python call ({type(exc).__name__})"
    if not isinstance(node, ast.Call) or node.args:
        return None, "python_syntax: expected name(key=value, ...)"
    name = _dotted_name(node.func)
    if name is None:
        return None, "missing_name: call target is not a name"
    try:
        args = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
    except ValueError as exc:
        return None, f"bad_arguments: {name}: {exc}"
    return ToolCall(name=name, arguments=args), ""


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _literal(node: ast.expr) -> Any:
    """Convert a literal AST node to a JSON value; anything else is rejected (no eval)."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(
            node.value, (str, int, float, bool))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {str(_literal(k)): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[node.id]
    raise ValueError(f"argument is not a literal: {ast.dump(node)[:60]}")


def _py_literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return {True: "True", False: "False", None: "None"}[value]
    if isinstance(value, list):
        return "[" + ", ".join(_py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)}: {_py_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    return repr(value)


def check_call(call: ToolCall, tools: list[Tool]) -> list[str]:
    """Validate one call against the offered tools; return "code: detail" problems.

    Codes: unknown_tool, unknown_argument, missing_required, wrong_type, bad_enum,
    out_of_range.
    """
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        return [f"unknown_tool: {call.name!r} is not among the offered tools"]
    problems = [f"missing_required: {tool.name}.{name}" for name in tool.required_names
                if name not in call.arguments]
    for key, value in call.arguments.items():
        param = next((p for p in tool.parameters if p.name == key), None)
        if param is None:
            problems.append(f"unknown_argument: {tool.name} has no parameter {key!r}")
            continue
        problems += check_value(value, param, f"{tool.name}.{key}")
    return problems


def check_value(value: Any, param: Param, where: str) -> list[str]:
    """Check a JSON value against a parameter schema, recursing into arrays and objects."""
    if value is None and param.has_default and param.default is None:
        return []
    if not matches_type(value, param.type):
        return [f"wrong_type: {where} expects {param.type}, got {type(value).__name__}"]
    if param.enum is not None and value not in param.enum:
        return [f"bad_enum: {where}={value!r} not in {list(param.enum)}"]
    problems = _check_range(value, param, where)
    if param.type == "array" and param.items is not None:
        for i, item in enumerate(value):
            problems += check_value(item, param.items, f"{where}[{i}]")
    if param.type == "object" and param.properties:
        problems += _check_object(value, param, where)
    return problems


def _check_object(value: dict, param: Param, where: str) -> list[str]:
    names = {p.name for p in param.properties}
    problems = [f"missing_required: {where}.{p.name}" for p in param.properties
                if p.required and p.name not in value]
    for key, sub in value.items():
        if key not in names:
            problems.append(f"unknown_argument: {where} has no property {key!r}")
        else:
            problems += check_value(sub, param.property(key), f"{where}.{key}")
    return problems


def _check_range(value: Any, param: Param, where: str) -> list[str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            return [f"out_of_range: {where}={value} < minimum {param.minimum}"]
        if param.maximum is not None and value > param.maximum:
            return [f"out_of_range: {where}={value} > maximum {param.maximum}"]
    if isinstance(value, str):
        if param.min_length is not None and len(value) < param.min_length:
            return [f"out_of_range: {where} shorter than {param.min_length}"]
        if param.max_length is not None and len(value) > param.max_length:
            return [f"out_of_range: {where} longer than {param.max_length}"]
        # JSON Schema patterns are unanchored: search, not fullmatch.
        if param.pattern is not None and re.search(param.pattern, value) is None:
            return [f"out_of_range: {where}={value!r} does not match {param.pattern!r}"]
    return []


def matches_type(value: Any, type_: str) -> bool:
    """JSON-type check where bool is not an integer and an integer is a valid number."""
    if type_ == "any":
        return True
    if type_ == "null":
        return value is None
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = {"string": str, "array": list, "object": dict}[type_]
    return isinstance(value, expected)
