"""Malformed schema input: every case fails with a message naming file, tool and field.

Also: all problems of all files are reported together, and a property test that no document,
however odd, makes ingestion fail with anything but `SchemaError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolmodal.ingest import SchemaError, load_catalogue, read_text


def _fn(props: object = None, required: object = None, name: object = "get_weather",
        **extra: object) -> dict:
    """An OpenAI bare function object with the given parameter properties."""
    params: dict = {"type": "object", "properties": props if props is not None else {}}
    if required is not None:
        params["required"] = required
    fn = {"name": name, "description": "Weather.", "parameters": params} | extra
    return {k: v for k, v in fn.items() if v is not None}


def _openai(*fns: dict) -> str:
    return json.dumps(list(fns))


def _unit(**schema: object) -> str:
    """One function whose parameter `unit` has the given schema."""
    return _openai(_fn({"unit": schema}))


def _openapi(paths: dict, components: dict | None = None, version: str = "3.0.0") -> str:
    doc = {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths}
    return json.dumps(doc | ({"components": components} if components else {}))


def _mcp(tool: dict) -> str:
    return json.dumps({"tools": [tool]})


def _bfcl(*records: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)


def _rec(*functions: dict) -> dict:
    return {"id": "q", "question": [], "function": list(functions)}


def _bfn(props: dict, name: str = "calc.area", description: str = "Area.") -> dict:
    return {"name": name, "description": description,
            "parameters": {"type": "dict", "properties": props, "required": []}}


# (id, {relative file: text}, fragments the one matching error line must contain)
CASES = [
    # Truncated JSON: file and the position of the syntax error.
    ("invalid_json", {"x.json": '[{"name": "f",'}, ["x.json: invalid JSON at line 1"]),
    # Whitespace only.
    ("empty_file", {"x.json": " \n"}, ["x.json: file is empty"]),
    # Valid JSON that is none of the four formats.
    ("unknown_format", {"x.json": '{"foo": 1}'}, ["x.json: unknown format"]),
    # YAML that does not parse.
    ("invalid_yaml", {"x.yaml": "openapi: [3.0\n  bad"}, ["x.yaml: invalid YAML"]),
    # YAML values JSON lacks (a date) are rejected, not stringified.
    ("yaml_date", {"x.yaml": "name: f\ndescription: 2024-01-01\n"},
     ["x.yaml: YAML holds a value JSON cannot represent"]),
    # No name: the tool is named by its position.
    ("missing_name", {"x.json": _openai(_fn(name=None))}, ["x.json: tool #1: name: missing"]),
    # Empty name.
    ("empty_name", {"x.json": _openai(_fn(name=""))}, ["tool #1: name: invalid tool name ''"]),
    # Spaces are not allowed in a name.
    ("invalid_name", {"x.json": _openai(_fn(name="get weather"))},
     ["x.json: tool 'get weather': name: invalid tool name"]),
    # Name of the wrong JSON type.
    ("name_not_string", {"x.json": _openai(_fn(name=3))},
     ["tool #1: name: name must be a string, got 3"]),
    # The same name twice in one file.
    ("duplicate_same_file", {"x.json": _openai(_fn(), _fn())},
     ["x.json: tool 'get_weather': name: duplicate tool name, also defined in", "x.json"]),
    # The same name in two files: both are named.
    ("duplicate_across_files", {"a/x.json": _openai(_fn()), "b/y.json": _openai(_fn())},
     ["y.json: tool 'get_weather': name: duplicate tool name, also defined in", "a/x.json"]),
    # A misspelt type.
    ("unknown_type", {"x.json": _unit(type="strin")},
     ["x.json: tool 'get_weather': parameters.properties.unit.type: unknown type 'strin'"]),
    # BFCL's Python type names are not JSON Schema.
    ("python_type_in_json_schema", {"x.json": _unit(type="float")},
     ["parameters.properties.unit.type: unknown type 'float'"]),
    # A type list holding something other than type names.
    ("type_list_not_names", {"x.json": _unit(type=["string", 3])},
     ["parameters.properties.unit.type: type list must hold type names"]),
    # An empty anyOf allows nothing.
    ("empty_anyof", {"x.json": _unit(anyOf=[])},
     ["parameters.properties.unit.anyOf: anyOf must not be empty"]),
    # allOf must be a list of schemas.
    ("allof_not_list", {"x.json": _unit(allOf={"type": "string"})},
     ["parameters.properties.unit.allOf: allOf must be a list"]),
    # An integer among string enum values (the message the brief quotes).
    ("enum_wrong_type", {"x.json": _unit(type="string", enum=["c", 3])},
     ["x.json: tool 'get_weather': parameters.properties.unit.enum: "
      "enum values must be strings for type 'string', got 3"]),
    # An enum that allows nothing.
    ("empty_enum", {"x.json": _unit(type="string", enum=[])},
     ["parameters.properties.unit.enum: enum must not be empty"]),
    # enum must be a list.
    ("enum_not_list", {"x.json": _unit(type="string", enum="celsius")},
     ["parameters.properties.unit.enum: enum must be a list"]),
    # Repeated enum value.
    ("duplicate_enum_value", {"x.json": _unit(type="string", enum=["c", "c"])},
     ["parameters.properties.unit.enum: duplicate enum value 'c'"]),
    # Default of another type.
    ("default_wrong_type", {"x.json": _unit(type="integer", default="3")},
     ["parameters.properties.unit.default: default '3' is not of declared type 'integer'"]),
    # Default outside the enum.
    ("default_not_in_enum", {"x.json": _unit(type="string", enum=["c", "f"], default="k")},
     ["parameters.properties.unit.default: default 'k' is not in enum"]),
    # required names a parameter that does not exist.
    ("required_absent", {"x.json": _openai(_fn({"city": {"type": "string"}}, ["town"]))},
     ["x.json: tool 'get_weather': parameters.required: required names absent parameter 'town'"]),
    # required as a string instead of a list.
    ("required_not_list", {"x.json": _openai(_fn({"city": {"type": "string"}}, "city"))},
     ["tool 'get_weather': parameters.required: required must be a list"]),
    # properties as a list.
    ("properties_not_object", {"x.json": _openai(_fn([{"name": "city"}]))},
     ["tool 'get_weather': parameters.properties: properties must be an object"]),
    # parameters as a list.
    ("parameters_not_object", {"x.json": _openai(_fn(parameters=["city"]))},
     ["tool 'get_weather': parameters: schema must be an object, got a list"]),
    # Tool description of the wrong type.
    ("description_not_string", {"x.json": _openai(_fn(description=["Weather."]))},
     ["tool 'get_weather': description: description must be a string"]),
    # Parameter description of the wrong type.
    ("param_description_not_string", {"x.json": _unit(type="string", description=5)},
     ["parameters.properties.unit.description: description must be a string, got int"]),
    # $ref to a definition that does not exist.
    ("unresolvable_ref", {"x.json": _unit(**{"$ref": "#/$defs/Unit"})},
     ["parameters.properties.unit.$ref: unresolvable $ref '#/$defs/Unit'"]),
    # Remote $refs are never fetched.
    ("remote_ref", {"x.json": _unit(**{"$ref": "https://example.com/unit.json"})},
     ["parameters.properties.unit.$ref: unresolvable $ref 'https://example.com/unit.json'"]),
    # Array items must be a schema.
    ("items_not_schema", {"x.json": _unit(type="array", items="string")},
     ["parameters.properties.unit.items: schema must be an object, got a string"]),
    # Empty numeric range.
    ("minimum_above_maximum", {"x.json": _unit(type="integer", minimum=5, maximum=1)},
     ["tool 'get_weather': parameters.properties.unit: minimum 5 > maximum 1"]),
    # Empty length range.
    ("min_length_above_max_length", {"x.json": _unit(type="string", minLength=9, maxLength=2)},
     ["parameters.properties.unit: min_length 9 > max_length 2"]),
    # Lengths are counts.
    ("negative_max_length", {"x.json": _unit(type="string", maxLength=-1)},
     ["parameters.properties.unit.maxLength: maxLength must be a non-negative integer"]),
    # A numeric bound on a string.
    ("constraint_wrong_type", {"x.json": _unit(type="string", minimum=0)},
     ["parameters.properties.unit.minimum: minimum does not apply to type 'string'"]),
    # Regex that does not compile.
    ("invalid_pattern", {"x.json": _unit(type="string", pattern="[a-")},
     ["parameters.properties.unit.pattern: invalid regex '[a-'"]),
    # A wrapped tool whose type is not "function".
    ("wrapper_not_function", {"x.json": json.dumps([{"type": "retrieval", "function": _fn()}])},
     ["x.json: tool 'get_weather': type: tool type must be 'function'"]),
    # An operationId that is not a tool name (lenient mode rewrites it; strict reports it).
    ("openapi_bad_operation_id", {"x.json": _openapi({"/w": {"get": {
        "operationId": "Get weather"}}})},
     ["x.json: tool 'Get weather': paths./w.get.operationId: invalid tool name 'Get weather'"]),
    # $ref to a missing component parameter.
    ("openapi_missing_component", {"x.json": _openapi({"/w": {"get": {
        "operationId": "w", "parameters": [{"$ref": "#/components/parameters/City"}]}}})},
     ["tool 'w': paths./w.get.parameters[0].$ref: unresolvable $ref"]),
    # OpenAPI 2 (Swagger) is not read.
    ("openapi_version_2", {"x.json": json.dumps({"swagger": "2.0", "paths": {}})},
     ["x.json: openapi: only OpenAPI 3.x is read"]),
    # MCP inputSchema must describe an object.
    ("mcp_input_not_object", {"x.json": _mcp({"name": "ping", "inputSchema": {"type": "string"}})},
     ["x.json: tool 'ping': inputSchema: must be a schema of type 'object', got type 'string'"]),
    # MCP tools must have an inputSchema.
    ("mcp_missing_input_schema", {"x.json": _mcp({"name": "ping"})},
     ["x.json: tool 'ping': inputSchema: missing inputSchema"]),
    # tools must be a list.
    ("mcp_tools_not_list", {"x.json": json.dumps({"tools": {"ping": {}}})},
     ["x.json: tools: expected a list of tools"]),
    # A BFCL line that is not JSON: the line number is named.
    ("bfcl_line_not_json", {"x.jsonl": _bfcl(_rec(_bfn({})), "{not json", _rec(_bfn({})))},
     ["x.jsonl:2: line is not valid JSON"]),
    # A BFCL line that is JSON but no record (e.g. a possible_answer line).
    ("bfcl_line_not_record", {"x.jsonl": _bfcl(_rec(_bfn({})), {"id": "q", "ground_truth": []})},
     ["x.jsonl:2: not a BFCL record"]),
    # A Python type BFCL does not use.
    ("bfcl_unknown_type", {"x.jsonl": _bfcl(_rec(_bfn({"r": {"type": "str"}})), _rec())},
     ["x.jsonl:1: tool 'calc.area': parameters.properties.r.type: unknown type 'str'"]),
    # BFCL's string default must spell a value of the declared type.
    ("bfcl_default_wrong_type", {"x.jsonl": _bfcl(_rec(_bfn(
        {"r": {"type": "boolean", "default": "maybe"}})), _rec())},
     ["x.jsonl:1: tool 'calc.area': parameters.properties.r.default: default 'maybe'"]),
    # A name redefined in a later record is legal (a note), but the redefinition is still
    # validated in full.
    ("bfcl_malformed_redefinition", {"x.jsonl": _bfcl(_rec(_bfn({})), _rec(_bfn(
        {"r": {"type": "str"}})))},
     ["x.jsonl:2: tool 'calc.area': parameters.properties.r.type: unknown type 'str'"]),
    # BFCL's per-question scoping stops at the file: the same name in two files is a duplicate.
    ("bfcl_same_name_across_files", {"a/x.jsonl": _bfcl(_rec(_bfn({})), _rec()),
                                     "b/y.jsonl": _bfcl(_rec(_bfn({})), _rec())},
     ["y.jsonl:1: tool 'calc.area': name: duplicate tool name, also defined in", "a/x.jsonl:1"]),
    # The same name twice inside one record.
    ("bfcl_duplicate_in_record", {"x.jsonl": _bfcl(_rec(_bfn({}), _bfn({})), _rec())},
     ["x.jsonl:1: tool 'calc.area': name: duplicate tool name in one record"]),
]


@pytest.mark.parametrize(("files", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_is_named(tmp_path: Path, files: dict[str, str],
                                  fragments: list[str]) -> None:
    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    with pytest.raises(SchemaError) as info:
        load_catalogue([tmp_path])
    matching = [e for e in info.value.errors if all(f in e for f in fragments)]
    assert matching, f"no error contains {fragments}; got {info.value.errors}"
    assert all(e.startswith(str(tmp_path)) for e in info.value.errors)  # every line names a file


def test_at_least_twenty_distinct_malformations() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 20


def test_every_problem_in_every_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(_openai(_fn(name=""), _fn({"u": {"type": "strin"}}, name="g")))
    (tmp_path / "b.json").write_text("")
    (tmp_path / "c.json").write_text(_openai(_fn(name="ok_tool")))
    with pytest.raises(SchemaError) as info:
        load_catalogue([tmp_path])
    assert len(info.value.errors) == 3
    assert str(info.value).count("\n") == 2


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError) as info:
        load_catalogue([tmp_path / "nope.json", tmp_path / "empty"])
    assert [e.split(": ", 1)[1][:8] for e in info.value.errors] == ["no such ", "no schem"]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)
_WORDS = st.sampled_from([
    "type", "properties", "items", "enum", "default", "required", "$ref", "minimum", "maximum",
    "minLength", "maxLength", "pattern", "anyOf", "allOf", "description", "name", "parameters",
    "function", "inputSchema", "outputSchema", "tools", "result", "jsonrpc", "openapi", "paths",
    "get", "post", "operationId", "requestBody", "responses", "content", "application/json",
    "schema", "in", "query", "path", "object", "string", "integer", "array", "dict", "float",
    "#/$defs/A", "$defs", "A", "3.0.0", "200", "f"])
_SCHEMAISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | _WORDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_WORDS, inner, max_size=5),
    max_leaves=40)


_KEYWORDS = st.sampled_from(["type", "properties", "items", "enum", "default", "required",
                             "$ref", "minimum", "maximum", "minLength", "pattern", "anyOf",
                             "allOf", "description"])
_VALUES = st.one_of(st.sampled_from(["object", "string", "integer", "number", "array", "dict",
                                     "float", "tuple", "null", "#/$defs/A", "a", "[", "b"]),
                    st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False))
_SCHEMA = st.recursive(
    st.dictionaries(_KEYWORDS, _VALUES, max_size=4),
    lambda inner: st.dictionaries(_KEYWORDS, inner | st.lists(inner | _VALUES, max_size=3)
                                  | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)
                                  | _VALUES, max_size=5),
    max_leaves=25)


def _wrap(kind: str, schema: dict, defs: dict) -> object:
    """Put a random schema where each format keeps its parameters, so the converter runs."""
    params = {"type": "object", "properties": {"a": schema}, "$defs": {"A": defs}}
    if kind == "openai":
        return [{"type": "function", "function": {"name": "f", "parameters": params}}]
    if kind == "mcp":
        return {"tools": [{"name": "f", "inputSchema": params, "outputSchema": schema}]}
    if kind == "bfcl":
        return {"function": [{"name": "f", "parameters": params | {"type": "dict"}}]}
    op = {"operationId": "f", "parameters": [{"name": "q", "in": "query", "schema": schema}],
          "requestBody": {"content": {"application/json": {"schema": params}}},
          "responses": {"200": {"content": {"application/json": {"schema": schema}}}}}
    return {"openapi": "3.0.0", "paths": {"/p": {"post": op}}, "$defs": {"A": defs}}


_WRAPPED = st.builds(_wrap, st.sampled_from(["openai", "mcp", "bfcl", "openapi"]), _SCHEMA,
                     _SCHEMA)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_JSON, _SCHEMAISH, _WRAPPED))
def test_random_documents_never_crash(doc: object) -> None:
    text = json.dumps(doc)
    for is_yaml in (False, True):
        tools, errors, notes = read_text(text, "x.json", is_yaml=is_yaml)
        assert all(isinstance(e, str) and e.startswith("x.json") for e in errors + notes)
        for tool in tools:
            tool.content_hash()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_random_text_never_crashes(text: str) -> None:
    for is_yaml in (False, True):
        read_text(text, "x.txt", is_yaml=is_yaml)
