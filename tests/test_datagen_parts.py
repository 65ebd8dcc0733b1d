"""The data generator's parts: values and surface forms, the three verification stages, the mock
executor, masking, the regex sampler and the optional teacher."""

from __future__ import annotations

import logging
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolmodal.calls import ToolCall, check_call, check_value, format_output
from toolmodal.datagen.executor import ExecutionError, execute
from toolmodal.datagen.masking import mask_example
from toolmodal.datagen.patterns import satisfy_pattern
from toolmodal.datagen.teacher import Teacher
from toolmodal.datagen.values import (
    date_format,
    kind_of,
    number_words,
    sample_value,
    surface_forms,
)
from toolmodal.datagen.verify import check_execution, check_format, check_grounding, verify
from toolmodal.schema import Param, Tool

DATE = Param(name="date", type="string", description="Day, YYYY-MM-DD.")
US_DATE = Param(name="day", type="string", description="Day as MM/DD/YYYY.")
MINUTES = Param(name="duration_minutes", type="integer", description="Length in minutes.")
COUNT = Param(name="count", type="integer", minimum=1, maximum=9)
UNITS = Param(name="units", type="string", enum=("metric", "imperial"), default="metric",
              has_default=True)
CITY = Param(name="city", type="string", required=True, description="City name.")
TOOL = Tool(name="get_weather", description="Get the weather for a city.", category="weather",
            parameters=(CITY, UNITS, Param(name="days", type="integer", minimum=1, maximum=7),
                        Param(name="hourly", type="boolean", description="Hourly values.")),
            returns=Param(type="object", properties=(Param(name="temp", type="number"),
                                                     Param(name="city_id", type="string"))))


# surface forms: (value, param, a form the query may use)
FORMS = [
    ("2026-03-05", DATE, "March 5, 2026"),          # long US style
    ("2026-03-05", DATE, "5 March 2026"),           # day first
    ("2026-03-05", DATE, "the 5th of March 2026"),  # spoken
    ("03/05/2026", US_DATE, "March 5, 2026"),       # canonical US format, same day
    (7, COUNT, "seven"),                            # number in words
    (120, MINUTES, "2 hours"),                      # unit conversion
    (45, MINUTES, "45 minutes"),                    # unit spelled out
    (True, Param(name="include_air_quality", type="boolean"), "include air quality enabled"),
]


@pytest.mark.parametrize(("value", "param", "form"), FORMS)
def test_surface_forms_include(value, param, form):
    assert form in surface_forms(value, param)


def test_identifiers_are_written_in_digits():
    assert "eleven" not in surface_forms(11, Param(name="userId", type="integer"))
    assert "eleven" not in surface_forms(11, Param(name="order_number", type="integer"))
    assert "eleven" in surface_forms(11, Param(name="guests", type="integer"))


# real-world parameter names -> the kind of value drawn (and a value of that kind)
KINDS = [("firmware_hash", "secret", r"[0-9a-f]{16}"), ("jwt", "secret", r"[0-9a-f]{16}"),
         ("callback", "url", r"https://\S+"), ("redirect_uri", "url", r"https://\S+"),
         ("indexName", "resource", r"[a-z]+-[a-z]+"), ("repo", "resource", r"[a-z]+-[a-z]+"),
         ("username", "handle", r"[a-z]+\.[a-z]+"), ("owner", "handle", r"[a-z]+\.[a-z]+"),
         ("fields", "field", r"[a-z_]+"), ("order", "sort_order", r"asc|desc"),
         ("page_size", "count", r"\d+"), ("cursor", "id", r"[a-z]{1,3}_[a-z0-9]{10}"),
         ("brand_name", "company", r".+"), ("since", "datetime", r"\d{4}-\d\d-\d\dT\d\d:\d\d")]


@pytest.mark.parametrize(("name", "kind", "value"), KINDS)
def test_string_kinds_of_real_world_names(name, kind, value):
    param = Param(name=name, type="string")
    assert kind_of(param) == kind
    assert re.fullmatch(value, sample_value(param, random.Random(0)))


def test_date_values_are_canonical_for_the_schema_format():
    rng = random.Random(0)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sample_value(DATE, rng))
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", sample_value(US_DATE, rng))
    assert date_format(Param(name="start_time", type="string")) is None


def test_number_words():
    assert [number_words(n) for n in (0, 13, 40, 42, 105, 2001)] == [
        "zero", "thirteen", "forty", "forty-two", "one hundred five", "two thousand one"]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_sampled_values_respect_schema(seed):
    rng = random.Random(seed)
    for param in (DATE, COUNT, UNITS, CITY, MINUTES, TOOL.parameters[3]):
        value = sample_value(param, rng)
        assert check_value(value, param, param.name) == [], (param.name, value)


