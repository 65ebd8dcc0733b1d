"""Scorers: tables of good and bad outputs (one comment each) and a property test."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolmodal.calls import ToolCall, format_output
from toolmodal.schema import Param, Tool
from toolmodal.scoring import (
    REWARDS,
    argument_match_reward,
    exact_match_reward,
    format_reward,
    no_hallucination_reward,
    same_value,
    score_example,
    tool_selection_reward,
    wilson_interval,
)

WEATHER = Tool(name="get_weather", parameters=(
    Param(name="city", type="string", required=True),
    Param(name="unit", type="string", enum=("celsius", "fahrenheit")),
))
ADD = Tool(name="add", parameters=(Param(name="a", type="integer", required=True),
                                   Param(name="b", type="number")))
TOOLS = [WEATHER, ADD]
TOOLS_JSON = json.dumps([t.model_dump(mode="json") for t in TOOLS])
OSLO = ToolCall("get_weather", {"city": "Oslo", "unit": "celsius"})
SUM = ToolCall("add", {"a": 1, "b": 2.5})


def call(name: str, **arguments) -> str:
    return format_output([ToolCall(name, arguments)])


# (output, expected calls, tool, args, exact, format, hallucinated), one comment per case.
CASES = [
    (format_output([OSLO]), [OSLO], True, True, True, True, False),  # perfect single call
    ("Checking." + format_output([OSLO]), [OSLO], True, True, True, True, False),  # + reasoning
    (format_output([SUM, OSLO]), [OSLO, SUM], True, True, True, True, False),  # order-free
    (call("get_weather", city="Oslo", unit="celsius").replace("Oslo", "oslo"), [OSLO],
     True, False, False, True, False),  # right tool, wrong value (case matters here)
    (call("get_weather", city="Oslo"), [OSLO], True, False, False, True, False),  # missing arg
    (call("add", a=1.0, b=2.5), [SUM], True, True, True, True, False),  # 1.0 equals 1
    (call("add", a=True, b=2.5), [SUM], True, False, False, True, False),  # True is not 1
    (call("get_forecast", city="Oslo"), [OSLO], False, False, False, True, True),  # unoffered
    (format_output([OSLO, OSLO]), [OSLO], False, False, False, True, False),  # extra call
    ("No tool fits.", [], True, True, True, True, False),  # correct "no call"
    (format_output([OSLO]), [], False, False, False, True, False),  # call where none fits
    ("", [OSLO], False, False, False, True, False),  # silence where a call was due
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"</tool_call>', [OSLO],
     False, False, False, False, False),  # broken JSON: no call parsed, bad format
    (format_output([OSLO]) + " and more", [OSLO], True, True, True, False, False),  # tail text
    (format_output([OSLO], style="python"), [OSLO], True, True, True, True, False),  # py form
]


@pytest.mark.parametrize(("text", "expected", "tool", "args", "exact", "fmt", "halluc"), CASES)
def test_score_example_table(text, expected, tool, args, exact, fmt, halluc):
    score = score_example(text, TOOLS, expected)
    assert (score.tool_correct, score.args_correct, score.exact, score.format_ok,
            score.hallucinated) == (tool, args, exact, fmt, halluc)


def _columns(expected: list[ToolCall], n: int) -> dict:
    calls = json.dumps([{"name": c.name, "arguments": c.arguments} for c in expected])
    return {"tools": [TOOLS_JSON] * n, "expected_calls": [calls] * n}


def test_rewards_take_trl_columns_and_chat_messages():
    completions = [format_output([OSLO]),  # perfect
                   [{"role": "assistant", "content": format_output([OSLO])}],  # chat form
                   call("get_weather", city="Bergen", unit="celsius"),  # half the arguments
                   call("nuke", city="Oslo")]  # hallucinated tool
    cols = _columns([OSLO], len(completions)) | {"prompts": ["p"] * 4, "trainer_state": None}
    assert tool_selection_reward(completions, **cols) == [1.0, 1.0, 1.0, 0.0]
    assert argument_match_reward(completions, **cols) == [1.0, 1.0, 0.5, 0.0]
    assert exact_match_reward(completions, **cols) == [1.0, 1.0, 0.0, 0.0]
    assert no_hallucination_reward(completions, **cols) == [1.0, 1.0, 1.0, 0.0]
    assert format_reward(completions, **cols) == [1.0, 1.0, 1.0, 1.0]


def test_argument_credit_penalises_extra_calls_and_keys():
    extra_key = call("get_weather", city="Oslo", unit="celsius", days=3)
    assert argument_match_reward([extra_key], **_columns([OSLO], 1)) == [pytest.approx(2 / 3)]
    doubled = format_output([OSLO, OSLO])
    assert argument_match_reward([doubled], **_columns([OSLO], 1)) == [0.5]


def test_column_length_mismatch_names_the_columns():
    with pytest.raises(ValueError, match="2 completions, 1 tools"):
        format_reward(["a", "b"], tools=[TOOLS_JSON], expected_calls=["[]"])


@pytest.mark.parametrize(("a", "b", "same"), [
    (1, 1.0, True),  # int equals float
    (True, 1, False),  # bool is not a number
    ([1, "x"], [1.0, "x"], True),  # recursive
    ({"k": 1}, {"k": 1, "j": 2}, False),  # different keys
    ("Oslo", "oslo", False),  # strings exact
    (None, None, True),  # null equals null
])
def test_same_value(a, b, same):
    assert same_value(a, b) is same


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), expected_args=st.dictionaries(st.text(max_size=5), json_values,
                                                                  max_size=3))
def test_rewards_never_crash_and_stay_in_unit_interval(text, expected_args):
    cols = _columns([ToolCall("get_weather", expected_args)], 1)
    for reward in REWARDS.values():
        (value,) = reward([text], **cols)
        assert 0.0 <= value <= 1.0


@settings(max_examples=100, deadline=None)
@given(args=st.dictionaries(st.text(min_size=1, max_size=5), json_values, max_size=3))
def test_formatted_expected_call_scores_perfectly(args):
    expected = [ToolCall("get_weather", args)]
    score = score_example(format_output(expected), TOOLS, expected)
    assert score.exact and score.tool_correct and score.args_fraction == 1.0


# (output, expected, ended at end-of-turn, stopped after its calls), one comment per case.
STOP_CASES = [
    (format_output([OSLO]), [OSLO], True, True),  # calls, then end-of-turn
    (format_output([OSLO]), [OSLO], False, False),  # right call but ran out of budget
    (format_output([OSLO]) + " Done.", [OSLO], True, False),  # text after the calls
    (format_output([OSLO, OSLO]), [OSLO], True, False),  # the same block repeated
    (format_output([OSLO, SUM]), [OSLO, SUM], True, True),  # two different calls
    ("No tool fits.", [OSLO], True, False),  # a refusal never "stops after its calls"
]


@pytest.mark.parametrize(("text", "expected", "ended", "stopped"), STOP_CASES)
def test_stopped_after_calls_table(text, expected, ended, stopped):
    assert score_example(text, TOOLS, expected, ended).stopped is stopped


def test_refusal_on_a_call_example_is_wrong_everywhere():
    score = score_example("I cannot help with that.", TOOLS, [OSLO])
    assert not (score.tool_correct or score.args_correct or score.exact or score.stopped)
    assert (score.args_matched, score.args_total, score.args_fraction) == (0, 2, 0.0)


def test_arguments_are_counted_per_argument():
    score = score_example(call("get_weather", city="Oslo", unit="kelvin"), TOOLS, [OSLO, SUM])
    assert (score.args_matched, score.args_total) == (1, 4)  # city right; unit, a, b not


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775),  # nothing right in 10: the upper bound is far from 0
    (5, 10, 0.2366, 0.7634),  # symmetric around one half
    (10, 10, 0.7225, 1.0),  # mirror of 0/10
    (90, 100, 0.8256, 0.9448),  # published textbook value
    (0, 0, 0.0, 1.0),  # nothing measured: nothing excluded
])
def test_wilson_interval_known_values(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_rejects_impossible_counts():
    with pytest.raises(ValueError, match="successes=11 outside 0..n=10"):
        wilson_interval(11, 10)
