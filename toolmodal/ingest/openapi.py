"""OpenAPI 3 documents (JSON or YAML): each operation becomes one tool.

The operationId is the tool name (an operation without one is an error). Path and query
parameters and the properties of an `application/json` request body are merged into one flat
parameter list; a name appearing twice is an error. `$ref`s into the document (components) are
resolved. The `application/json` schema of the 200 (else 201) response is the return type.
Left out: header and cookie parameters (not something a model fills in), non-JSON bodies
(rejected), security schemes, servers, callbacks and OpenAPI 2 (Swagger, rejected).
"""

from __future__ import annotations

from typing import Any

from toolmodal.ingest.common import collect, object_of, text, tool_name
from toolmodal.ingest.errors import FieldError, tool_label
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Param, Tool

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
JSON = "application/json"


def looks_like(doc: Any) -> bool:
    """Whether `doc` is an OpenAPI document."""
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc)


def read(doc: dict, file: str) -> tuple[list[Tool], list[str]]:
    """All operations of an OpenAPI 3 document as tools; errors name file, tool and field."""
    version = doc.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        return [], [f"{file}: openapi: only OpenAPI 3.x is read, got version {version!r}"]
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return [], [f"{file}: paths: expected an object of paths, got {paths!r}"]
    conv = Converter(root=doc)
    entries = []
    for path, item in paths.items():
        if not isinstance(item, dict):
            return [], [f"{file}: paths.{path}: path item must be an object"]
        for method in (m for m in METHODS if m in item):
            op = item[method]
            op_id = op.get("operationId") if isinstance(op, dict) else None
            entries.append((tool_label(op_id, f"{method.upper()} {path}"),
                            lambda p=path, m=method, i=item: _tool(conv, p, m, i, file)))
    return collect(file, entries)


def _tool(conv: Converter, path: str, method: str, item: dict, file: str) -> Tool:
    field = f"paths.{path}.{method}"
    op = object_of(item[method], field)
    if "operationId" not in op:
        raise FieldError(f"{field}.operationId", "operation has no operationId")
    params = _parameters(conv, item, op, path, field) + _body(conv, op, field)
    names = [p.name for p in params]
    for name in names:
        if names.count(name) > 1:
            raise FieldError(field, f"conflicting parameter name {name!r} "
                                    "(appears in more than one of path, query and JSON body)")
    description = op.get("description") or op.get("summary")
    return Tool(name=tool_name(op["operationId"], f"{field}.operationId"),
                description=text(description, f"{field}.description"),
                parameters=tuple(params), returns=_returns(conv, op, field),
                source=f"{file}#/paths/{_pointer(path)}/{method}")


def _pointer(token: str) -> str:
    """Escape a JSON-pointer token ("/orders/{id}" -> "~1orders~1{id}")."""
    return str(token).replace("~", "~0").replace("/", "~1")


def _parameters(conv: Converter, item: dict, op: dict, path: str, field: str) -> list[Param]:
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
    return [_parameter(conv, p, f) for (_, loc), (p, f) in chosen.items()
            if loc in ("path", "query")]


def _parameter(conv: Converter, param: dict, field: str) -> Param:
    if "schema" not in param:
        raise FieldError(f"{field}.schema", "parameter has no schema")
    required = param.get("required", False)
    if not isinstance(required, bool):
        raise FieldError(f"{field}.required", f"required must be true or false, got {required!r}")
    out = conv.param(param["schema"], f"{field}.schema", param["name"],
                     required or param.get("in") == "path")
    description = text(param.get("description"), f"{field}.description")
    return out.model_copy(update={"description": description}) if description else out


def _body(conv: Converter, op: dict, field: str) -> list[Param]:
    if "requestBody" not in op:
        return []
    body = conv.deref(op["requestBody"], f"{field}.requestBody")
    content = object_of(body.get("content"), f"{field}.requestBody.content")
    if JSON not in content:
        raise FieldError(f"{field}.requestBody.content",
                         f"only {JSON} bodies are read, got {sorted(map(str, content))}")
    media = object_of(content[JSON], f"{field}.requestBody.content.{JSON}")
    params = conv.object_params(media.get("schema"), f"{field}.requestBody.content.{JSON}.schema")
    required = body.get("required", False)
    if not isinstance(required, bool):
        raise FieldError(f"{field}.requestBody.required",
                         f"required must be true or false, got {required!r}")
    # An optional body (OpenAPI's default) may be left out whole: none of its fields is required.
    return [p if required else p.model_copy(update={"required": False}) for p in params]


def _returns(conv: Converter, op: dict, field: str) -> Param | None:
    responses = object_of(op.get("responses", {}), f"{field}.responses")
    for code in ("200", "201"):
        if code not in responses:
            continue
        response = conv.deref(responses[code], f"{field}.responses.{code}")
        content = response.get("content")
        media = content.get(JSON) if isinstance(content, dict) else None
        if isinstance(media, dict) and "schema" in media:
            return conv.param(media["schema"], f"{field}.responses.{code}.content.{JSON}.schema")
        return None
    return None
