"""Requests for tools without templates (`toolmodal.datagen.queries`): grammatical actions cut
from descriptions, argument phrases from parameter names, no repeated words or description
fragments, every value grounded; and how template and schema requests are combined."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolmodal.calls import ToolCall
from toolmodal.datagen import queries, user_requests
from toolmodal.datagen.templates import ToolTemplates, parse_template
from toolmodal.datagen.values import sample_value
from toolmodal.datagen.verify import check_grounding
from toolmodal.ingest import load_catalogue
from toolmodal.paths import project_path
from toolmodal.schema import Param, Tool

FORECAST = Tool(
    name="get_weather_forecast",
    description="Get a daily weather forecast for the coming days at a location: minimum and "
                "maximum temperature. Use get_current_weather for now.",
    parameters=(Param(name="location", type="string", required=True,
                      description="City name with optional region and country."),
                Param(name="days", type="integer", minimum=1, maximum=14,
                      description="Number of days to forecast, starting today."),
                Param(name="include_hourly", type="boolean",
                      description="Also return an hour-by-hour breakdown.")))

# (description, tool name, expected action)
ACTIONS = [
    (FORECAST.description, FORECAST.name, "get a daily weather forecast"),
    ("Start a countdown timer on the user's device that rings when it reaches zero.",
     "set_timer", "start a countdown timer"),                       # cut before "on"
    ("Returns the current time in a time zone.", "now", "return the current time"),  # 3rd person
    ("Delete (or cancel) a calendar event. Recurring events...", "x", "delete a calendar event"),
    ("Convert a given date and time from one time zone to another.", "x",
     "convert a date and time"),                                     # "given" dropped
    ("Get sunrise, sunset, and twilight times for a place.", "x",
     "get sunrise, sunset, and twilight times"),                     # no 2-word cut at a comma
    ("Get the latest trade price, day change and volume for a stock.", "x",
     "get the latest trade price"),                                  # cut at a comma
    ("A user's profile record.", "get_user_profile", "get user profile"),  # not an action
    ("", "fetch_webpage", "fetch webpage"),                          # no description
]


@pytest.mark.parametrize(("description", "name", "action"), ACTIONS)
def test_action_phrase(description, name, action):
    assert queries.action_phrase(Tool(name=name, description=description)) == action


def test_arguments_read_like_a_person_wrote_them():
    rng = random.Random(0)
    forms = {queries.request(FORECAST, {"location": "Cusco", "days": 3}, rng) for _ in range(40)}
    assert "get a daily weather forecast for Cusco for the next 3 days" in forms
    assert all(f.startswith("get a daily weather forecast ") for f in forms)
    assert not any("location Cusco" in f or "coming days" in f for f in forms)
    hourly = queries.request(FORECAST, {"location": "Oslo", "include_hourly": True}, rng)
    assert re.search(r"(including|and include) hourly$", hourly), hourly


# (parameter, value, the phrases it may take)
PHRASES = [
    (Param(name="location", type="string"), "Lima", {"in Lima", "for Lima"}),
    (Param(name="q", type="string"), "solar panels",
     {"for solar panels", "about solar panels", 'for "solar panels"'}),
    (Param(name="max_results", type="integer"), 20,
     {"with at most 20 results", "limited to 20 results"}),
    (Param(name="from_currency", type="string"), "EUR", {"from EUR"}),
    (Param(name="recursive", type="boolean"), False,
     {"with recursive turned off", "with recursive disabled"}),
    (Param(name="duration_seconds", type="integer"), 90, {"for 90 seconds"}),
]


@pytest.mark.parametrize(("param", "value", "allowed"), PHRASES)
def test_argument_phrases(param, value, allowed):
    rng = random.Random(0)
    assert {queries.arg_phrase(param, value, rng) for _ in range(30)} <= allowed


def _sentences(tool: Tool, rng: random.Random, n: int) -> list[tuple[str, dict]]:
    out = []
    for _ in range(n):
        args = user_requests.draw_arguments(None, tool, rng, 0.5)
        out.append((queries.single_query(tool, args, rng), args))
    return out


def test_bundled_catalogue_requests_are_clean_and_grounded():
    catalogue = load_catalogue([project_path("data/tool_schemas")])
    rng = random.Random(0)
    for tool in catalogue.tools:
        fragments = [_fragment(p.description) for p in tool.parameters]
        for text, args in _sentences(tool, rng, 15):
            words = [w.strip(",.?!\"") for w in text.split()]  # "for IN in Lombardy" is fine
            repeats = [a for a, b in zip(words, words[1:], strict=False) if a == b]
            assert not [w for w in repeats if w.isalpha()], text
            assert text[0].isupper() and text.rstrip('"')[-1] in ".?!", text
            assert "  " not in text and ".." not in text and "?." not in text, text
            assert not any(f and f in text for f in fragments), text
            stated = frozenset((0, k) for k in queries.stated_by_phrasing(args))
            assert check_grounding([ToolCall(tool.name, args)], [tool], text,
                                   stated=stated) is None, text


def _fragment(description: str) -> str:
    """The description's first clause when it is long enough to be a telltale fragment."""
    clause = re.split(r"[.,:;(]", description, maxsplit=1)[0].strip()
    return clause if len(clause.split()) >= 4 else ""


