"""The graded GRPO reward `scoring.call_reward`: a table of outputs, one comment per case."""

from __future__ import annotations

import json

import pytest

from toolmodal.calls import ToolCall, format_output
from toolmodal.schema import Param, Tool
from toolmodal.scoring import call_reward
from toolmodal.training.grpo import rewards_for

TOOLS = json.dumps([Tool(name=n, description=n, parameters=(
    Param(name="city", type="string", required=True),
    Param(name="days", type="integer", required=True))).model_dump(mode="json")
    for n in ("get_weather", "get_time")])
WANT = json.dumps([{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}])
NONE = json.dumps([])


def _call(name: str, **arguments) -> str:
    return format_output([ToolCall(name, arguments)])


@pytest.mark.parametrize(("text", "expected", "value"), [
    (_call("get_weather", city="Oslo", days=2), WANT, 1.0),  # exact
    (_call("get_weather", city="Oslo", days=3), WANT, 0.7),  # right tool, half the arguments
    (_call("get_weather", city="Rome", days=3), WANT, 0.5),  # right tool, no argument right
    ("I cannot help with that.", WANT, 0.0),  # refusal on a call-needing prompt
    (_call("get_time", city="Oslo", days=2), WANT, -0.5),  # wrong (offered) tool
    ('<tool_call>{"name": "get_weather", "arguments": {', WANT, -0.5),  # broken format
    (_call("book_flight", city="Oslo"), WANT, -1.0),  # a tool that was not offered
    ("No tool fits this request.", NONE, 1.0),  # irrelevance: no call
    (_call("get_weather", city="Oslo", days=2), NONE, -0.5),  # irrelevance: any call
    (_call("book_flight", city="Oslo"), NONE, -1.0),  # irrelevance: unoffered tool
])
def test_call_reward_orders_outputs(text, expected, value):
    assert call_reward([text], [TOOLS], [expected]) == [pytest.approx(value)]


def test_call_reward_takes_chat_completions_and_is_the_default_mode():
    completion = [{"role": "assistant", "content": _call("get_weather", city="Oslo", days=2)}]
    assert call_reward([completion], [TOOLS], [WANT]) == [1.0]
    assert rewards_for("call") == ([call_reward], [1.0])