@pytest.mark.parametrize("pattern", [r"^ORD-[0-9]{8}$", r"^[A-Z]{3}$", r"^\+[1-9]\d{6,14}$",
                                     r"^([01]\d|2[0-3]):[0-5]\d$", r"^[#@][a-z0-9._-]{1,80}$",
                                     r"^[^@\s]+@[^@\s]+\.[^@\s]+$", r"^[a-z]$"])
def test_pattern_sampler_matches(pattern):
    rng = random.Random(1)
    for _ in range(20):
        assert re.fullmatch(pattern, satisfy_pattern(pattern, "topic", rng, "test"))


# verification stages: (completion, query, expected reason or None)
CALL = ToolCall("get_weather", {"city": "Oslo", "days": 3})
VERIFY = [
    (format_output([CALL]), "Weather in Oslo for 3 days", None),              # good
    (format_output([CALL], style="python"), "Oslo, three days please", None),  # python + words
    ('<tool_call>{"name": "get_weather", "arguments": ', "Oslo 3", "format:unterminated_call"),
    (format_output([ToolCall("get_weather", {"city": "Oslo"})]), "Oslo 3", "format:calls_differ"),
    (format_output([CALL]), "Weather in Oslo", "semantic:ungrounded_value"),   # 3 not in query
    (format_output([CALL]), "Weather in Oslo for 13 days", "semantic:ungrounded_value"),
]


@pytest.mark.parametrize(("completion", "query", "reason"), VERIFY)
def test_verify_stages(completion, query, reason):
    assert verify(completion, [CALL], [TOOL], query) == reason


def test_format_stage_checks_schema():
    bad = ToolCall("get_weather", {"city": "Oslo", "units": "kelvin"})
    assert check_format(format_output([bad]), [bad], [TOOL]) == "format:bad_enum"


def test_execution_stage_and_executor_determinism():
    result = execute(CALL, [TOOL])
    assert result == execute(CALL, [TOOL])
    assert set(result) == {"temp", "city_id"} and isinstance(result["temp"], float)
    assert check_execution([ToolCall("nope", {})], [TOOL]) == "execution:rejected_call"
    with pytest.raises(ExecutionError, match="missing_required"):
        execute(ToolCall("get_weather", {}), [TOOL])


def test_executor_echoes_the_arguments_its_result_names():
    """A result field named like an argument repeats it (valid values only); an echo that
    would put a pair out of order is not made."""
    fields = (Param(name="base", type="string"), Param(name="rate", type="number"),
              Param(name="days", type="integer", minimum=1, maximum=7))
    rate = Tool(name="get_rate", description="Get a rate.", parameters=(
        Param(name="base", type="string", required=True),
        Param(name="days", type="integer")), returns=Param(type="object", properties=fields))
    result = execute(ToolCall("get_rate", {"base": "NOK", "days": 3}), [rate])
    assert result["base"] == "NOK" and result["days"] == 3 and isinstance(result["rate"], float)
    stay = (Param(name="check_in", type="string", description="YYYY-MM-DD."),
            Param(name="check_out", type="string", description="YYYY-MM-DD."))
    book = Tool(name="book", description="Book a room.", parameters=(stay[1],),
                returns=Param(type="object", properties=stay))
    for day in ("2020-01-01", "2030-01-01"):
        out = execute(ToolCall("book", {"check_out": day}), [book])
        assert out["check_in"] < out["check_out"]
        assert (out["check_out"] == day) == (out["check_in"] < day)


def test_grounding_accepts_defaults_and_earlier_results():
    call = ToolCall("get_weather", {"city": "XQ-1234", "units": "metric"})
    assert check_grounding([call], [TOOL], "weather please") == "semantic:ungrounded_value"
    assert check_grounding([call], [TOOL], "weather please", '{"city_id": "XQ-1234"}') is None


def test_masking_renames_consistently():
    call = ToolCall("get_weather", {"city": "Oslo", "days": 2})
    tools, calls = mask_example([TOOL], [call], random.Random(0))
    assert tools[0].name != TOOL.name and calls[0].name == tools[0].name
    assert set(calls[0].arguments) <= {p.name for p in tools[0].parameters}
    assert "city" not in calls[0].arguments
    assert check_call(calls[0], tools) == []
    assert [p.description for p in tools[0].parameters] == [p.description for p in TOOL.parameters]
    assert re.fullmatch(r"[a-z][a-z0-9]{4,9}", tools[0].name)


