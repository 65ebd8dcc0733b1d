"""Schema ingestion on well-formed input: each format, categories, order, hashes, BFCL sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toolmodal.cli import main
from toolmodal.ingest import SchemaError, ingest_paths, load_catalogue, tools_from_bfcl_record
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


def _expected_notes(path: Path) -> tuple[set[str], list[tuple[int, str, int]]]:
    """Names in a BFCL file and its redefinitions (line, name, first line), found independently."""
    first: dict[str, tuple[int, str]] = {}
    redefined: list[tuple[int, str, int]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for fn in json.loads(line)["function"]:
            text = json.dumps(fn, sort_keys=True)
            first_line, first_text = first.setdefault(fn["name"], (number, text))
            if text != first_text:
                redefined.append((number, fn["name"], first_line))
    return set(first), redefined


def test_bfcl_sample_every_function_ingests(bfcl_dir: Path) -> None:
    files = sorted(bfcl_dir.glob("BFCL_v4_*.json"))
    assert len(files) == 5
    all_redefined = []
    for path in files:
        names, redefined = _expected_notes(path)
        all_redefined += [(path.name, name) for _, name, _ in redefined]
        # Every single record ingests on its own (what the evaluator uses).
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            tools_from_bfcl_record(json.loads(line), f"{path.name}:{number}")
        # The whole file too: a name BFCL redefines in a later question keeps its first schema.
        tools, errors, notes = ingest_paths([path])
        assert errors == [] and sorted(t.name for t in tools) == sorted(names)
        assert notes == [f"{path}:{n}: tool {name!r} redefined (differs from line {first}); "
                         "BFCL scopes tools per question, the catalogue keeps the first"
                         for n, name, first in redefined]
        catalogue = load_catalogue([path])
        assert catalogue.categories == [path.stem]
        for _, name, first in redefined:
            assert catalogue.tool(name).source == f"{path}:{first}"
    assert sorted(all_redefined) == [  # what the sample holds (3 names on 4 lines)
        ("BFCL_v4_simple_python.json", "calculate_triangle_area"),
        ("BFCL_v4_simple_python.json", "math.gcd"), ("BFCL_v4_simple_python.json", "math.gcd"),
        ("BFCL_v4_simple_python.json", "solve_quadratic")]


def test_schemas_check_passes_each_bfcl_sample_file(bfcl_dir: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    for path in sorted(bfcl_dir.glob("BFCL_v4_*.json")):
        assert main(["schemas", "check", str(path)]) == 0, path
        out = capsys.readouterr()
        names, redefined = _expected_notes(path)
        assert out.out == f"{len(names)} tools, 1 categories\n"
        assert out.err.count("note: ") == len(redefined)
        assert "error" not in out.err


def test_bfcl_redefinition_across_records_is_a_note(tmp_path: Path) -> None:
    def record(*functions: dict) -> str:
        return json.dumps({"id": "q", "question": [], "function": list(functions)})

    def fn(description: str) -> dict:
        return {"name": "area", "description": description,
                "parameters": {"type": "dict", "properties": {}, "required": []}}

    path = tmp_path / "q.json"
    path.write_text("\n".join([record(fn("First.")), record(fn("First.")), record(fn("Other."))]))
    tools, errors, notes = ingest_paths([path])
    assert errors == [] and [t.description for t in tools] == ["First."]
    # The identical repeat on line 2 is no news; line 3 differs.
    assert notes == [f"{path}:3: tool 'area' redefined (differs from line 1); BFCL scopes tools "
                     "per question, the catalogue keeps the first"]
    # Twice in one record stays an error, and is not also reported as a redefinition.
    path.write_text("\n".join([record(fn("First."), fn("Other.")), record()]))
    _, errors, notes = ingest_paths([path])
    assert errors == [f"{path}:1: tool 'area': name: duplicate tool name in one record"]
    assert notes == []


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
