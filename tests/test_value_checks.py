"""Value plausibility: generated values are well formed and ordered, the gate's value checks
pass on fresh data, and each injected corruption is caught and named (row, tool, argument)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest

from toolmodal.calls import ToolCall, check_call, format_output
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.executor import execute
from toolmodal.datagen.generate import rows_to_dataset
from toolmodal.datagen.masking import mask_example
from toolmodal.datagen.patterns import REFERENCE_DATE, satisfy_pattern
from toolmodal.datagen.values import sample_arguments
from toolmodal.ingest import load_catalogue
from toolmodal.validation import ValidationConfig, validate_dataset
from toolmodal.validation.suite import VALUE_EXPECTATIONS
from toolmodal.validation.values import value_problems

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "tool_schemas"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue([SCHEMAS])


@pytest.fixture(scope="module")
def generated(catalogue):
    dataset, card = generate_dataset(catalogue, GenerationConfig(examples=200, seed=0))
    return {s: dataset[s].to_list() for s in dataset}, card


def _validate(splits: dict[str, list[dict]], card: dict):
    from datasets import DatasetDict

    dataset = DatasetDict({s: rows_to_dataset(rows) for s, rows in splits.items()})
    return validate_dataset(dataset, card, ValidationConfig())


def test_sampled_arguments_validate_and_pass_value_checks(catalogue):
    tools = list(catalogue.tools)
    for seed in range(15):
        rng = random.Random(seed)
        for tool in tools:
            call = ToolCall(tool.name, sample_arguments(tool, rng, 1.0))
            assert check_call(call, tools) == [], call
            problems = value_problems("r", [call], tools)
            assert not any(problems.values()), problems


def test_masked_calls_raise_no_false_alarm(catalogue):
    # masking renames parameters; the gate must not check a kind the value was not drawn for
    tools = list(catalogue.tools)
    for seed in range(10):
        rng = random.Random(seed)
        for tool in tools:
            call = ToolCall(tool.name, sample_arguments(tool, rng, 1.0))
            masked_tools, masked_calls = mask_example([tool], [call], rng)
            problems = value_problems("r", masked_calls, masked_tools)
            assert not any(problems.values()), problems


def test_tool_results_have_values_of_their_kind(catalogue):
    tools = list(catalogue.tools)
    send = catalogue.tool("send_email")
    args = sample_arguments(send, random.Random(0), 0.0)
    sent_at = execute(ToolCall("send_email", args), tools)["sent_at"]
    assert dt.datetime.strptime(sent_at, "%Y-%m-%dT%H:%M")  # not "remote work"
    forecast = execute(ToolCall("get_weather_forecast", {"location": "Oslo"}), tools)
    assert all(day["temp_min"] < day["temp_max"] for day in forecast)


@pytest.mark.parametrize(("pattern", "shape"), [
    (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$", "%Y-%m-%dT%H:%M"),  # not 8762-44-95T97:77
    (r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d"),
    (r"^\d{2}:\d{2}$", "%H:%M"),
])
def test_format_patterns_are_satisfied_by_real_values(pattern, shape):
    rng = random.Random(3)
    for _ in range(50):
        value = satisfy_pattern(pattern, "topic", rng, "test")
        moment = dt.datetime.strptime(value, shape)
        if "%Y" in shape:
            assert abs(moment.year - REFERENCE_DATE.year) <= 2


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"^[A-Z]{3}$", "currency"), (r"^[A-Z]{2}$", "country code"), (r"^[a-z]{2}$", "language"),
    (r"^\+[1-9]\d{6,14}$", "E.164"),
])
def test_code_patterns_get_codes_from_the_lists(pattern, expected):
    from toolmodal.datagen.patterns import value_lists

    lists = value_lists()
    known = {"currency": lists["currencies"], "language": lists["languages"],
             "country code": [c["code"] for c in lists["cities"]]}
    rng = random.Random(5)
    for _ in range(20):
        value = satisfy_pattern(pattern, "topic", rng, "test")
        if expected == "E.164":
            assert re.fullmatch(r"\+(1|44|49|33|351|47|81|34)[2-9]\d{7,9}", value)
        else:
            assert value in known[expected]


# (tool, arguments, value check that must fail, text the problem must contain); each case is
# a bad value the old generator produced or a corruption of a good one
CORRUPTIONS = [
    ("get_historical_weather", {"location": "Lyon", "date": "2025-13-45"}, "date",
     "date='2025-13-45'"),                                            # impossible month and day
    ("create_calendar_event", {"title": "Sync", "start": "8762-44-95T97:77"}, "date",
     "start='8762-44-95T97:77'"),                                     # regex-walk date-time
    ("get_historical_weather", {"location": "Lyon", "date": "2091-03-01"}, "date",
     "outside"),                                                      # valid but implausible
    ("get_public_holidays", {"country": "DE", "year": 2099}, "date", "year"),
    ("send_email", {"to": ["MjC@-vY.9hW"], "subject": "Hi", "body": "Hello"}, "email",
     "to[0]='MjC@-vY.9hW'"),                                          # passes the loose pattern
    ("book_flight", {"offer_id": "off_1", "contact_email": "ada.example.com",
                     "passengers": [{"first_name": "Ada", "last_name": "Berg",
                                     "date_of_birth": "1990-04-02"}]}, "email", "contact_email"),
    ("fetch_webpage", {"url": "https://"}, "url", "url='https://'"),
    ("book_hotel", {"hotel_id": "htl_1", "check_in": "2025-07-01", "check_out": "2025-07-03",
                    "guest": {"full_name": "Ada Berg", "email": "ada@example.com",
                              "phone": "555-1234"}}, "phone", "guest.phone"),
    ("search_hotels", {"location": "Oslo", "check_in": "2025-07-09", "check_out": "2025-07-03"},
     "pair", "check_in='2025-07-09' is not before check_out"),        # check-in after check-out
    ("evaluate_definite_integral", {"expression": "x", "lower_bound": 334.9,
                                    "upper_bound": 147.1}, "pair", "lower_bound"),
    ("search_rental_cars", {"pickup_location": "LIS", "pickup_datetime": "2025-07-09T10:00",
                            "dropoff_datetime": "2025-07-02T10:00"}, "pair", "pickup_datetime"),
    ("search_products", {"q": "kettle", "min_price": 80.0, "max_price": 20.0}, "pair",
     "min_price"),
    ("search_flights", {"origin": "LIS", "destination": "OSL", "departure_date": "2025-08-10",
                        "return_date": "2025-08-01"}, "pair", "departure_date"),
    ("find_free_time_slots", {"participants": ["a@example.com"], "date_from": "2025-07-01",
                              "date_to": "2025-07-02",
                              "working_hours": {"start": "17:00", "end": "09:00"}}, "pair",
     "working_hours"),                                                # nested pair
    ("get_order_status", {"order_id": "12345"}, "schema", "order_id='12345'"),  # pattern
    ("get_current_weather", {"location": "Oslo", "units": "kelvin"}, "schema", "units"),  # enum
]


@pytest.mark.parametrize(("tool", "args", "check", "text"), CORRUPTIONS,
                         ids=[f"{c[2]}-{c[0]}" for c in CORRUPTIONS])
def test_value_corruption_is_named(catalogue, tool, args, check, text):
    problems = value_problems("joint_train/x-1", [ToolCall(tool, args)], list(catalogue.tools))
    found = problems[check]
    assert found and text in found[0] and found[0].startswith(f"joint_train/x-1 {tool}"), problems


def test_fresh_data_passes_the_gate(generated):
    splits, card = generated
    outcome = _validate(splits, card)
    value_checks = {c.name: c for c in outcome.checks if c.name in VALUE_EXPECTATIONS.values()}
    assert len(value_checks) == len(VALUE_EXPECTATIONS)
    assert all(c.success for c in value_checks.values()), \
        [(c.name, c.details.get("partial_unexpected_list")) for c in value_checks.values()]


def _inject(splits: dict, catalogue, tool: str, args: dict) -> str:
    """Make the first joint_train row call `tool` with `args`; return the row's id."""
    row = splits["joint_train"][0]
    call = ToolCall(tool, args)
    row["tools"] = json.dumps([catalogue.tool(tool).model_dump(mode="json")])
    row["expected_calls"] = json.dumps([{"name": tool, "arguments": args}])
    row["completion"] = [{"role": "assistant", "content": format_output([call])}]
    row["kind"] = "single"
    return row["id"]


# one corruption per value check, run through the great-expectations suite
GATE_CASES = {check: next(c for c in CORRUPTIONS if c[2] == check)
              for check in VALUE_EXPECTATIONS}


@pytest.mark.parametrize("check", list(GATE_CASES))
def test_gate_fails_on_each_value_corruption(generated, catalogue, check):
    splits, card = copy.deepcopy(generated)
    tool, args, _, text = GATE_CASES[check]
    row_id = _inject(splits, catalogue, tool, args)
    outcome = _validate(splits, card)
    failed = {c.name: c for c in outcome.checks if not c.success}
    name = VALUE_EXPECTATIONS[check]
    assert name in failed, sorted(failed)
    shown = " ".join(failed[name].details["partial_unexpected_list"])
    assert f"joint_train/{row_id} {tool}" in shown and text in shown
