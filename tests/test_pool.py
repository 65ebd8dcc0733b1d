"""The real-world tool pool (`toolmodal.datagen.pool`) on a tiny fake OpenAPI directory written
into tmp_path: quality filter, description cleaning, providers, seeded sampling, hold-out by
provider, the missing-directory error and fallback, and a small dataset with the pool on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.config import POOL_DIRECTORY, TRAIN_SPLITS, RealWorldPool
from toolmodal.datagen.pool import (
    chain_links,
    clean_text,
    draw_pool,
    hold_out_providers,
    load_pool,
    provider_documents,
    quality_problem,
    readable,
    weighted_links,
    weighted_targets,
)
from toolmodal.schema import Catalogue, Param, Tool

DATAGEN = Path(__file__).parent / "data" / "datagen"


def _op(op_id: str, description: str, params: dict[str, str] | None = None) -> dict:
    """An OpenAPI GET operation with query parameters (name -> description)."""
    return {"operationId": op_id, "description": description,
            "parameters": [{"name": n, "in": "query", "required": True, "description": d,
                            "schema": {"type": "string"}} for n, d in (params or {}).items()],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"id": {"type": "string"}}}}}}}}


def _document(ops: dict[str, dict]) -> dict:
    return {"openapi": "3.0.0", "info": {"title": "t", "version": "1"},
            "paths": {f"/{name}": {"get": op} for name, op in ops.items()}}


PROVIDERS = {
    "weather.example.com.json": {
        "forecast": _op("getForecast", "Get the <b>weather forecast</b> for a city.",
                        {"city": "City name"}),
        "alerts": _op("listAlerts", "List the **active** weather alerts of a region.",
                      {"region": "Region name"}),
        "bare": _op("getThing", ""),
    },
    "books.example.org/library.json": {
        "search": _op("searchBooks", "Search the [catalogue](https://x.example) for books.",
                      {"title": "Book title"}),
        "hash": _op("get_a3f9e2c17b", "Fetch a record by its key."),
    },
    "books.example.org/shop.json": {
        "price": _op("getBookPrice", "Get the current price of a book.", {"isbn": "ISBN"}),
    },
    "maps.example.net.json": {
        "route": _op("planRoute", "Plan a driving route between two places.",
                     {"origin": "Start", "destination": "End"}),
        "many": _op("bigQuery", "Run a query with many options.",
                    {f"option_{c}": "An option" for c in "abcdefghij"}),
    },
    "music.example.io.json": {
        "artist": _op("getArtist", "Get an artist's profile.", {"artist": "Artist name"}),
        "same": _op("getUser", "Get user"),
    },
}


@pytest.fixture()
def api_dir(tmp_path) -> Path:
    """A tiny fake `api/` folder: four providers, one of them with two documents."""
    root = tmp_path / "api"
    for rel, ops in PROVIDERS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_document(ops)), encoding="utf-8")
    return root


def _pool(api_dir: Path, **overrides) -> RealWorldPool:
    return RealWorldPool(**({"directory": api_dir, "operations": 50, "providers": 10,
                             "held_out_provider_share": 0.25} | overrides))


@pytest.mark.parametrize(("raw", "clean"), [
    ("Get the <b>weather</b> forecast.", "Get the weather forecast."),  # HTML tag
    ("Tom &amp; Jerry&#39;s list", "Tom & Jerry's list"),  # HTML entities
    ("See [the docs](https://x.example/a) now", "See the docs now"),  # markdown link
    ("A **bold** and `code` and *soft* word", "A bold and code and soft word"),  # emphasis
    ("# Title\n\n- first item\n- second", "Title first item second"),  # heading and list
    ("snake_case_name stays", "snake_case_name stays"),  # underscores inside words are kept
    ("  spaced \n\n out  ", "spaced out"),  # whitespace collapsed
    ("", ""),  # nothing stays nothing
])
def test_clean_text_strips_markup(raw, clean):
    assert clean_text(raw, 200) == clean


def test_clean_text_cuts_at_a_sentence_boundary():
    text = "First sentence here. Second one is longer than the rest. Third."
    assert clean_text(text, 45) == "First sentence here."
    assert clean_text(text, 200) == text
    long = "word " * 80  # one sentence longer than the limit: cut at a word, marked
    cut = clean_text(long, 60)
    assert len(cut) <= 60 and cut.endswith("...") and " wor..." not in cut


def _tool(name: str = "getForecast", description: str = "Get a forecast.",
          params: tuple[str, ...] = ("city",)) -> Tool:
    return Tool(name=name, description=description,
                parameters=tuple(Param(name=p, type="string") for p in params))


@pytest.mark.parametrize(("tool", "problem"), [
    (_tool(), None),  # described, one readable parameter
    (_tool(description="  <p></p> "), "quality: no description"),  # only markup
    (_tool(name="getUser", description="Get user"), "quality: description repeats the name"),
    (_tool(params=tuple(f"p{c}" for c in "abcdefghi")), "quality: too many parameters"),  # 9 > 8
    (_tool(name="op_5f2a9c81d3"), "quality: unreadable tool name"),  # hash-like
    (_tool(name="get_" + "very_" * 10 + "long"), "quality: unreadable tool name"),  # > 40
    (_tool(name="project", description="A filterable list of projects."),  # no verb anywhere
     "quality: neither the description nor the name says what it does"),
    (_tool(name="getProjectStatus", description="Deprecated: use the new route."), None),  # name
    (_tool(name="post_payments_transId_void", description="Deprecated: use the new route."),
     "quality: neither the description nor the name says what it does"),  # a path, not a phrase
    (_tool(params=("api-version",)), "quality: unreadable parameter name"),  # not an identifier
    (_tool(params=("filter[name]",)), "quality: unreadable parameter name"),
    (Tool(name="listThings", description="List the things.", parameters=(Param(
        name="values", type="array", items=Param(type="any")),)),
     "quality: untyped parameter"),  # numpy's array_like: no sensible value to draw
    (Tool(name="listThings", description="List the things.", parameters=(Param(
        name="tags", type="array", items=Param(type="string"), default=["a"], has_default=True),)),
     "quality: list or object as a default or enum value"),
])
def test_quality_filter(tool, problem):
    assert quality_problem(tool, RealWorldPool()) == problem


@pytest.mark.parametrize(("name", "ok"), [
    ("listAlerts", True), ("get_v2_users", True), ("ec2_describe", True),  # short digit runs
    ("get_20230101_report", False), ("deadbeef12ab", False), ("____", False)])
def test_readable_names(name, ok):
    assert readable(name, 40) is ok


def test_weighted_targets_cap_the_pool_share():
    bundled = [_tool(name=f"bundled{i}") for i in range(3)]
    pool = [_tool(name=f"pool{i}").model_copy(update={"category": "api.example.com"})
            for i in range(20)]
    targets = weighted_targets(bundled + pool, ["api.example.com"], 0.3)
    share = sum(t.category == "api.example.com" for t in targets) / len(targets)
    assert 0.25 <= share <= 0.3  # every bundled tool 16 times: 20 / 68
    assert {t.name for t in targets} == {t.name for t in bundled + pool}
    assert weighted_targets(pool, ["api.example.com"], 0.3) == pool  # no bundled tool to repeat
    assert weighted_targets(bundled + pool, ["api.example.com"], 1.0) == bundled + pool


def test_weighted_links_cap_the_pool_chains():
    from toolmodal.datagen.examples import Link

    bundled = [_tool(name=f"bundled{i}") for i in range(2)]
    pool = [_tool(name=f"pool{i}").model_copy(update={"category": "api.example.com"})
            for i in range(4)]
    links = [Link(bundled[0], "id", bundled[1], "city")] + [
        Link(pool[i], "id", pool[i + 1], "city") for i in range(3)]
    weighted = weighted_links(links, ["api.example.com"], 0.3)
    assert sum(k.src.category == "api.example.com" for k in weighted) / len(weighted) <= 0.3
    assert set(weighted) == set(links)


def test_providers_are_top_level_entries(api_dir):
    documents = provider_documents(api_dir)
    assert sorted(documents) == ["books.example.org", "maps.example.net", "music.example.io",
                                 "weather.example.com"]
    assert [p.name for p in documents["books.example.org"]] == ["library.json", "shop.json"]


def test_draw_keeps_good_operations_cleaned_with_their_provider(api_dir):
    drawn = draw_pool(_pool(api_dir))
    tools = {t.name: t for t in drawn.seen + drawn.held_out}
    assert sorted(tools) == ["getArtist", "getBookPrice", "getForecast", "listAlerts",
                             "planRoute", "searchBooks"]
    assert tools["getForecast"].description == "Get the weather forecast for a city."
    assert tools["searchBooks"].description == "Search the catalogue for books."
    assert tools["getBookPrice"].category == "books.example.org"
    assert drawn.documents_read == 5
    assert drawn.skipped["quality: too many parameters"] == 1
    assert drawn.skipped["quality: unreadable tool name"] == 1


def test_sampling_is_seeded(api_dir):
    def names(**kw):
        drawn = draw_pool(_pool(api_dir, operations=3, providers=3, **kw))
        return [t.name for t in drawn.seen + drawn.held_out], drawn.held_out_providers
    assert names() == names()
    first, _ = names()
    assert len(first) == 3
    assert len({tuple(names(seed=s)[0]) for s in range(8)}) > 1  # the seed matters


def test_taken_names_and_descriptions_are_not_drawn_again(api_dir):
    bundled = [_tool(name="getForecast", description="Another forecast."),
               _tool(name="other", description="Plan a driving route between two places.")]
    drawn = draw_pool(_pool(api_dir), bundled)
    names = {t.name for t in drawn.seen + drawn.held_out}
    assert "getForecast" not in names and "planRoute" not in names
    assert drawn.skipped["duplicate name or description"] == 2


def test_held_out_providers_never_reach_training(api_dir):
    drawn = draw_pool(_pool(api_dir, held_out_provider_share=0.5))
    assert len(drawn.held_out_providers) == 2
    assert all(t.category not in drawn.held_out_providers for t in drawn.seen)
    assert {t.category for t in drawn.held_out} == set(drawn.held_out_providers)


def test_hold_out_must_leave_both_sides():
    tools = [_tool(name="a").model_copy(update={"category": "one.example"})]
    with pytest.raises(ValueError, match="over 2 providers holds out 2"):
        hold_out_providers(tools + [_tool(name="b").model_copy(
            update={"category": "two.example"})], 0.9, 0)
    assert hold_out_providers(tools, 0.0, 0)[1] == []


def test_python_functions_join_as_their_own_provider(api_dir, tmp_path, monkeypatch):
    (tmp_path / "poolgeometry.py").write_text(
        'def rectangle_area(width: float, height: float) -> float:\n'
        '    """Compute the **area** of a rectangle.\n\n'
        '    Args:\n        width: Width in meters.\n        height: Height in meters.\n    """\n'
        '    return width * height\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    drawn = draw_pool(_pool(api_dir, python_modules=("poolgeometry",)))
    tool = next(t for t in drawn.seen + drawn.held_out if t.name == "rectangle_area")
    assert tool.category == "poolgeometry"
    assert tool.description == "Compute the area of a rectangle."


