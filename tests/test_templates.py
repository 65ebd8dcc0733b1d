"""Request templates (`toolmodal.datagen.templates`): parsing, checks against the schema with
errors naming file, tool and template, rendering (arguments = slots + annotations, every value
grounded), the bundled `requests.yaml` files, and held-out tools' templates in test sets only."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolmodal.calls import ToolCall, check_call
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.config import TRAIN_SPLITS
from toolmodal.datagen.template_render import render, render_detail, render_given
from toolmodal.datagen.templates import (
    TemplateError,
    ToolTemplates,
    catalogue_templates,
    check_template,
    load_templates,
    parse_template,
)
from toolmodal.datagen.verify import check_grounding
from toolmodal.ingest import ingest_paths, load_catalogue
from toolmodal.paths import project_path
from toolmodal.schema import Catalogue, Param, Tool

WEATHER = Tool(name="get_current_weather", description="Get the weather now.", parameters=(
    Param(name="location", type="string", required=True, min_length=2),
    Param(name="units", type="string", enum=("metric", "imperial"), default="metric",
          has_default=True),
    Param(name="include_air_quality", type="boolean"),
    Param(name="days", type="integer", minimum=1, maximum=14),
    Param(name="date", type="string", description="Day, YYYY-MM-DD."),
    Param(name="tags", type="array", items=Param(type="string"))))
BUNDLED = project_path("data/tool_schemas")


def _templates(*texts: str, values: dict | None = None) -> ToolTemplates:
    return ToolTemplates(WEATHER.name, tuple(parse_template(t) for t in texts), texts,
                         values or {})


# good templates: (template, the arguments every render carries)
GOOD = [
    ("What's the weather in {location}?", {"location"}),                    # one slot
    ("Is it (raining|cold|) in {location}?", {"location"}),                 # empty branch
    ("How hot is it in {location} [in Fahrenheit](units=imperial)?",
     {"location", "units"}),                                                # annotation
    ("Run outside in {location}?[](include_air_quality=true)",
     {"location", "include_air_quality"}),                                  # silent annotation
    ("{location} weather (for {days} days|[this week](days=7))", {"location", "days"}),
    ("Weather in {location} ((today|now)|on {date})", {"location"}),        # nested, optional
    (r"Weather \(quick\) in {location}", {"location"}),                     # escaped brackets
    ("Weather in {location}, then again in {location}", {"location"}),      # a slot twice
    ("Weather in {location} for [a hike](tags=hike)?", {"location"}),       # array item fixed
]
# bad templates: (template, words of the error)
BAD_SYNTAX = [
    ("Weather in {location", "bad slot"),                 # unclosed slot
    ("Weather in {}", "bad slot"),                        # empty slot name
    ("Weather in {loc ation}", "bad slot"),               # not a parameter name
    ("Is it (raining|cold in {location}", "unclosed '('"),  # unclosed alternation
    ("Weather in {location})", "unexpected ')'"),         # stray closer
    ("rain | snow in {location}", "'|' only separates"),  # bar outside alternation
    ("[in Fahrenheit] for {location}", "must be followed by (param=value)"),
    ("[in F](units) {location}", "bad annotation"),       # no '='
    ("[in {location}](units=metric)", "inside [...]"),    # slot inside annotation text
    ("[a [b](units=metric)](days=2) {location}", "nested '['"),
]
BAD_SCHEMA = [
    ("Weather in {city}?", "unknown parameter 'city'"),
    ("Weather (in {location}|here)?", "required parameter(s) ['location'] missing"),
    ("Weather now?", "required parameter(s) ['location'] missing"),
    ("Weather in {location} with {include_air_quality}", "boolean parameter"),
    ("Weather in {location} [in kelvin](units=kelvin)", "bad_enum"),
    ("Weather in {location} [for ages](days=40)", "out_of_range"),
    ("Weather in {location} [in F](units=imperial) [in C](units=metric)", "fixed twice"),
    ("Weather in {location} in {units} [in F](units=imperial)", "both a slot and fixed"),
]


@pytest.mark.parametrize(("text", "keys"), GOOD)
def test_good_templates_render_their_slots(text, keys):
    templates = _templates(text)
    assert check_template(templates.templates[0], WEATHER) == []
    rng = random.Random(0)
    for _ in range(20):
        query, args, stated = render_detail(templates, WEATHER, rng)
        assert keys <= set(args)
        assert not check_call(ToolCall(WEATHER.name, args), [WEATHER])
        stated_pairs = frozenset((0, k) for k in stated)
        assert check_grounding([ToolCall(WEATHER.name, args)], [WEATHER], query,
                               stated=stated_pairs) is None, query
        assert "  " not in query and query[0].isupper()


@pytest.mark.parametrize(("text", "words"), BAD_SYNTAX)
def test_bad_syntax_is_rejected_with_a_reason(text, words):
    with pytest.raises(TemplateError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace("|", r"\|")):
        parse_template(text)


@pytest.mark.parametrize(("text", "words"), BAD_SCHEMA)
def test_templates_that_break_the_schema_are_named(text, words):
    problems = check_template(parse_template(text), WEATHER)
    assert any(words in p for p in problems), problems


def test_annotation_values_follow_the_parameter_type():
    templates = _templates("In {location} [in F](units=imperial)[](include_air_quality=true)"
                           "[ for 5 days](days=5)")
    _, args = render(templates, WEATHER, random.Random(0))
    assert args["units"] == "imperial" and args["include_air_quality"] is True
    assert args["days"] == 5


def test_values_list_is_used_and_array_items_are_drawn():
    templates = _templates("Weather in {location} tagged {tags}",
                           values={"location": ["Cusco, Peru"], "tags": ["hike", "beach"]})
    for seed in range(10):
        query, args = render(templates, WEATHER, random.Random(seed))
        assert args["location"] == "Cusco, Peru" and "Cusco, Peru" in query
        assert 1 <= len(args["tags"]) <= 2 and set(args["tags"]) <= {"hike", "beach"}


def test_render_given_says_exactly_the_arguments_or_none():
    templates = _templates("Weather in {location}?", "Weather in {location} [in F](units=imperial)")
    rng = random.Random(0)
    text, fixed = render_given(templates, WEATHER, {"location": "Oslo", "units": "imperial"}, rng)
    assert text == "Weather in Oslo in F" and fixed == {"units"}
    assert render_given(templates, WEATHER, {"location": "Oslo", "units": "metric"}, rng) is None
    assert render_given(templates, WEATHER, {"location": "Oslo", "days": 3}, rng) is None


def _write(folder: Path, text: str) -> Path:
    path = folder / "requests.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# files: (requests.yaml text, words of the error)
BAD_FILES = [
    ("get_current_weather: [a, b]", "expected keys 'requests'"),
    ("get_current_weather:\n  requests: []", "expected keys 'requests'"),
    ("get_current_weather:\n  requests: ['x {location}']\n  extra: 1", "expected keys"),
    ("get_weather:\n  requests: ['In {location}']", "tool 'get_weather': unknown tool"),
    ("get_current_weather:\n  requests: ['In {city}']",
     "tool 'get_current_weather': template 1 ('In {city}'): unknown parameter 'city'"),
    ("get_current_weather:\n  requests: ['In {location']", "template 1 ('In {location'): bad"),
    ("get_current_weather:\n  requests: ['In {location}']\n  values:\n    location: ['X']",
     "values: out_of_range: location shorter than 2"),
    ("get_current_weather:\n  requests: ['In {location}']\n  values:\n    days: [0]",
     "values: out_of_range: days=0 < minimum"),
    ("get_current_weather:\n  requests: ['In {location}']\n  values:\n    city: [Oslo]",
     "values: unknown parameter 'city'"),
    ("get_current_weather:\n  requests: ['In {location}'\n", "invalid YAML"),
]


@pytest.mark.parametrize(("text", "words"), BAD_FILES)
def test_bad_files_name_file_tool_and_template(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(TemplateError) as caught:
        load_templates(path, [WEATHER])
    assert str(path) in str(caught.value) and words in str(caught.value), str(caught.value)


def test_every_problem_of_a_file_is_reported(tmp_path):
    path = _write(tmp_path, "get_current_weather:\n  requests: ['In {city}', 'Now?']\n"
                            "nope:\n  requests: ['x']\n")
    with pytest.raises(TemplateError) as caught:
        load_templates(path, [WEATHER])
    assert len(str(caught.value).splitlines()) == 4  # {city}: unknown + location missing


def test_schema_ingestion_ignores_requests_yaml(tmp_path):
    folder = tmp_path / "weather"
    folder.mkdir()
    shutil.copy(BUNDLED / "weather" / "openai_weather_tools.json", folder)
    _write(folder, "get_current_weather:\n  requests: ['Weather in {location}?']\n")
    ingested = ingest_paths([tmp_path])
    assert not ingested.errors and {t.category for t in ingested.tools} == {"weather"}
    found = catalogue_templates(Catalogue(tools=tuple(ingested.tools)))
    assert set(found) == {"get_current_weather"}


def test_bundled_templates_load_and_render_valid_grounded_calls():
    catalogue = load_catalogue([BUNDLED])
    found = catalogue_templates(catalogue)
    assert found, "no bundled requests.yaml"
    rng = random.Random(0)
    for name, templates in found.items():
        tool = catalogue.tool(name)
        for _ in range(10):
            query, args, stated = render_detail(templates, tool, rng)
            call = ToolCall(name, args)
            assert not check_call(call, [tool]), (query, args)
            assert check_grounding([call], [tool], query,
                                   stated=frozenset((0, k) for k in stated)) is None, query


def test_held_out_tools_templates_feed_only_test_splits():
    """Each tool gets one template with a marker word; a held-out tool's marker never shows
    up in a training split, and does show up in test_unseen."""
    catalogue = Catalogue.from_json(
        (Path(__file__).parent / "data" / "datagen" / "catalogue.json").read_text())
    templates = {}
    for tool in catalogue.tools:
        slots = " and ".join(f"{{{n}}}" for n in tool.required_names)
        text = f"Please use marker{tool.name.replace('_', '')} for {slots}."
        templates[tool.name] = ToolTemplates(tool.name, (parse_template(text),), (text,), {})
    dataset, card = generate_dataset(catalogue, GenerationConfig(examples=300, seed=3),
                                     templates=templates)
    held = {t["name"].replace("_", "") for t in card["held_out_tools"]}

    def markers(splits):
        users = [m["content"] for s in splits for r in dataset[s] for m in r["prompt"]
                 if m["role"] == "user"]
        return {w.removeprefix("marker").strip(".,?!") for u in users for w in u.split()
                if w.startswith("marker")}

    assert held and not held & markers(TRAIN_SPLITS)
    assert held & markers(["test_unseen"])
    assert markers(TRAIN_SPLITS)  # templates are used for the seen tools


_TEXT = st.lists(st.sampled_from(list("ab {}()[]|=\\,?") + ["{location}", "{days}",
                                                              "(units=imperial)"]),
                 max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.integers(0, 1000))
def test_parsing_and_rendering_never_crash(text, seed):
    try:
        nodes = parse_template(text)
    except TemplateError:
        return
    if check_template(nodes, WEATHER):
        return
    query, args = render(ToolTemplates(WEATHER.name, (nodes,), (text,), {}), WEATHER,
                         random.Random(seed))
    assert "location" in args and isinstance(query, str)
    json.dumps(args)


def test_parallel_second_call_draws_from_the_tools_values():
    """The second call of a parallel draft changes values from the tool's `values:` list, as
    the first call's come from it ("Kenji Sato", not a topic as a contact's name)."""
    from toolmodal.datagen.examples import DraftError, Pool, parallel
    from toolmodal.datagen.repeats import RepeatRules

    catalogue = load_catalogue([BUNDLED])
    tool = catalogue.tool("search_contacts")
    templates = catalogue_templates(catalogue)
    names = set(templates["search_contacts"].values["query"])
    rules = RepeatRules({"search_contacts": ("query",)}, frozenset())
    pool = Pool([tool], [tool], [], templates={"search_contacts": templates["search_contacts"]})
    seconds = []
    for seed in range(30):
        try:
            draft = parallel(pool, random.Random(seed), 1, 0.3, rules)
        except DraftError:
            continue
        seconds.append(draft.calls[1].arguments["query"])
    assert len(seconds) >= 20 and set(seconds) <= names
