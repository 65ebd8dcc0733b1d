"""OpenAPI documents as they are written in the wild (hand-written fixtures in
tests/fixtures/openapi/): allOf, unions, 3.1 keywords, bounded $refs, bodies of every kind,
derived names, qualified names, strict vs lenient, and `schemas check --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolmodal.cli import build_parser, main
from toolmodal.ingest import SchemaError, load_catalogue
from toolmodal.ingest.jsonschema import MAX_NODES, MAX_REF_DEPTH, Converter
from toolmodal.ingest.loader import read_document
from toolmodal.ingest.openapi import derived_name
from toolmodal.schema import Catalogue, Param, Tool

FIXTURES = Path(__file__).parent / "fixtures" / "openapi"
GOOD = [FIXTURES / name for name in ("schemas_3_0.yaml", "schemas_3_1.yaml", "bodies.yaml")]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(GOOD, lenient=True)


def _params(tool: Tool) -> dict[str, dict]:
    return {p.name: p.model_dump(exclude_defaults=True) for p in tool.parameters}


def test_all_of_merges_properties_and_required(catalogue: Catalogue) -> None:
    tool = catalogue.tool("createPet")
    assert list(_params(tool))[:2] == ["name", "species"]  # $ref member first, then the object
    assert tool.param("name").required and tool.param("species").required
    # allOf of one $ref beside a description: the description wins, the enum comes through.
    assert (tool.param("species").description, tool.param("species").enum) == (
        "Kind of animal.", ("cat", "dog"))


def test_unions_take_the_closest_single_typed_form(catalogue: Catalogue) -> None:
    tool = catalogue.tool("createPet")
    # Different types: "any", the alternatives named.
    assert _params(tool)["tag"] == {"name": "tag", "type": "any",
                                    "description": "One of: string, integer."}
    # One type: enums united.
    assert tool.param("size").enum == ("small", "medium", "large")
    # Objects: all properties, required only where every member requires it.
    owner = tool.param("owner")
    assert [(p.name, p.required) for p in owner.properties] == [("id", True), ("name", False)]


def test_openapi_3_1_type_lists_const_and_examples(catalogue: Catalogue) -> None:
    params = _params(catalogue.tool("putNode"))
    assert params["label"] == {"name": "label", "type": "string"}  # [string, null]; examples read
    assert params["weight"]["type"] == "any"  # [integer, string]
    assert params["kind"]["enum"] == ("node",)  # const


def test_recursive_and_deep_refs_are_bounded_with_a_note(catalogue: Catalogue) -> None:
    tool = catalogue.tool("putNode")
    item = tool.param("node").property("children").items
    assert (item.type, item.description) == (
        "object", "(recursive reference to #/components/schemas/Node, not expanded)")
    deep, depth = tool.param("deep"), 0
    while deep.properties:
        deep, depth = deep.properties[0], depth + 1
    assert "nested more than 8 deep, not expanded" in deep.description and depth == 8


def test_cycle_in_a_plain_json_schema_is_bounded_too() -> None:
    schema = {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}},
              "$defs": {"Node": {"type": "object", "properties": {
                  "child": {"oneOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}}}}
    child = Converter(root=schema).param(schema, "p").property("child").property("child")
    assert child.description == "(recursive reference to #/$defs/Node, not expanded)"


def test_form_and_multipart_bodies_become_parameters(catalogue: Catalogue) -> None:
    login = _params(catalogue.tool("login"))
    assert login == {"user": {"name": "user", "type": "string", "required": True},
                     "remember": {"name": "remember", "type": "boolean"}}
    upload = catalogue.tool("post_users_id_avatar")
    assert upload.param("file").type == "string"  # a file: a string with its format
    assert upload.param("file").description == "The image. (format: binary)"


def test_name_in_two_locations_is_qualified(catalogue: Catalogue) -> None:
    upload = catalogue.tool("post_users_id_avatar")
    assert [p.name for p in upload.parameters] == ["path_id", "file", "body_id"]
    assert (upload.param("path_id").type, upload.param("body_id").type) == ("string", "integer")


def test_array_and_scalar_bodies_are_one_body_parameter(catalogue: Catalogue) -> None:
    tags = catalogue.tool("setTags").param("body")
    assert (tags.type, tags.items.type, tags.required) == ("array", "string", True)
    note = catalogue.tool("Put_note")  # operationId "Put note", rewritten in lenient mode
    assert [(p.name, p.type) for p in note.parameters] == [("note-id", "string"),
                                                           ("body", "string")]


@pytest.mark.parametrize(("method", "path", "name"), [
    ("post", "/users/{id}/avatar", "post_users_id_avatar"),
    ("GET", "/", "get"),  # the root path
    ("delete", "/v1/orders/{order-id}:cancel", "delete_v1_orders_order_id_cancel"),
])
def test_derived_name(method: str, path: str, name: str) -> None:
    assert derived_name(method, path) == name


def test_strict_fails_the_file_naming_file_tool_and_field() -> None:
    with pytest.raises(SchemaError) as info:
        load_catalogue([FIXTURES / "broken.yaml"])
    assert len(info.value.errors) == 2
    assert info.value.errors[0].startswith(
        f"{FIXTURES / 'broken.yaml'}: tool 'badType': paths./bad-type.get.parameters[0].schema"
        ".type: unknown type 'strin'")


def test_strict_rejects_an_operation_id_lenient_rewrites() -> None:
    with pytest.raises(SchemaError, match="tool 'Put note': .*invalid tool name 'Put note'"):
        load_catalogue([FIXTURES / "bodies.yaml"])


def test_lenient_keeps_what_can_be_represented(caplog: pytest.LogCaptureFixture) -> None:
    catalogue = load_catalogue([FIXTURES / "broken.yaml"], lenient=True)
    assert [t.name for t in catalogue.tools] == ["ok"]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(skipped) == 2 and "badRef" in skipped[1]


def test_check_json_summary(capsys: pytest.CaptureFixture) -> None:
    assert main(["schemas", "check", "--lenient", "--json", str(FIXTURES)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"] == {"tools": 7, "skipped": 2}
    assert out["files"][str(FIXTURES / "broken.yaml")] == {"tools": 1, "skipped": {
        "unknown type …; expected one of …": 1, "unresolvable $ref …: no …": 1}}
    assert out["files"][str(FIXTURES / "bodies.yaml")] == {"tools": 4, "skipped": {}}
    assert set(out["files"]) == {str(FIXTURES / f) for f in (
        "broken.yaml", "bodies.yaml", "schemas_3_0.yaml", "schemas_3_1.yaml")}


def test_check_strict_and_lenient_exit_codes(capsys: pytest.CaptureFixture) -> None:
    assert main(["schemas", "check", str(FIXTURES / "broken.yaml")]) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "2 error(s)" in err
    assert main(["schemas", "check", "--lenient", str(FIXTURES / "broken.yaml")]) == 0
    captured = capsys.readouterr()
    assert "skipped: " in captured.err and captured.out.strip() == "1 tools, 1 categories"


def test_ingest_step_takes_extra_schemas_leniently(monkeypatch: pytest.MonkeyPatch) -> None:
    from steps import ingest_schemas as module
    from steps.ingest_schemas import ingest_schemas

    logged: list[dict] = []
    monkeypatch.setattr(module, "log_metadata", logged.append)  # no step is running
    bundled = Path(__file__).resolve().parent.parent / "data" / "tool_schemas"
    catalogue = ingest_schemas.entrypoint(str(bundled), extra_schemas=[str(FIXTURES)],
                                          lenient=True)
    assert {"ok", "createPet", "get_current_weather"} <= {t.name for t in catalogue.tools}
    assert {"broken", "bodies", "weather"} <= set(catalogue.categories)
    assert logged[0]["n_tools"] == len(catalogue.tools)


def test_data_generate_and_check_take_the_same_source_options(
        capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["data", "generate", "--schemas", "a", "b", "--lenient",
                                      "--mcp", "srv --x", "--out", "o"])
    assert (args.schemas, args.lenient, args.mcp, args.mcp_timeout) == (
        ["a", "b"], True, ["srv --x"], 60.0)
    assert main(["schemas", "check"]) == 2
    assert "give schema files or folders" in capsys.readouterr().err


def test_schema_nested_past_max_depth_is_bounded_with_a_note() -> None:
    schema: dict = {"type": "string"}
    for _ in range(40):
        schema = {"type": "object", "properties": {"x": schema}}
    param, depth = Converter().param(schema, "p"), 0
    while param.properties:
        param, depth = param.properties[0], depth + 1
    assert (param.type, param.description) == (
        "object", "(nested deeper than 32 levels, not expanded)") and depth == 33


def _size(param: Param) -> int:
    return 1 + (_size(param.items) if param.items else 0) + sum(map(_size, param.properties))


def _web(width: int) -> dict:
    """`width` schemas, each with a nullable (anyOf) link to every one: Microsoft Graph's shape."""
    link = [{"anyOf": [{"$ref": f"#/components/schemas/S{j}"}, {"type": "object",
                                                                  "nullable": True}]}
            for j in range(width)]
    schemas = {f"S{i}": {"type": "object", "description": f"S{i}", "properties": {
        "id": {"type": "string"}, **{f"s{j}": link[j] for j in range(width)}}}
        for i in range(width)}
    return {"components": {"schemas": schemas}}