def test_pool_tools_chain_only_within_their_provider():
    def tool(name, category, returns=None, param=None):
        return Tool(name=name, description=name, category=category, returns=returns,
                    parameters=() if param is None else (Param(name=param, type="string"),))
    out = Param(type="object", properties=(Param(name="id", type="string"),))
    tools = [tool("list_a", "a.example", out), tool("get_a", "a.example", param="id"),
             tool("get_b", "b.example", param="id"), tool("get_c", "bundled", param="id")]
    assert {(k.src.name, k.dst.name) for k in chain_links(tools)} == {
        ("list_a", "get_a"), ("list_a", "get_b"), ("list_a", "get_c")}  # ids link anywhere
    assert {(k.src.name, k.dst.name) for k in chain_links(tools, ["a.example", "b.example"])} \
        == {("list_a", "get_a")}


def test_missing_directory_names_the_path(tmp_path, caplog):
    missing = tmp_path / "nowhere" / "api"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        draw_pool(RealWorldPool(directory=missing))
    with pytest.raises(FileNotFoundError, match="make pool"):
        load_pool(RealWorldPool(directory=missing), Catalogue(tools=()))
    with caplog.at_level(logging.WARNING, logger="toolmodal.datagen.pool"):
        drawn = load_pool(RealWorldPool(directory=missing, when_missing="bundled"),
                          Catalogue(tools=()))
    assert drawn.seen == drawn.held_out == [] and drawn.missing == str(missing)
    assert str(missing) in caplog.text and "bundled catalogue only" in caplog.text


