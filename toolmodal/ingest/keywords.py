"""Checks of the value keywords of one JSON Schema node: enum/const, numeric and length bounds,
pattern, default literals.

Used by `toolmodal.ingest.jsonschema`, which walks the schema; every check raises `FieldError`
naming the keyword at fault. Left out: anything that follows `$ref`s or nests (the walker's job).
"""

from __future__ import annotations

import json
import re
from typing import Any

from toolmodal.calls import matches_type
from toolmodal.ingest.errors import FieldError

NUMERIC = ("integer", "number", "any")
TEXT = ("string", "any")
_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers",
           "boolean": "booleans", "array": "arrays", "object": "objects", "null": "null"}


def kind(value: Any) -> str:
    """How a message names the JSON kind of `value` ("an object", "a list", "null", ...)."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def enum(schema: dict, type_: str, field: str) -> tuple | None:
    """The allowed values (`enum`, or `const` as an enum of one), or None when unrestricted."""
    if "enum" not in schema and "const" not in schema:
        return None
    values = schema["enum"] if "enum" in schema else [schema["const"]]
    if not isinstance(values, list):
        raise FieldError(f"{field}.enum", f"enum must be a list, got {kind(values)}")
    if not values:
        raise FieldError(f"{field}.enum", "enum must not be empty")
    seen = set()
    for value in values:
        if not matches_type(value, type_):
            raise FieldError(f"{field}.enum", f"enum values must be {_PLURAL[type_]} for type "
                                              f"{type_!r}, got {value!r}")
        key = json.dumps(value, sort_keys=True)
        if key in seen:
            raise FieldError(f"{field}.enum", f"duplicate enum value {value!r}")
        seen.add(key)
    return tuple(values)


def contains(values: tuple, value: Any) -> bool:
    """Whether `value` is among `values`, compared as JSON (1 and 1.0 are equal, True is not)."""
    key = json.dumps(value, sort_keys=True)
    return any(json.dumps(v, sort_keys=True) == key for v in values)


def constraints(schema: dict, type_: str, field: str) -> dict[str, Any]:
    """The numeric and length bounds of a node as `Param` fields (`pattern` is read apart)."""
    out: dict[str, Any] = {}
    for key, name, types, check in (("minimum", "minimum", NUMERIC, _is_number),
                                    ("maximum", "maximum", NUMERIC, _is_number),
                                    ("minLength", "min_length", TEXT, _is_count),
                                    ("maxLength", "max_length", TEXT, _is_count)):
        if key not in schema:
            continue
        if type_ not in types:
            raise FieldError(f"{field}.{key}", f"{key} does not apply to type {type_!r}")
        if not check(schema[key]):
            raise FieldError(f"{field}.{key}", f"{key} must be a {check.__doc__}, "
                                               f"got {schema[key]!r}")
        out[name] = schema[key]
    for low, high in (("minimum", "maximum"), ("min_length", "max_length")):
        if out.get(low) is not None and out.get(high) is not None and out[low] > out[high]:
            raise FieldError(field, f"{low} {out[low]} > {high} {out[high]}")
    return out


def _is_number(value: Any) -> bool:
    """number"""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    """non-negative integer"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def pattern(value: Any, type_: str, field: str) -> str:
    """A `pattern` that applies to `type_` and is a string (whether it compiles: `regex_error`)."""
    if type_ not in TEXT:
        raise FieldError(f"{field}.pattern", f"pattern does not apply to type {type_!r}")
    if not isinstance(value, str):
        raise FieldError(f"{field}.pattern", f"pattern must be a string, got {kind(value)}")
    return value


def regex_error(value: str) -> str:
    """Why Python's `re` rejects the regex `value` (ECMA-262's `\\p{L}`), or "" if it compiles."""
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        return str(exc)
    return ""


def bfcl_literal(text: str) -> Any:
    """BFCL writes some defaults as strings ("false", "None"): read the literal they spell."""
    spelled = {"True": True, "False": False, "None": None}
    if text in spelled:
        return spelled[text]
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text