def test_teacher_skipped_without_environment(monkeypatch, caplog):
    monkeypatch.delenv("TOOLMODAL_TEACHER_URL", raising=False)
    with caplog.at_level(logging.INFO):
        assert Teacher.from_env() is None
    assert "skipped" in caplog.text


def test_split_sizes_refuse_an_empty_split():
    from toolmodal.datagen import GenerationConfig
    from toolmodal.datagen.splits import split_sizes

    sizes = split_sizes(GenerationConfig(examples=400))
    assert min(sizes.values()) >= 1 and sum(sizes.values()) == 400
    with pytest.raises(ValueError, match=r"examples=40 leaves split\(s\) .*_validation.* empty"):
        split_sizes(GenerationConfig(examples=40))


def test_pool_draws_every_target_equally_often():
    from collections import Counter

    from toolmodal.datagen.examples import Pool

    tools = [Tool(name=f"t{i}", description=f"tool {i}") for i in range(7)]
    pool, rng = Pool(tools, tools, []), random.Random(0)
    counts = Counter(pool.draw(rng).name for _ in range(3 * len(tools)))
    assert set(counts.values()) == {3}
    first = pool.draw(rng)
    assert all(pool.draw(rng, exclude=first) is not first for _ in range(20))


def test_data_files_digest_follows_the_files_the_generator_reads(tmp_path):
    """Editing a request or system-prompt file changes the digest (so the data step's cache
    key); the same files give the same digest."""
    import shutil

    from toolmodal.datagen import GenerationConfig, data_files_digest
    from toolmodal.paths import project_path

    requests, prompts = tmp_path / "requests", tmp_path / "prompts"
    shutil.copytree(project_path("data/requests"), requests)
    shutil.copytree(project_path("configs/system_prompts"), prompts)
    config = GenerationConfig(requests_dir=requests, system_prompts_dir=prompts)
    before = data_files_digest(config)
    assert data_files_digest(config) == before
    assert data_files_digest(GenerationConfig()) == before  # same contents, other folders
    phrasing = requests / "phrasing.yaml"
    phrasing.write_text(phrasing.read_text() + "\n# edited\n")
    edited = data_files_digest(config)
    assert edited != before
    (prompts / "default.yaml").write_text((prompts / "default.yaml").read_text() + "\n")
    assert data_files_digest(config) not in (before, edited)


def test_data_files_digest_follows_the_tools_request_templates(tmp_path):
    """A tool folder's `requests.yaml` (read during generation, not part of the catalogue)
    is in the digest: under a schema folder, or beside a schema file given alone."""
    import shutil

    from toolmodal.datagen import GenerationConfig, data_files_digest
    from toolmodal.paths import project_path

    schemas = tmp_path / "schemas"
    shutil.copytree(project_path("data/tool_schemas/math"), schemas / "math")
    config = GenerationConfig()
    before = data_files_digest(config, str(schemas))
    assert before != data_files_digest(config)
    templates = schemas / "math" / "requests.yaml"
    templates.write_text(templates.read_text() + "\n# edited\n")
    assert data_files_digest(config, str(schemas)) != before
    schema_file = next(p for p in (schemas / "math").iterdir() if p.name != "requests.yaml")
    assert data_files_digest(config, [str(schema_file)]) == data_files_digest(config,
                                                                               str(schemas))


def test_chain_rejects_a_result_value_that_breaks_a_pair():
    """A date from a result fills `end_date`; a stated `start_date` after it is never kept."""
    from toolmodal.datagen.examples import DraftError, Pool, chain, find_links
    from toolmodal.datagen.values import pairs_in_order

    rate = Tool(name="get_rate", description="Get an exchange rate.", category="finance",
                parameters=(Param(name="pair", type="string", required=True),),
                returns=Param(type="object", properties=(Param(
                    name="end_date", type="string", description="Day, YYYY-MM-DD."),)))
    span = (Param(name="start_date", type="string", required=True, description="YYYY-MM-DD."),
            Param(name="end_date", type="string", required=True, description="YYYY-MM-DD."))
    history = Tool(name="get_history", description="Get prices.", category="finance",
                   parameters=(Param(name="symbol", type="string", required=True), *span))
    tools = [rate, history]
    pool = Pool(tools, tools, find_links(tools))
    kept, rejected = 0, 0
    for seed in range(60):
        try:
            drafts = chain(pool, random.Random(seed), 2, 0.5)
        except DraftError as error:
            assert str(error) == "label:chain_pair_order"
            rejected += 1
            continue
        kept += 1
        assert pairs_in_order(span, drafts[-1].calls[0].arguments)
    assert kept and rejected