def test_wide_ref_web_through_unions_is_bounded_and_cycles_are_caught() -> None:
    # 12 schemas linking each other through unions: unbounded, this is 12^32 nodes.
    param = Converter(root=_web(12)).param({"$ref": "#/components/schemas/S0"}, "p")
    # The node budget stops it (a member met over budget is left out of its union).
    assert MAX_NODES <= _size(param) <= MAX_NODES + 13 * MAX_REF_DEPTH
    # S0 -> s0 (a union holding S0 again) is a cycle, caught although it goes through anyOf.
    assert param.property("s0").description == "One of: any, object."
    assert param.property("s1").property("s1").description == "One of: any, object."
    assert param.property("s1").property("s2").property("id").type == "string"


def test_reused_ref_expansion_equals_a_fresh_one() -> None:
    # The memo (toolmodal.ingest.walk) must not change a result: S3 expanded first at the top,
    # then met below S0 and S1 (where S0 and S1 are cycles), gives what a fresh converter gives.
    doc = _web(4)
    s3, deep = {"$ref": "#/components/schemas/S3"}, {"$ref": "#/components/schemas/S0"}
    warmed = Converter(root=doc)
    warmed.param(s3, "a")
    assert warmed.param(deep, "b") == Converter(root=doc).param(deep, "b")


