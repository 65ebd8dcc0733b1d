"""Follow-up clauses of chains (`follow_ups` in `requests.yaml`): loading with errors that name
file, tool, parameter and clause; which links a tool takes; chain requests said as a person
would ("Then translate it into German."), never as schema text, for the bundled tools."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from toolmodal.datagen import GenerationConfig, generate_dataset, queries
from toolmodal.datagen.examples import Link, chained_links
from toolmodal.datagen.template_render import render_detail
from toolmodal.datagen.templates import TemplateError, load_templates
from toolmodal.ingest import load_catalogue
from toolmodal.paths import project_path
from toolmodal.schema import Param, Tool

NOW = Tool(name="get_current_weather", description="Get the weather now.", parameters=(
    Param(name="location", type="string", required=True),), returns=Param(
    type="object", properties=(Param(name="location", type="string"),)))
FORECAST = Tool(name="get_weather_forecast", description="Get a forecast.", parameters=(
    Param(name="location", type="string", required=True),
    Param(name="days", type="integer", minimum=1, maximum=14),
    Param(name="units", type="string", enum=("metric", "imperial"))))
HEAD = "get_weather_forecast:\n  requests: ['Forecast for {location}']\n"


def _load(tmp_path: Path, follow_ups: str):
    path = tmp_path / "requests.yaml"
    path.write_text(HEAD + follow_ups, encoding="utf-8")
    return path, load_templates(path, [FORECAST])


def test_follow_ups_load_and_render_without_the_chained_parameter(tmp_path):
    _, found = _load(tmp_path, "  follow_ups:\n    location: ['get the forecast there for "
                               "{days} days [in Fahrenheit](units=imperial)']\n")
    clauses = found[FORECAST.name].follow_up("location")
    text, args, fixed = render_detail(clauses, FORECAST, random.Random(0))
    assert set(args) == {"days", "units"} and fixed == {"units"}
    assert text.startswith("Get the forecast there for ") and text.endswith(" in Fahrenheit")
    assert found[FORECAST.name].follow_up("days") is None


BAD = [
    ("  follow_ups:\n    location: ['the forecast for {location}']\n",
     "follow_ups: location 1 ('the forecast for {location}'): parameter 'location' comes from "
     "the previous result"),
    ("  follow_ups:\n    city: ['the forecast there']\n",
     "follow_ups: unknown parameter 'city'"),
    ("  follow_ups:\n    days: ['the forecast for {days} days']\n",
     "required parameter(s) ['location'] missing"),
    ("  follow_ups:\n    location: []\n", "follow_ups: location: expected a non-empty list"),
    ("  follow_ups: [a]\n", "follow_ups: expected a mapping"),
]


@pytest.mark.parametrize(("text", "words"), BAD)
def test_bad_follow_ups_name_file_tool_parameter_and_clause(tmp_path, text, words):
    with pytest.raises(TemplateError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert str(tmp_path / "requests.yaml") in message and "'get_weather_forecast'" in message
    assert words in message, message


def test_a_tool_with_follow_ups_takes_chained_values_only_where_listed(tmp_path):
    links = [Link(NOW, "location", FORECAST, "location")]
    _, listed = _load(tmp_path, "  follow_ups:\n    location: ['the forecast there']\n")
    _, none = _load(tmp_path, "  follow_ups: {}\n")
    _, silent = _load(tmp_path, "")
    assert chained_links(links, listed) == links
    assert chained_links(links, none) == []
    assert chained_links(links, silent) == links      # no follow-ups: every link, schema text
    assert chained_links(links, {}) == links          # no templates at all


def test_chain_request_says_the_clause_after_a_stopped_first_sentence():
    steps = [(NOW, {"location": "Oslo"}, "", ""),
             (FORECAST, {"days": 3}, "location", "Get the forecast there for three days"),
             (FORECAST, {}, "location", "Check it in Fahrenheit")]
    text = queries.chain_query(steps, random.Random(0), first="Mv a.txt b.txt")
    assert text == ("Mv a.txt b.txt. Then get the forecast there for three days. "
                    "Finally check it in Fahrenheit.")


def test_bundled_chains_read_as_requests_not_schema_text():
    """Every bundled tool that a chain's later step calls has follow-up clauses, so no chain
    request carries the schema phrasing ("... using the path from that result ...")."""
    catalogue = load_catalogue([project_path("data/tool_schemas")])
    dataset, _ = generate_dataset(catalogue, GenerationConfig(
        examples=600, seed=1, min_tools=2, max_tools=3, max_tokens=1024))
    schema_words = [part.strip() for link in queries.phrasing()["chain_links"]
                    for part in link.split("{field}") if len(part.strip()) > 9]
    assert schema_words  # "from that result", "it returns", "with the returned"
    chains = [r for split in dataset for r in dataset[split] if r["kind"] == "chain"]
    assert len(chains) >= 30
    for row in chains:
        request = next(m["content"] for m in row["prompt"] if m["role"] == "user")
        assert not any(words in request for words in schema_words), request
        later = request.split(" Then ", 1)[1]
        assert later[:1].islower() or later.startswith("I"), request
