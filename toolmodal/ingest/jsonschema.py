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
  size. The `$ref`s followed into allOf/anyOf/oneOf members count in the chain of what is
  merged from them (a cycle through a union is caught too); such a member left unexpanded
  adds nothing to an allOf and is named as an alternative of a union. Nodes are counted as
  they are entered, so the budget bounds the walk as well as the result.
- An expanded `$ref` is reused where it would come out the same (`toolmodal.ingest.walk`).
- Lenient mode drops a `required` name with no property and a `pattern` Python cannot compile,
  each with a note (`Converter.notes`); strict mode reports them.

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
from toolmodal.ingest import keywords
from toolmodal.ingest.errors import FieldError
from toolmodal.ingest.keywords import kind as _kind
from toolmodal.ingest.walk import Walk
from toolmodal.schema import Param

JSON_TYPES = {t: t for t in ("string", "integer", "number", "boolean", "array", "object", "null")}
BFCL_TYPES = JSON_TYPES | {"float": "number", "tuple": "array", "dict": "object", "any": "any"}
MAX_DEPTH = 32
MAX_REF_DEPTH = 8  # nested $refs expanded per parameter; real documents nest 3-5 deep
MAX_NODES = 2000  # schema nodes per parameter before $refs stop being expanded
_INDEX = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Converter:
    """Converts schemas found in one document.

    Attributes:
        root: The document "#/..." references point into: the schema itself for OpenAI, MCP
            and BFCL (where `$defs` live inside it), the whole document for OpenAPI.
        dialect: "json" (JSON Schema type names) or "bfcl" (adds float/tuple/dict/any, and reads
            a string default such as "false" of a non-string parameter as the literal it spells).
        lenient: Read what a faithful tool can still be made of: a `required` name with no
            property is dropped from `required`, a `pattern` Python's `re` rejects (ECMA-262's
            `\\p{L}`) is dropped; each is appended to `notes` instead of raising.
        notes: What lenient mode dropped, one FieldError each (the caller names file and tool).
    """

    root: Any = None
    dialect: str = "json"
    lenient: bool = False
    notes: list[FieldError] = field(default_factory=list, repr=False, compare=False)
    _walk: Walk = field(default_factory=Walk, repr=False, compare=False)

    def param(self, schema: Any, field: str, name: str = "", required: bool = False) -> Param:
        """Convert `schema` (found at `field`) into a Param; FieldError names the bad field."""
        self._walk.restart()
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
        self._walk.deepest = max(self._walk.deepest, depth)
        if depth > MAX_DEPTH:
            self._walk.stops += 1
            return Param(name=name, type="object", required=required,
                         description=f"(nested deeper than {MAX_DEPTH} levels, not expanded)")
        if not isinstance(schema, dict):
            raise FieldError(field, f"schema must be an object, got {_kind(schema)}")
        if "$ref" in schema:
            stop = self._stop(schema, refs)
            if stop:
                return Param(name=name, type="object", required=required,
                             description=_with_note(schema.get("description"), stop))
            return self._expand(schema, field, name, required, refs, depth)
        if "allOf" in schema:  # the merged schema may be a $ref or another wrapper
            merged, chain = self._merge_all_of(schema, field, refs)
            return self._param(merged, field, name, required, chain, depth + 1)
        unwrapped, chain = self._unwrap(schema, field, refs)
        if unwrapped is not schema:  # the inner schema may be a $ref or another wrapper
            return self._param(unwrapped, field, name, required, chain, depth + 1)
        return self._node(schema, field, name, required, refs, depth)

    def _node(self, schema: dict, field: str, name: str, required: bool,
              refs: tuple[str, ...], depth: int) -> Param:
        """One schema node with no $ref or wrapper left, its items and properties converted."""
        type_ = self._type(schema, field)
        description = schema.get("description", "")
        if not isinstance(description, str):
            raise FieldError(f"{field}.description",
                             f"description must be a string, got {_kind(description)}")
        self._walk.nodes += 1  # counted before the children, so the budget bounds the walk
        items, props = None, ()
        if type_ == "array" and "items" in schema:
            items = self._param(schema["items"], f"{field}.items", "", False, refs, depth + 1)
        if type_ == "object":
            props = self._properties(schema, field, refs, depth)
        enum = keywords.enum(schema, type_, field)
        fields = dict(name=name, type=type_, description=description, required=required,
                      enum=enum, items=items, properties=props)
        fields |= keywords.constraints(schema, type_, field) | self._pattern(schema, type_, field)
        if "default" in schema:
            fields |= {"default": self._default(schema["default"], type_, enum, field),
                       "has_default": True}
        try:
            return Param(**fields)
        except ValidationError as exc:
            raise FieldError(field, f"invalid schema: {exc.errors()[0]['msg']}") from None

    def _expand(self, schema: dict, field: str, name: str, required: bool,
                refs: tuple[str, ...], depth: int) -> Param:
        """A `$ref` expanded, or its earlier expansion where it comes out the same (see `walk`)."""
        resolved, chain = self._resolve(schema, field, refs)
        key = (schema["$ref"], json.dumps(schema, sort_keys=True) if len(schema) > 1 else "")
        known = self._walk.reuse(key, depth, refs, MAX_NODES, MAX_DEPTH, MAX_REF_DEPTH)
        if known is not None:
            return known.model_copy(update={"name": name, "required": required})
        mark = self._walk.mark(depth, len(refs), len(self.notes))
        out = self._param(resolved, field, name, required, chain, depth + 1)
        self._walk.record(key, mark, out, len(self.notes))
        return out

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
        self._walk.resolved.append(ref)
        if len(schema) == 1:  # nothing beside the $ref: the target itself, not a copy
            return target, (*refs, ref)
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
        for req in [r for r in required if r not in props]:
            self._lenient_or_raise(FieldError(f"{field}.required", f"required names absent "
                                              f"parameter {req!r}"), "dropped from required")
        params = []
        for key, sub in props.items():
            if not isinstance(key, str) or not key:
                raise FieldError(f"{field}.properties", f"invalid property name {key!r}")
            params.append(self._param(sub, f"{field}.properties.{key}", key, key in required,
                                      refs, depth + 1))
        return tuple(params)

    def _default(self, value: Any, type_: str, enum: tuple | None, field: str) -> Any:
        if self.dialect == "bfcl" and isinstance(value, str) and type_ not in keywords.TEXT:
            value = keywords.bfcl_literal(value)
        if value is not None and not matches_type(value, type_):
            raise FieldError(f"{field}.default",
                             f"default {value!r} is not of declared type {type_!r}")
        if value is not None and enum is not None and not keywords.contains(enum, value):
            raise FieldError(f"{field}.default", f"default {value!r} is not in enum {list(enum)}")
        return value

    def _pattern(self, schema: dict, type_: str, field: str) -> dict[str, str]:
        """The `pattern` field; lenient mode drops (and notes) one Python's `re` cannot read."""
        if "pattern" not in schema:
            return {}
        pattern = keywords.pattern(schema["pattern"], type_, field)
        error = keywords.regex_error(pattern)
        if not error:
            return {"pattern": pattern}
        self._lenient_or_raise(FieldError(f"{field}.pattern",
                                          f"invalid regex {pattern!r}: {error}"), "pattern dropped")
        return {}

    def _lenient_or_raise(self, exc: FieldError, kept: str) -> None:
        """Strict: raise `exc`; lenient: note it with what was done instead, and go on."""
        if not self.lenient:
            raise exc
        self.notes.append(FieldError(exc.field, f"{exc.message} ({kept})"))

    def _stop(self, schema: dict, refs: tuple[str, ...]) -> str:
        """Why this `$ref` is not expanded (a cycle, too deep, over budget), or "" to expand it."""
        self._walk.longest = max(self._walk.longest, len(refs))
        stop = _bound(schema, refs)
        if not stop and self._walk.nodes >= MAX_NODES:
            stop = f"(reference to {schema['$ref']} not expanded: schema over {MAX_NODES} nodes)"
        self._walk.stops += bool(stop)
        return stop

    def _deref_member(self, member: Any, field: str, refs: tuple[str, ...]) -> tuple[dict, tuple]:
        """A member of allOf/anyOf/oneOf with its `$ref`s followed (a cycle, or a $ref met over
        budget, stays a $ref), and the chain of `$ref`s it was reached through."""
        if not isinstance(member, dict):
            raise FieldError(field, f"entry must be a schema object, got {_kind(member)}")
        while "$ref" in member and not self._stop(member, refs):
            member, refs = self._resolve(member, field, refs)
        if "allOf" in member:
            return self._merge_all_of(member, field, refs)
        return member, refs

    def _members_of(self, key: str, members: list, field: str,
                    refs: tuple[str, ...]) -> tuple[list[dict], tuple]:
        """Members with their `$ref`s followed, and `refs` plus every `$ref` followed: what is
        merged from them stays inside that chain, so cycles through them are caught."""
        out, chain = [], refs
        for i, member in enumerate(members):
            member, reached = self._deref_member(member, f"{field}.{key}[{i}]", refs)
            out.append(member)
            chain += tuple(r for r in reached if r not in chain)
        return out, chain

    def _merge_all_of(self, schema: dict, field: str, refs: tuple[str, ...]
                      ) -> tuple[dict, tuple]:
        """One schema holding every allOf member (keywords beside the allOf win)."""
        members = _members(schema, "allOf", field)
        if len(members) == 1:  # keep the member's own $ref, so cycles stay detectable
            if not isinstance(members[0], dict):
                raise FieldError(f"{field}.allOf[0]",
                                 f"entry must be a schema object, got {_kind(members[0])}")
            return members[0] | {k: v for k, v in schema.items() if k != "allOf"}, refs
        merged: dict = {}
        members, chain = self._members_of("allOf", members, field, refs)
        for member in members:
            _merge_into(merged, member)
        _merge_into(merged, {k: v for k, v in schema.items() if k != "allOf"}, override=True)
        return merged, chain

    def _unwrap(self, schema: dict, field: str, refs: tuple[str, ...]) -> tuple[dict, tuple]:
        """Reduce anyOf/oneOf to one schema (nullable idiom, or a union as documented above)."""
        for key in ("anyOf", "oneOf"):
            if key not in schema:
                continue
            rest = [o for o in _members(schema, key, field) if o != {"type": "null"}]
            siblings = {k: v for k, v in schema.items() if k != key}
            if len(rest) == 1:
                if not isinstance(rest[0], dict):
                    raise FieldError(f"{field}.{key}", f"{key} entry must be a schema object")
                return rest[0] | siblings, refs
            members, chain = self._members_of(key, rest, field, refs)
            return _union(members, siblings), chain
        return schema, refs


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
