"""Convert one JSON Schema (or BFCL's Python-typed variant of it) into a `Param` tree.

Shared by every format reader. Handles `$ref` to local JSON pointers ("#/components/...") with
cycle detection, `allOf` of one schema, and the nullable idioms `type: [X, "null"]` and
`anyOf/oneOf: [X, {"type": "null"}]` (they become X: a `Param` has one type). Keywords beside a
`$ref` or a wrapper (OpenAPI 3.0's `{"allOf": [{"$ref": ...}], "description": ...}`) win over
those of the schema they wrap.

Deliberately left out: remote `$ref`s, real unions (anyOf/oneOf of several non-null schemas are
rejected), `format`, `exclusiveMinimum/Maximum`, `minItems/maxItems`, `additionalProperties`,
`title` and `examples` (ignored: the model has no field for them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from toolmodal.calls import matches_type
from toolmodal.ingest.errors import FieldError
from toolmodal.schema import Param

JSON_TYPES = {t: t for t in ("string", "integer", "number", "boolean", "array", "object", "null")}
BFCL_TYPES = JSON_TYPES | {"float": "number", "tuple": "array", "dict": "object", "any": "any"}
MAX_DEPTH = 32
_INDEX = re.compile(r"[0-9]+")
_NUMERIC = ("integer", "number", "any")
_TEXT = ("string", "any")


@dataclass(frozen=True)
class Converter:
    """Converts schemas found in one document.

    Attributes:
        root: The document "#/..." references point into: the schema itself for OpenAI, MCP
            and BFCL (where `$defs` live inside it), the whole document for OpenAPI.
        dialect: "json" (JSON Schema type names) or "bfcl" (adds float/tuple/dict/any, and reads
            a string default such as "false" of a non-string parameter as the literal it spells).
    """

    root: Any = None
    dialect: str = "json"

    def param(self, schema: Any, field: str, name: str = "", required: bool = False) -> Param:
        """Convert `schema` (found at `field`) into a Param; FieldError names the bad field."""
        return self._param(schema, field, name, required, (), 0)

    def object_params(self, schema: Any, field: str) -> tuple[Param, ...]:
        """The properties of an object schema, as a tool's top-level parameters."""
        obj = self.param(schema, field)
        if obj.type != "object":
            raise FieldError(field, f"must be a schema of type 'object', got type {obj.type!r}")
        return obj.properties

    def deref(self, node: Any, field: str) -> dict:
        """Follow `$ref`s from `node` (e.g. an OpenAPI parameter) to the object they name."""
        refs: tuple[str, ...] = ()
        while isinstance(node, dict) and "$ref" in node:
            node, refs = self._resolve(node, field, refs)
        if not isinstance(node, dict):
            raise FieldError(field, f"must be an object, got {_kind(node)}")
        return node

    def _param(self, schema: Any, field: str, name: str, required: bool,
               refs: tuple[str, ...], depth: int) -> Param:
        if depth > MAX_DEPTH:
            raise FieldError(field, f"schema nested deeper than {MAX_DEPTH} levels")
        if not isinstance(schema, dict):
            raise FieldError(field, f"schema must be an object, got {_kind(schema)}")
        if "$ref" in schema:
            resolved, refs = self._resolve(schema, field, refs)
            return self._param(resolved, field, name, required, refs, depth + 1)
        unwrapped = _unwrap(schema, field)
        if unwrapped is not schema:  # the inner schema may be a $ref or another wrapper
            return self._param(unwrapped, field, name, required, refs, depth + 1)
        type_ = self._type(schema, field)
        description = schema.get("description", "")
        if not isinstance(description, str):
            raise FieldError(f"{field}.description",
                             f"description must be a string, got {_kind(description)}")
        items, props = None, ()
        if type_ == "array" and "items" in schema:
            items = self._param(schema["items"], f"{field}.items", "", False, refs, depth + 1)
        if type_ == "object":
            props = self._properties(schema, field, refs, depth)
        enum = _enum(schema, type_, field)
        fields = dict(name=name, type=type_, description=description, required=required,
                      enum=enum, items=items, properties=props)
        fields |= _constraints(schema, type_, field)
        if "default" in schema:
            fields |= {"default": self._default(schema["default"], type_, enum, field),
                       "has_default": True}
        try:
            return Param(**fields)
        except ValidationError as exc:
            raise FieldError(field, f"invalid schema: {exc.errors()[0]['msg']}") from None

    def _resolve(self, schema: dict, field: str, refs: tuple[str, ...]) -> tuple[Any, tuple]:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise FieldError(f"{field}.$ref", f"unresolvable $ref {ref!r} (only '#/...' is read)")
        if ref in refs:
            chain = " -> ".join((*refs, ref))
            raise FieldError(f"{field}.$ref", f"circular $ref: {chain}")
        target = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and _INDEX.fullmatch(part) and int(part) < len(target):
                target = target[int(part)]
            else:
                raise FieldError(f"{field}.$ref", f"unresolvable $ref {ref!r}: no {part!r}")
        if not isinstance(target, dict):
            raise FieldError(f"{field}.$ref", f"$ref {ref!r} points to {_kind(target)}")
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return target | siblings, (*refs, ref)

    def _type(self, schema: dict, field: str) -> str:
        names = BFCL_TYPES if self.dialect == "bfcl" else JSON_TYPES
        raw = schema.get("type")
        if raw is None:
            return _infer_type(schema)
        if isinstance(raw, list):
            rest = [t for t in raw if t != "null"]
            if len(rest) > 1 or not all(isinstance(t, str) for t in raw):
                raise FieldError(f"{field}.type", f"type unions are not supported: {raw!r}")
            raw = rest[0] if rest else "null"
        if not isinstance(raw, str) or raw not in names:
            raise FieldError(f"{field}.type",
                             f"unknown type {raw!r}; expected one of {sorted(names)}")
        return names[raw]

    def _properties(self, schema: dict, field: str, refs: tuple[str, ...],
                    depth: int) -> tuple[Param, ...]:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise FieldError(f"{field}.properties",
                             f"properties must be an object, got {_kind(props)}")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise FieldError(f"{field}.required",
                             f"required must be a list of names, got {required!r}")
        for req in required:
            if req not in props:
                raise FieldError(f"{field}.required",
                                 f"required names absent parameter {req!r}")
        params = []
        for key, sub in props.items():
            if not isinstance(key, str) or not key:
                raise FieldError(f"{field}.properties", f"invalid property name {key!r}")
            params.append(self._param(sub, f"{field}.properties.{key}", key, key in required,
                                      refs, depth + 1))
        return tuple(params)

    def _default(self, value: Any, type_: str, enum: tuple | None, field: str) -> Any:
        if self.dialect == "bfcl" and isinstance(value, str) and type_ not in _TEXT:
            value = _bfcl_literal(value)
        if value is not None and not matches_type(value, type_):
            raise FieldError(f"{field}.default",
                             f"default {value!r} is not of declared type {type_!r}")
        if value is not None and enum is not None and not _contains(enum, value):
            raise FieldError(f"{field}.default", f"default {value!r} is not in enum {list(enum)}")
        return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _unwrap(schema: dict, field: str) -> dict:
    """Reduce allOf-of-one and nullable anyOf/oneOf to a plain schema (other unions fail)."""
    for key in ("allOf", "anyOf", "oneOf"):
        if key not in schema:
            continue
        options = schema[key]
        if not isinstance(options, list):
            raise FieldError(f"{field}.{key}", f"{key} must be a list, got {_kind(options)}")
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) != 1:
            raise FieldError(f"{field}.{key}",
                             f"{key} of {len(rest)} non-null schemas is not supported")
        siblings = {k: v for k, v in schema.items() if k != key}
        if not isinstance(rest[0], dict):
            raise FieldError(f"{field}.{key}", f"{key} entry must be a schema object")
        return rest[0] | siblings
    return schema


