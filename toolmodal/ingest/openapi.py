"""OpenAPI 3.0 and 3.1 documents (JSON or YAML): each operation becomes one tool.

- Name: the operationId; without one, method and path (`GET /users/{id}/posts` ->
  `get_users_id_posts`). Lenient mode also rewrites an operationId that is not a valid tool name
  (`"Get user"` -> `Get_user`); strict mode reports it.
- Parameters: path and query parameters, then the request body, in one flat list. A JSON body
  (`application/json`, `*+json`) of object type gives its properties; form
  (`application/x-www-form-urlencoded`) and `multipart/form-data` bodies likewise, a file field
  being a string whose description ends "(format: binary)". An array, scalar, free-form or other
  media-type body is one parameter named `body`. A name used in more than one location is
  qualified by it (`path_id`, `query_id`, `body_id`).
- `$ref`s into the document are resolved; schema keywords (allOf, anyOf/oneOf, const, 3.1 type
  lists, cycles) are handled as `toolmodal.ingest.jsonschema` documents.
- Returns: the JSON schema of the 200, else 201, else first 2XX response.

Left out: header and cookie parameters (not something a model fills in), security schemes,
servers, callbacks, webhooks and OpenAPI 2 (Swagger, rejected).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from toolmodal.ingest.common import NAME_RE, collect, object_of, text, tool_name
from toolmodal.ingest.errors import FieldError, Problem, reason, tool_label
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Param, Tool

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
JSON = "application/json"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
LOCATIONS = ("path", "query")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def looks_like(doc: Any) -> bool:
    """Whether `doc` is an OpenAPI document."""
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc)


def read(doc: dict, file: str, lenient: bool = False
         ) -> tuple[list[Tool], list[str], list[str]]:
    """All operations of an OpenAPI 3 document as tools; errors and notes name file, tool, field.

    Args:
        doc: The parsed document.
        file: File label for messages.
        lenient: Rewrite operationIds that are not valid tool names instead of reporting them,
            and drop what `Converter` drops leniently (each drop a note).

    Returns:
        The tools, one error line per operation skipped, one note per lenient drop.
    """
    version = doc.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        message = f"only OpenAPI 3.x is read, got version {version!r}"
        return [], [Problem(f"{file}: openapi: {message}", reason(message))], []
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        message = f"expected an object of paths, got {paths!r}"
        return [], [Problem(f"{file}: paths: {message}", reason(message))], []
    conv = Converter(root=doc, lenient=lenient)
    entries, notes = [], []
    for path, item in paths.items():
        if not isinstance(item, dict):
            message = "path item must be an object"
            return [], [Problem(f"{file}: paths.{path}: {message}", reason(message))], []
        for method in (m for m in METHODS if m in item):
            op = item[method]
            op_id = op.get("operationId") if isinstance(op, dict) else None
            label = tool_label(op_id, f"{method.upper()} {path}")
            build = partial(_tool, conv, path, method, item, file, lenient)
            entries.append((label, partial(_noted, conv, label, file, notes, build)))
    return (*collect(file, entries), notes)


def _noted(conv: Converter, label: str, file: str, notes: list[str],
           build: Callable[[], Tool]) -> Tool:
    """Build one tool; what the converter dropped leniently becomes notes naming file and tool."""
    conv.notes.clear()
    tool = build()
    notes += [note.render(file, label) for note in conv.notes]
    return tool


def derived_name(method: str, path: str) -> str:
    """A tool name from method and path: `GET /users/{id}/posts` -> `get_users_id_posts`."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
    return "_".join([method.lower(), *words])


def _tool(conv: Converter, path: str, method: str, item: dict, file: str, lenient: bool) -> Tool:
    field = f"paths.{path}.{method}"
    op = object_of(item[method], field)
    params = _qualified(_parameters(conv, item, op, path, field) + _body(conv, op, field))
    description = op.get("description") or op.get("summary")
    return Tool(name=_name(op, method, path, field, lenient),
                description=text(description, f"{field}.description"),
                parameters=tuple(params), returns=_returns(conv, op, field),
                source=f"{file}#/paths/{_pointer(path)}/{method}")


def _name(op: dict, method: str, path: str, field: str, lenient: bool) -> str:
    if "operationId" not in op:
        return derived_name(method, path)
    raw = op["operationId"]
    if lenient and isinstance(raw, str) and raw and not NAME_RE.fullmatch(raw):
        raw = _NOT_NAME.sub("_", raw).strip("_") or derived_name(method, path)
        raw = raw if NAME_RE.fullmatch(raw) else f"op_{raw}"
    return tool_name(raw, f"{field}.operationId")


def _pointer(token: str) -> str:
    """Escape a JSON-pointer token ("/orders/{id}" -> "~1orders~1{id}")."""
    return str(token).replace("~", "~0").replace("/", "~1")


def _qualified(params: list[tuple[str, Param]]) -> list[Param]:
    """Flatten (location, param) pairs; a name used in several locations gets the location."""
    locations: dict[str, set[str]] = {}
    for location, param in params:
        locations.setdefault(param.name, set()).add(location)
    return [p.model_copy(update={"name": f"{loc}_{p.name}"}) if len(locations[p.name]) > 1 else p
            for loc, p in params]