def _one_op(schema: dict) -> dict:
    return {"openapi": "3.0.0", "paths": {"/x": {"post": {"operationId": "make", "requestBody": {
        "required": True, "content": {"application/json": {"schema": schema}}}}}}}


@pytest.mark.parametrize(("schema", "field", "message", "kept"), [
    # `required` names a property that is not there: dropped from required in lenient mode.
    ({"type": "object", "required": ["a", "gone"], "properties": {"a": {"type": "string"}}},
     "schema.required", "required names absent parameter 'gone' (dropped from required)",
     {"name": "a", "type": "string", "required": True}),
    # ECMA-262 Unicode classes Python's `re` cannot compile: the pattern is dropped, not the tool.
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": r"^\p{L}+$"}}},
     "schema.properties.a.pattern", r"invalid regex '^\\p{L}+$': bad escape \p at position 1 "
                                    "(pattern dropped)", {"name": "a", "type": "string"}),
])
def test_lenient_drops_what_python_cannot_hold_with_a_note(schema: dict, field: str,
                                                           message: str, kept: dict) -> None:
    where = "doc.json: tool 'make': paths./x.post.requestBody.content.application/json."
    tools, errors, notes = read_document(_one_op(schema), "doc.json", lenient=True)
    assert (errors, notes) == ([], [f"{where}{field}: {message}"])
    assert _params(tools[0]) == {"a": kept}
    strict = read_document(_one_op(schema), "doc.json")
    assert (strict.tools, strict.notes) == ([], [])
    assert strict.errors == [f"{where}{field}: {message.rsplit(' (', 1)[0]}"]
