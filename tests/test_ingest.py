"""Schema ingestion on well-formed input: each format, categories, order, hashes, BFCL sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toolmodal.cli import main
from toolmodal.ingest import SchemaError, load_catalogue, tools_from_bfcl_record
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Catalogue

DATA = Path(__file__).parent / "data" / "schemas"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue([DATA])


def test_openai_wrapped_tool_with_returns(catalogue: Catalogue) -> None:
    tool = catalogue.tool("get_weather")
    assert tool.category == "weather"
    assert tool.required_names == ["city"]
    unit = tool.param("unit")
    assert (unit.type, unit.enum, unit.default, unit.has_default) == (
        "string", ("celsius", "fahrenheit"), "celsius", True)
    days = tool.param("days")
    assert (days.minimum, days.maximum) == (1, 14)
    assert tool.param("city").min_length == 1
    assert tool.returns is not None and tool.returns.property("temperature").required


def test_openai_bare_function_nested_object_and_array_items(catalogue: Catalogue) -> None:
    tool = catalogue.tool("get_air_quality")
    location = tool.param("location")
    assert location.type == "object" and location.property("lat").required
    pollutants = tool.param("pollutants")
    assert pollutants.items is not None and pollutants.items.enum == ("pm25", "pm10", "o3")
    assert tool.returns is None


def test_single_bare_function_with_null_default_and_pattern(catalogue: Catalogue) -> None:
    date = catalogue.tool("get_sunrise").param("date")
    assert date.has_default and date.default is None
    assert date.pattern == r"^\d{4}-\d{2}-\d{2}$"


def test_mcp_envelope_nullable_idioms_and_output_schema(catalogue: Catalogue) -> None:
    tool = catalogue.tool("search_products")
    assert tool.category == "shop"
    assert tool.param("max_price").type == "number"  # ["number", "null"]
    assert tool.param("sort").enum == ("price", "rating")  # anyOf [X, null]
    items = tool.returns.property("items").items  # $defs inside outputSchema
    assert items is not None and items.property("sku").type == "string"


def test_openapi_yaml_operations_parameters_body_and_refs(catalogue: Catalogue) -> None:
    get = catalogue.tool("get_order")
    assert [p.name for p in get.parameters] == ["order_id", "expand"]  # header dropped
    assert get.param("order_id").required and get.param("order_id").description == "Order number."
    assert get.description == "Fetch one order."  # summary when no description
    assert get.returns.property("lines").items.property("quantity").minimum == 1
    patch = catalogue.tool("update_order")
    assert [p.name for p in patch.parameters] == ["order_id", "status", "note"]
    assert patch.param("status").enum == ("open", "shipped", "cancelled")
    assert patch.returns is None  # 204 has no body
    assert patch.source.endswith("#/paths/~1orders~1{order_id}/patch")


def test_bfcl_python_types_literal_default_and_dedup(catalogue: Catalogue) -> None:
    area = catalogue.tool("geometry.triangle_area")  # on lines 1 and 3, identical: kept once
    assert area.param("base").type == "number"  # float
    assert area.param("exact").default is False  # BFCL's "false"
    move = catalogue.tool("robot.move")
    assert move.param("target").type == "array"  # tuple
    assert move.param("options").property("speed").type == "any"
    assert area.source.endswith(":1") and move.source.endswith(":3")


def test_categories_and_deterministic_order(catalogue: Catalogue) -> None:
    # A file lying directly in the folder given gets its stem; others their folder's name.
    assert catalogue.categories == ["bfcl_records", "shop", "weather"]
    assert [t.name for t in catalogue.tools] == [t.name for t in load_catalogue([DATA]).tools]
    direct = load_catalogue([DATA / "weather" / "bare_function.json"])
    assert direct.tools[0].category == "bare_function"


def test_tools_from_bfcl_record() -> None:
    record = {"id": "x", "function": [{"name": "f", "parameters": {
        "type": "dict", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}]}
    (tool,) = tools_from_bfcl_record(record, "q.json:1")
    assert tool.required_names == ["a"] and tool.source == "q.json:1"
    with pytest.raises(SchemaError, match=r"q.json:1: tool 'f': parameters.required"):
        tools_from_bfcl_record({"function": [{"name": "f", "parameters": {
            "type": "dict", "properties": {}, "required": ["a"]}}]}, "q.json:1")


_DEFS = {"defs": {"C": {"type": "string", "pattern": "^a", "description": "inner",
                        "default": "ab"}}}


@pytest.mark.parametrize(("schema", "description", "default"), [
    # OpenAPI 3.0's idiom for documenting a referenced schema: the wrapper's keywords win.
    ({"allOf": [{"$ref": "#/defs/C"}], "description": "x", "default": "aa"}, "x", "aa"),
    # Nullable reference; keywords the wrapper lacks come from the referenced schema.
    ({"anyOf": [{"$ref": "#/defs/C"}, {"type": "null"}], "description": "x"}, "x", "ab"),
    ({"oneOf": [{"type": "null"}, {"$ref": "#/defs/C"}]}, "inner", "ab"),
    # A wrapper inside a wrapper.
    ({"allOf": [{"allOf": [{"$ref": "#/defs/C"}]}], "description": "x"}, "x", "ab"),
])
def test_ref_inside_single_schema_wrapper(schema: dict, description: str, default: str) -> None:
    param = Converter(root=_DEFS).param(schema, "f")
    assert (param.type, param.pattern, param.description, param.default) == (
        "string", "^a", description, default)


def test_ref_in_all_of_brief_case() -> None:
    param = Converter(root={"defs": {"C": {"type": "string", "pattern": "^a"}}}).param(
        {"allOf": [{"$ref": "#/defs/C"}], "description": "x"}, "f")
    assert (param.type, param.pattern, param.description) == ("string", "^a", "x")


def _write(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _function(name: str, description: str, keys_reversed: bool = False) -> dict:
    props = {"a": {"type": "string", "description": "first"}, "b": {"type": "integer"}}
    fn = {"name": name, "description": description,
          "parameters": {"type": "object", "properties": props, "required": ["a"]}}
    return dict(reversed(fn.items())) if keys_reversed else fn


def test_content_hash_ignores_file_and_key_order_but_sees_edits(tmp_path: Path) -> None:
    one, two = tmp_path / "one" / "cat", tmp_path / "two" / "cat"
    _write(one / "a.json", [_function("f", "does f")])
    _write(one / "b.json", [_function("g", "does g")])
    # Same tools, file names swapped (so the load order flips) and keys reordered.
    _write(two / "b.json", [_function("f", "does f", keys_reversed=True)])
    _write(two / "a.json", [_function("g", "does g", keys_reversed=True)])
    first, second = load_catalogue([one.parent]), load_catalogue([two.parent])
    assert [t.name for t in first.tools] != [t.name for t in second.tools]
    assert first.content_hash() == second.content_hash()
    _write(two / "a.json", [_function("g", "does g, edited")])
    assert load_catalogue([two.parent]).content_hash() != first.content_hash()


def test_ingestion_writes_nothing(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path / "schemas")
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    load_catalogue([tmp_path / "schemas"])
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_schemas_check_command(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["schemas", "check", str(DATA)]) == 0
    assert capsys.readouterr().out.strip() == "8 tools, 3 categories"
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "f", "parameters": {"type": "object", "required": "a"}}]')
    assert main(["schemas", "check", str(DATA), str(bad)]) == 1
    out = capsys.readouterr()
    assert out.out.strip() == "8 tools, 3 categories"
    assert f"{bad}: tool 'f': parameters.required: required must be a list" in out.err


def _distinct_functions(path: Path) -> tuple[set[str], dict[str, set[str]]]:
    """Names and, per name, the distinct definitions in a BFCL file (computed independently)."""
    names: set[str] = set()
    variants: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        for fn in json.loads(line)["function"]:
            names.add(fn["name"])
            variants.setdefault(fn["name"], set()).add(json.dumps(fn, sort_keys=True))
    return names, variants


def test_bfcl_sample_every_function_ingests(bfcl_dir: Path) -> None:
    files = sorted(bfcl_dir.glob("BFCL_v4_*.json"))
    assert len(files) == 5
    for path in files:
        names, variants = _distinct_functions(path)
        conflicting = sorted(n for n, v in variants.items() if len(v) > 1)
        # Every single record ingests on its own (what the evaluator uses).
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            tools_from_bfcl_record(json.loads(line), f"{path.name}:{number}")
        if not conflicting:
            catalogue = load_catalogue([path])
            assert len(catalogue.tools) == len(names)
            assert catalogue.categories == [path.stem]
            continue
        # BFCL reuses a name with a different schema across records: a catalogue cannot hold
        # both, so it is reported, naming the name (simple_python: 3 names, 4 lines).
        with pytest.raises(SchemaError) as info:
            load_catalogue([path])
        assert {e.split("tool '")[1].split("'")[0] for e in info.value.errors} == set(conflicting)
        assert all("definition differs from the one on" in e for e in info.value.errors)


def test_array_without_items_and_optional_body(tmp_path: Path) -> None:
    # An array with no "items" is accepted (elements unconstrained); an OpenAPI request body not
    # marked required (the default) makes all of its fields optional.
    body = {"content": {"application/json": {"schema": {
        "type": "object", "properties": {"tags": {"type": "array"}}, "required": ["tags"]}}}}
    doc = {"openapi": "3.1.0", "paths": {"/t": {"post": {"operationId": "tag",
                                                          "requestBody": body}}}}
    _write(tmp_path / "api.json", doc)
    tags = load_catalogue([tmp_path / "api.json"]).tool("tag").param("tags")
    assert (tags.type, tags.items, tags.required) == ("array", None, False)
    body["required"] = True
    _write(tmp_path / "api.json", doc)
    assert load_catalogue([tmp_path / "api.json"]).tool("tag").param("tags").required


def test_bundled_catalogue_size() -> None:
    bundled = Path(__file__).resolve().parent.parent / "data" / "tool_schemas"
    catalogue = load_catalogue([bundled])
    assert len(catalogue.tools) >= 60 and len(catalogue.categories) >= 10