@pytest.fixture()
def generated(api_dir):
    catalogue = Catalogue.from_json((DATAGEN / "catalogue.json").read_text())
    config = GenerationConfig(examples=300, seed=3, real_world_pool=_pool(
        api_dir, held_out_provider_share=0.5))
    return generate_dataset(catalogue, config)


def _offered(dataset, splits) -> list[dict]:
    return [t for s in splits for row in dataset[s] for t in json.loads(row["tools"])]


def test_dataset_trains_on_seen_providers_and_tests_on_held_out_ones(generated):
    dataset, card = generated
    pool = card["real_world_pool"]
    held = set(pool["held_out_providers"])
    seen = set(pool["providers"]) - held
    assert len(held) == 2 and len(seen) == 2
    training = _offered(dataset, TRAIN_SPLITS)
    assert not [t["name"] for t in training if t["category"] in held]  # never offered
    targets = {c["name"] for s in TRAIN_SPLITS for row in dataset[s]
               for c in json.loads(row["expected_calls"])}
    trained = {t["name"] for t in training if t["category"] in seen} & targets
    assert trained, "no seen-provider tool is a training target"
    unseen = [row["category"] for row in dataset["test_unseen"]]
    assert held <= set(unseen)  # every held-out provider is tested
    assert {t["name"] for t in card["held_out_tools"]} >= {
        t["name"] for t in _offered(dataset, ["test_unseen"]) if t["category"] in held}
    assert card["catalogue"]["tools"] == 10 + pool["tools"]


