"""Convert one JSON Schema (or BFCL's Python-typed variant of it) into a `Param` tree.

Shared by every format reader. Handles `$ref` to local JSON pointers ("#/components/..."),
the nullable idioms `type: [X, "null"]` and `anyOf/oneOf: [X, {"type": "null"}]` (they become X: a
`Param` has one type), and `const` (an enum of one value). Keywords beside a `$ref` or a wrapper
(OpenAPI 3.0's `{"allOf": [{"$ref": ...}], "description": ...}`) win over those they wrap.

- `allOf` is merged: properties and required names are united, other keywords are taken from the
  first member that has them (those beside the `allOf` win).
- A real union (`anyOf`/`oneOf` of several non-null schemas, or `type: [A, B]`) becomes the
  closest form a single-typed `Param` can hold: members of one type are merged (objects: all
  properties, each required only when every member requires it; enums united, dropped if any
  member is unrestricted); members of different types give type "any" with the alternatives
  named in the description ("One of: string, integer.").
- A `$ref` cycle, `$ref`s nested deeper than `MAX_REF_DEPTH`, a `$ref` met once one parameter
  has grown past `MAX_NODES` nodes, or any schema nested deeper than `MAX_DEPTH`, stops there:
  the parameter becomes an unexpanded object whose description says so ("(recursive reference
  to #/components/schemas/Node, not expanded)"), so every schema gives a finite tool of bounded
  size.

Deliberately left out: remote `$ref`s, `not`, `format`, `exclusiveMinimum/Maximum`,
`minItems/maxItems`, `additionalProperties`, `title`, `example` and `examples` (ignored: the model
has no field for them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from toolmodal.calls import matches_type
from toolmodal.ingest.errors import FieldError
from toolmodal.schema import Param

JSON_TYPES = {t: t for t in ("string", "integer", "number", "boolean", "array", "object", "null")}
BFCL_TYPES = JSON_TYPES | {"float": "number", "tuple": "array", "dict": "object", "any": "any"}
MAX_DEPTH = 32
MAX_REF_DEPTH = 8  # nested $refs expanded per parameter; real documents nest 3-5 deep
MAX_NODES = 2000  # schema nodes per parameter before $refs stop being expanded
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
    # Nodes built by the current `param` call (a list: the dataclass is frozen, the count is not).
    _nodes: list[int] = field(default_factory=lambda: [0], repr=False, compare=False)

    def param(self, schema: Any, field: str, name: str = "", required: bool = False) -> Param:
        """Convert `schema` (found at `field`) into a Param; FieldError names the bad field."""
        self._nodes[0] = 0
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
            return Param(name=name, type="object", required=required,
                         description=f"(nested deeper than {MAX_DEPTH} levels, not expanded)")
        if not isinstance(schema, dict):
            raise FieldError(field, f"schema must be an object, got {_kind(schema)}")
        if "$ref" in schema:
            bound = _bound(schema, refs) or self._over_budget(schema)
            if bound:
                return Param(name=name, type="object", required=required,
                             description=_with_note(schema.get("description"), bound))
            resolved, refs = self._resolve(schema, field, refs)
            return self._param(resolved, field, name, required, refs, depth + 1)
        if "allOf" in schema:  # the merged schema may be a $ref or another wrapper
            merged = self._merge_all_of(schema, field, refs)
            return self._param(merged, field, name, required, refs, depth + 1)
        unwrapped = self._unwrap(schema, field, refs)
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
        self._nodes[0] += 1
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
            if not all(isinstance(t, str) for t in raw):
                raise FieldError(f"{field}.type", f"type list must hold type names: {raw!r}")
            if len(rest) > 1:  # a real union (see the module docstring)
                return "any"
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


    def _over_budget(self, schema: dict) -> str:
        if self._nodes[0] < MAX_NODES:
            return ""
        return f"(reference to {schema['$ref']} not expanded: schema over {MAX_NODES} nodes)"

    def _deref_member(self, member: Any, field: str, refs: tuple[str, ...]) -> dict:
        """A member of allOf/anyOf/oneOf with its `$ref`s followed (a cycle stays a $ref)."""
        if not isinstance(member, dict):
            raise FieldError(field, f"entry must be a schema object, got {_kind(member)}")
        while "$ref" in member and not _bound(member, refs):
            member, refs = self._resolve(member, field, refs)
        if "allOf" in member:
            member = self._merge_all_of(member, field, refs)
        return member

    def _merge_all_of(self, schema: dict, field: str, refs: tuple[str, ...]) -> dict:
        """One schema holding every allOf member (keywords beside the allOf win)."""
        members = _members(schema, "allOf", field)
        if len(members) == 1:  # keep the member's own $ref, so cycles stay detectable
            return members[0] | {k: v for k, v in schema.items() if k != "allOf"}
        merged: dict = {}
        for i, member in enumerate(members):
            member = self._deref_member(member, f"{field}.allOf[{i}]", refs)
            _merge_into(merged, member)
        _merge_into(merged, {k: v for k, v in schema.items() if k != "allOf"}, override=True)
        return merged

    def _unwrap(self, schema: dict, field: str, refs: tuple[str, ...]) -> dict:
        """Reduce anyOf/oneOf to one schema (nullable idiom, or a union as documented above)."""
        for key in ("anyOf", "oneOf"):
            if key not in schema:
                continue
            rest = [o for o in _members(schema, key, field) if o != {"type": "null"}]
            siblings = {k: v for k, v in schema.items() if k != key}
            if len(rest) == 1:
                if not isinstance(rest[0], dict):
                    raise FieldError(f"{field}.{key}", f"{key} entry must be a schema object")
                return rest[0] | siblings
            members = [self._deref_member(m, f"{field}.{key}[{i}]", refs)
                       for i, m in enumerate(rest)]
            return _union(members, siblings)
        return schema


def _members(schema: dict, key: str, field: str) -> list:
    options = schema[key]
    if not isinstance(options, list):
        raise FieldError(f"{field}.{key}", f"{key} must be a list, got {_kind(options)}")
    if not options:
        raise FieldError(f"{field}.{key}", f"{key} must not be empty")
    return options


def _merge_into(merged: dict, member: dict, override: bool = False) -> None:
    """Add `member` to an allOf merge: properties and required united, the rest first-wins."""
    for key, value in member.items():
        if key == "$ref":  # a member left unexpanded (a cycle) adds nothing
            continue
        if key == "properties" and isinstance(value, dict):
            merged["properties"] = {**merged.get("properties", {}), **value}
        elif key == "required" and isinstance(value, list):
            merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
        elif override or key not in merged:
            merged[key] = value


def _member_type(member: dict) -> str:
    raw = member.get("type")
    if isinstance(raw, list):
        rest = [t for t in raw if t != "null"]
        raw = rest[0] if len(rest) == 1 else None
    return raw if isinstance(raw, str) else _infer_type(member)


def _union(members: list[dict], siblings: dict) -> dict:
    """The closest single-typed schema to a union of `members` (see the module docstring)."""
    types = list(dict.fromkeys(_member_type(m) for m in members))
    if len(types) > 1 or "$ref" in members[0]:
        note = f"One of: {', '.join(types)}."
        return {"description": _with_note(siblings.get("description"), note),
                **{k: v for k, v in siblings.items() if k != "description"}}
    out: dict = {"type": types[0]}
    if types[0] == "object":
        required = [set(m.get("required", [])) for m in members]
        out["properties"] = {k: v for m in members for k, v in m.get("properties", {}).items()}
        out["required"] = sorted(set.intersection(*required))
    if types[0] == "array" and "items" in members[0]:
        out["items"] = members[0]["items"]
    enums = [m.get("enum", [m["const"]] if "const" in m else None) for m in members]
    if all(isinstance(e, list) for e in enums):
        out["enum"] = list({json.dumps(v, sort_keys=True): v for e in enums for v in e}.values())
    return out | siblings


def _bound(schema: dict, refs: tuple[str, ...]) -> str:
    """Why this `$ref` is not expanded (a cycle, or too deep), or "" to expand it."""
    ref = schema["$ref"]
    if ref in refs:
        return f"(recursive reference to {ref}, not expanded)"
    if len(refs) >= MAX_REF_DEPTH:
        return f"(reference to {ref} nested more than {MAX_REF_DEPTH} deep, not expanded)"
    return ""


def _with_note(description: Any, note: str) -> str:
    return f"{description} {note}" if isinstance(description, str) and description else note


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


_CONST_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
                dict: "object", type(None): "null"}


def _infer_type(schema: dict) -> str:
    if "const" in schema:
        return _CONST_TYPES[type(schema["const"])]
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "any"


_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers",
           "boolean": "booleans", "array": "arrays", "object": "objects", "null": "null"}


def _enum(schema: dict, type_: str, field: str) -> tuple | None:
    if "enum" not in schema and "const" not in schema:
        return None
    values = schema["enum"] if "enum" in schema else [schema["const"]]
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