def test_questions_end_with_a_question_mark_only():
    rng = random.Random(1)
    for _ in range(50):
        text = queries.finish("get the weather for Oslo", rng)
        asks = text.startswith(("Can you", "Could you", "Would you", "Hey, can you"))
        assert text.endswith("?") == asks, text


def test_chain_request_ends_each_sentence_once():
    """A value that ends in a stop ("... start without me.") gets no second one."""
    note = Tool(name="update_note", description="Update a note.",
                parameters=(Param(name="note_id", type="string", required=True),
                            Param(name="changes", type="object", required=True, properties=(
                                Param(name="description", type="string"),))))
    steps = [(FORECAST, {"location": "Oslo"}, "", ""),
             (note, {"changes": {"description": "Running late, start without me."}}, "location",
              "")]
    for seed in range(10):
        for first in ("", "What's the forecast for Oslo?"):
            text = queries.chain_query(steps, random.Random(seed), first=first)
            assert ".." not in text and text.endswith("."), text


def test_template_and_schema_requests_join_with_stated_pairs():
    templates = ToolTemplates(FORECAST.name, (parse_template(
        "Will it rain in {location}?[](include_hourly=true)"),), ("",), {})
    rng = random.Random(0)
    args = {"location": "Lima", "include_hourly": True}
    first = user_requests.sentence(templates, FORECAST, args, rng, 0)
    assert first == ("Will it rain in Lima?", frozenset({(0, "include_hourly")}))
    second = user_requests.sentence(None, FORECAST, {"location": "Oslo", "days": 2}, rng, 1)
    text, stated = user_requests.joined([first, second], rng)
    assert text.startswith("Will it rain in Lima? ") and "Oslo" in text
    assert stated == {(0, "include_hourly")}
    calls = [ToolCall(FORECAST.name, args), ToolCall(FORECAST.name, {"location": "Oslo",
                                                                     "days": 2})]
    assert check_grounding(calls, [FORECAST], text, stated=stated) is None


def test_annotated_values_are_exempt_but_slot_values_still_checked():
    calls = [ToolCall(FORECAST.name, {"location": "Lima", "include_hourly": True})]
    query = "Will it rain in Lima hour by hour?"
    assert check_grounding(calls, [FORECAST], query) == "semantic:ungrounded_value"
    assert check_grounding(calls, [FORECAST], query, stated={(0, "include_hourly")}) is None
    assert check_grounding(calls, [FORECAST], "Will it rain in Oslo hour by hour?",
                           stated={(0, "include_hourly")}) == "semantic:ungrounded_value"


_NAMES = st.from_regex(r"[a-z][a-z_]{0,12}[a-z]", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(_NAMES, st.text(max_size=80), st.lists(_NAMES, max_size=4, unique=True),
       st.sampled_from(["string", "integer", "number", "boolean"]), st.integers(0, 99))
def test_schema_requests_never_crash(name, description, params, kind, seed):
    tool = Tool(name=name, description=description,
                parameters=tuple(Param(name=p, type=kind, required=True) for p in params))
    rng = random.Random(seed)
    args = {p.name: sample_value(p, rng) for p in tool.parameters}
    text = queries.single_query(tool, args, rng)
    assert text and text[0] == text[0].upper()
