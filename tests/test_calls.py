"""Output format and parser: tables of good and bad outputs, schema checks, no-crash property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolmodal.calls import (
    CALL_END,
    CALL_START,
    ToolCall,
    check_call,
    format_output,
    parse_output,
)
from toolmodal.schema import Param, Tool

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters=(
        Param(name="city", type="string", required=True),
        Param(name="unit", type="string", enum=("celsius", "fahrenheit"),
              default="celsius", has_default=True),
        Param(name="days", type="integer", minimum=1, maximum=7),
        Param(name="url", type="string", pattern="^https?://"),
        Param(name="where", type="object", properties=(
            Param(name="lat", type="number", required=True),
            Param(name="lon", type="number", required=True),
        )),
        Param(name="tags", type="array", items=Param(type="string")),
    ),
)


def _call(name: str, **arguments: object) -> str:
    return CALL_START + ToolCall(name, dict(arguments)).to_json() + CALL_END


PARSE_CASES = [
    # plain JSON call, no reasoning
    (_call("get_weather", city="Oslo"), [("get_weather", {"city": "Oslo"})], "", []),
    # reasoning text before the call is kept apart
    ("Let me check." + _call("get_weather", city="Oslo"),
     [("get_weather", {"city": "Oslo"})], "Let me check.", []),
    # two parallel calls
    (_call("a", x=1) + _call("b", y=[1, 2]), [("a", {"x": 1}), ("b", {"y": [1, 2]})], "", []),
    # no call at all: "no tool fits"
    ("None of the tools can do that.", [], "None of the tools can do that.", []),
    # Python-call form of the tool_name(args) prompt variant
    (CALL_START + 'get_weather(city="Oslo", days=3, tags=["a"], ok=True, n=None, t=-2)' + CALL_END,
     [("get_weather", {"city": "Oslo", "days": 3, "tags": ["a"], "ok": True, "n": None, "t": -2})],
     "", []),
    # dotted names (BFCL's math.gcd) in the Python form
    (CALL_START + "math.gcd(a=12, b=18)" + CALL_END, [("math.gcd", {"a": 12, "b": 18})], "", []),
    # arguments omitted means an empty argument object
    (CALL_START + '{"name": "now"}' + CALL_END, [("now", {})], "", []),
    # broken JSON is diagnosed, not raised
    (CALL_START + '{"name": "x", "arguments": {' + CALL_END, [], "", ["not_json"]),
    # a JSON list is not a call
    (CALL_START + "[1, 2]" + CALL_END, [], "", ["python_syntax"]),
    # JSON object without a name
    (CALL_START + '{"arguments": {}}' + CALL_END, [], "", ["missing_name"]),
    # arguments must be an object
    (CALL_START + '{"name": "x", "arguments": [1]}' + CALL_END, [], "", ["bad_arguments"]),
    # a missing closing delimiter still yields the call but is flagged
    (CALL_START + '{"name": "x", "arguments": {}}', [("x", {})], "", ["unterminated_call"]),
    # a call written without its opening token is a broken call, not text
    ('tool{"name": "x", "arguments": {}}' + CALL_END, [], 'tool{"name": "x", "arguments": {}}'
     + CALL_END, ["stray_close"]),
    (_call("a", x=1) + '{"name": "b"}' + CALL_END, [("a", {"x": 1})], "", ["stray_close"]),
    # code in the Python form is never evaluated: a function call as a value is rejected
    (CALL_START + 'f(x=__import__("os").system("true"))' + CALL_END, [], "", ["bad_arguments"]),
    # positional arguments are not part of the format
    (CALL_START + "f(1, 2)" + CALL_END, [], "", ["python_syntax"]),
]


@pytest.mark.parametrize(("text", "calls", "reasoning", "codes"), PARSE_CASES)
def test_parse_output_table(text: str, calls: list, reasoning: str, codes: list[str]) -> None:
    parsed = parse_output(text)
    assert [(c.name, c.arguments) for c in parsed.calls] == calls
    assert parsed.reasoning == reasoning
    assert [e.split(":")[0] for e in parsed.errors] == codes
    assert parsed.ok == (not codes)


@pytest.mark.parametrize("style", ["json", "python"])
def test_format_then_parse_round_trips(style: str) -> None:
    calls = [ToolCall("get_weather", {"city": "Zürich", "tags": ["a", "b"], "where": {"lat": 1.5}}),
             ToolCall("now", {})]
    parsed = parse_output(format_output(calls, reasoning="Two calls.", style=style))
    assert parsed.calls == calls and parsed.reasoning == "Two calls." and parsed.ok


def test_format_output_rejects_unknown_style() -> None:
    with pytest.raises(ValueError, match="unknown call style 'xml'"):
        format_output([], style="xml")


CHECK_CASES = [
    # valid: required present, enum value, in range
    ({"city": "Oslo", "unit": "fahrenheit", "days": 3}, []),
    # unanchored JSON Schema pattern matches by search
    ({"city": "Oslo", "url": "https://example.org/x"}, []),
    # required argument missing
    ({"unit": "celsius"}, ["missing_required"]),
    # argument the tool does not have
    ({"city": "Oslo", "colour": "red"}, ["unknown_argument"]),
    # integer given as string
    ({"city": "Oslo", "days": "3"}, ["wrong_type"]),
    # a bool is not an integer
    ({"city": "Oslo", "days": True}, ["wrong_type"]),
    # value outside the enum
    ({"city": "Oslo", "unit": "kelvin"}, ["bad_enum"]),
    # above maximum
    ({"city": "Oslo", "days": 9}, ["out_of_range"]),
    # pattern not found
    ({"city": "Oslo", "url": "ftp://x"}, ["out_of_range"]),
    # nested object missing a required property
    ({"city": "Oslo", "where": {"lat": 1}}, ["missing_required"]),
    # array item of the wrong type
    ({"city": "Oslo", "tags": ["a", 2]}, ["wrong_type"]),
]


@pytest.mark.parametrize(("arguments", "codes"), CHECK_CASES)
def test_check_call_table(arguments: dict, codes: list[str]) -> None:
    problems = check_call(ToolCall("get_weather", arguments), [WEATHER])
    assert [p.split(":")[0] for p in problems] == codes


def test_check_call_unknown_tool() -> None:
    assert check_call(ToolCall("send_email", {}), [WEATHER]) == [
        "unknown_tool: 'send_email' is not among the offered tools"]


@settings(max_examples=300, deadline=None)
@given(st.text() | st.builds(lambda a, b: a + CALL_START + b + CALL_END, st.text(), st.text()))
def test_parse_output_never_raises(text: str) -> None:
    parsed = parse_output(text)
    assert isinstance(parsed.calls, list) and isinstance(parsed.errors, list)