def _infer_type(schema: dict) -> str:
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "any"


_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers",
           "boolean": "booleans", "array": "arrays", "object": "objects", "null": "null"}


def _enum(schema: dict, type_: str, field: str) -> tuple | None:
    if "enum" not in schema:
        return None
    values = schema["enum"]
    if not isinstance(values, list):
        raise FieldError(f"{field}.enum", f"enum must be a list, got {_kind(values)}")
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


def _contains(enum: tuple, value: Any) -> bool:
    key = json.dumps(value, sort_keys=True)
    return any(json.dumps(v, sort_keys=True) == key for v in enum)


def _constraints(schema: dict, type_: str, field: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name, types, check in (("minimum", "minimum", _NUMERIC, _is_number),
                                    ("maximum", "maximum", _NUMERIC, _is_number),
                                    ("minLength", "min_length", _TEXT, _is_count),
                                    ("maxLength", "max_length", _TEXT, _is_count)):
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
    if "pattern" in schema:
        out["pattern"] = _pattern(schema["pattern"], type_, field)
    return out


def _is_number(value: Any) -> bool:
    """number"""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    """non-negative integer"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _pattern(pattern: Any, type_: str, field: str) -> str:
    if type_ not in _TEXT:
        raise FieldError(f"{field}.pattern", f"pattern does not apply to type {type_!r}")
    if not isinstance(pattern, str):
        raise FieldError(f"{field}.pattern", f"pattern must be a string, got {_kind(pattern)}")
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise FieldError(f"{field}.pattern", f"invalid regex {pattern!r}: {exc}") from None
    return pattern


def _bfcl_literal(text: str) -> Any:
    """BFCL writes some defaults as strings ("false", "None"): read the literal they spell."""
    spelled = {"True": True, "False": False, "None": None}
    if text in spelled:
        return spelled[text]
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text