def _parameters(conv: Converter, item: dict, op: dict, path: str,
                field: str) -> list[tuple[str, Param]]:
    """Path-level then operation-level parameters; an operation one replaces a same-named one."""
    chosen: dict[tuple[str, str], tuple[dict, str]] = {}
    for owner, where in ((item, f"paths.{path}"), (op, field)):
        raw = owner.get("parameters", [])
        if not isinstance(raw, list):
            raise FieldError(f"{where}.parameters", "parameters must be a list")
        for i, node in enumerate(raw):
            param = conv.deref(node, f"{where}.parameters[{i}]")
            name, location = param.get("name"), param.get("in")
            if not isinstance(name, str) or not name:
                raise FieldError(f"{where}.parameters[{i}].name", f"invalid name {name!r}")
            if location not in ("path", "query", "header", "cookie"):
                raise FieldError(f"{where}.parameters[{i}].in", f"invalid location {location!r}")
            chosen[(name, location)] = (param, f"{where}.parameters[{i}]")
    return [(loc, _parameter(conv, p, f)) for (_, loc), (p, f) in chosen.items()
            if loc in LOCATIONS]


def _parameter(conv: Converter, param: dict, field: str) -> Param:
    schema, where = param.get("schema"), f"{field}.schema"
    if schema is None and isinstance(param.get("content"), dict) and param["content"]:
        media_type, media = next(iter(param["content"].items()))
        schema, where = object_of(media, f"{field}.content").get("schema"), \
            f"{field}.content.{media_type}.schema"
    if schema is None:
        raise FieldError(where, "parameter has no schema")
    required = param.get("required", False)
    if not isinstance(required, bool):
        raise FieldError(f"{field}.required", f"required must be true or false, got {required!r}")
    out = conv.param(schema, where, param["name"], required or param.get("in") == "path")
    description = text(param.get("description"), f"{field}.description")
    return out.model_copy(update={"description": description}) if description else out


def _body(conv: Converter, op: dict, field: str) -> list[tuple[str, Param]]:
    if "requestBody" not in op:
        return []
    body = conv.deref(op["requestBody"], f"{field}.requestBody")
    content = object_of(body.get("content"), f"{field}.requestBody.content")
    if not content:
        return []
    required = body.get("required", False)
    if not isinstance(required, bool):
        raise FieldError(f"{field}.requestBody.required",
                         f"required must be true or false, got {required!r}")
    media_type = _media_type(content)
    where = f"{field}.requestBody.content.{media_type}"
    schema = object_of(content[media_type], where).get("schema", {"type": "string",
                                                                  "format": "binary"})
    whole = conv.param(schema, f"{where}.schema", "body", required)
    if whole.type != "object" or not whole.properties or not _is_structured(media_type):
        description = text(body.get("description"), f"{field}.requestBody.description")
        return [("body", _with_format(whole.model_copy(update={
            "description": whole.description or description}), schema))]
    props = whole.properties
    raw_props = _raw_properties(conv, schema, f"{where}.schema")
    # An optional body (OpenAPI's default) may be left out whole: none of its fields is required.
    return [("body", _with_format(p if required else p.model_copy(update={"required": False}),
                                  raw_props.get(p.name))) for p in props]


def _media_type(content: dict) -> str:
    """The media type to read: JSON first, then form, multipart, then the first listed."""
    jsons = [m for m in content if m == JSON or str(m).endswith(("+json", "/json"))]
    forms = [m for f in FORMS for m in content if str(m).startswith(f)]
    return (jsons + forms + list(content))[0]


def _is_structured(media_type: str) -> bool:
    return media_type.endswith("json") or media_type.startswith(FORMS)


def _raw_properties(conv: Converter, schema: Any, field: str) -> dict[str, Any]:
    """The raw property schemas of a body (for their `format`); {} when not plainly listed."""
    node = conv.deref(schema, field) if isinstance(schema, dict) else {}
    props = node.get("properties")
    return props if isinstance(props, dict) else {}


def _with_format(param: Param, raw: Any) -> Param:
    """Mark a file field: a string whose format is binary/base64 says so in its description."""
    node = raw if isinstance(raw, dict) else {}
    items = node.get("items")
    fmt = node.get("format") or (items.get("format") if isinstance(items, dict) else None)
    if fmt not in ("binary", "base64", "byte"):
        return param
    note = f"(format: {fmt})"
    type_ = "string" if param.type == "any" else param.type
    return param.model_copy(update={"type": type_, "description": " ".join(
        t for t in (param.description, note) if t)})


def _returns(conv: Converter, op: dict, field: str) -> Param | None:
    responses = object_of(op.get("responses", {}), f"{field}.responses")
    codes = ["200", "201"] + sorted(c for c in map(str, responses) if c.startswith("2"))
    for code in (c for c in codes if c in responses):
        response = conv.deref(responses[code], f"{field}.responses.{code}")
        content = response.get("content")
        media = content.get(JSON) if isinstance(content, dict) else None
        if isinstance(media, dict) and "schema" in media:
            return conv.param(media["schema"], f"{field}.responses.{code}.content.{JSON}.schema")
        return None
    return None