def test_pool_calls_are_capped_and_the_gate_balances_each_source(generated):
    from toolmodal.validation import ValidationConfig, validate_dataset

    dataset, card = generated
    pool = set(card["real_world_pool"]["providers"])
    calls = [row["category"] in pool for s in TRAIN_SPLITS for row in dataset[s]
             if json.loads(row["expected_calls"]) and row["kind"] != "chain"]
    assert 0.1 <= sum(calls) / len(calls) <= RealWorldPool().max_target_share + 0.05
    outcome = validate_dataset(dataset, card, ValidationConfig())
    balance = next(c for c in outcome.checks if c.name == "tool_class_balance")
    assert balance.success, balance.details


def test_dataset_without_the_pool_has_no_pool_card():
    catalogue = Catalogue.from_json((DATAGEN / "catalogue.json").read_text())
    _, card = generate_dataset(catalogue, GenerationConfig(examples=100, seed=3))
    assert card["real_world_pool"] is None
    assert GenerationConfig().real_world_pool is None  # off unless an overlay turns it on


def test_realworld_overlay_turns_the_pool_on():
    from toolmodal import runconfig

    config = runconfig.build_run_config("data", ["cpu-long", "realworld"],
                                        {"schemas", "generation"})
    generation = GenerationConfig(**config["parameters"]["generation"])
    assert generation.examples == 4000  # the budget overlay's, untouched
    assert generation.real_world_pool.when_missing == "bundled"
    assert generation.real_world_pool.directory == POOL_DIRECTORY


def test_gate_bounds_pool_requests_on_their_own(generated, tiny_model_dir):
    from toolmodal.validation import ValidationConfig, validate_dataset

    dataset, card = generated
    config = ValidationConfig(max_request_nll=1000.0, max_pool_request_nll=0.01,
                              naturalness_sample=4)
    outcome = validate_dataset(dataset, card, config, model_dir=tiny_model_dir)
    checks = {c.name: c for c in outcome.checks}
    assert checks["request_naturalness"].success and not outcome.success
    pool = checks["pool_request_naturalness"]
    assert not pool.success and pool.details["sample"] == 4
    providers = set(card["real_world_pool"]["providers"])
    pool_queries = {m["content"] for s in TRAIN_SPLITS for row in dataset[s]
                    if row["category"] in providers for m in row["prompt"] if m["role"] == "user"}
    assert all(line.split(" ", 1)[1] in pool_queries for line in pool.details["least_natural"])
