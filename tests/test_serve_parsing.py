"""Unit tests of the server's pure parts: output splitting, the vLLM plugin logic, translation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolmodal.calls import ToolCall
from toolmodal.serve.callstream import Call, CallStream, Content, held_back, split_output
from toolmodal.serve.protocol import RequestError, field_path, parse_request
from toolmodal.serve.translate import ServeConfig, ToolCache, output_grammar, plan_request
from toolmodal.serve.vllm_format import StreamSplitter, chat_template, constraint, extract

OSLO = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time"}}


@pytest.mark.parametrize(("text", "content", "calls"), [
    # Plain answer, no call.
    ("No tool fits.", "No tool fits.", []),
    # Reasoning then a call.
    ("Checking." + OSLO, "Checking.", [ToolCall("get_weather", {"city": "Oslo"})]),
    # Two calls; text between them is dropped, as parse_output drops it.
    (OSLO + " and " + OSLO.replace("Oslo", "Rome"), "",
     [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Rome"})]),
    # The Python call form is accepted too.
    ('<tool_call>get_time(tz="UTC")</tool_call>', "", [ToolCall("get_time", {"tz": "UTC"})]),
    # A block that does not parse is passed on as content, raw.
    ("<tool_call>{broken</tool_call>", "<tool_call>{broken</tool_call>", []),
    # An unterminated call whose JSON is complete still counts (the budget ran out).
    ('<tool_call>{"name": "get_time", "arguments": {}}', "", [ToolCall("get_time", {})]),
    # A lone "<" that never becomes a delimiter is content.
    ("a < b", "a < b", []),
])
def test_split_output_table(text, content, calls):
    assert split_output(text) == (content, calls)


def test_held_back_is_the_longest_delimiter_prefix():
    assert [held_back(t) for t in ("abc", "abc<", "abc<tool_", "<tool_call")] == [0, 1, 6, 10]


def test_streaming_never_shows_half_a_delimiter():
    stream = CallStream()
    pieces = ["Sure", ". <to", "ol_c", 'all>{"name": "get_time", ', '"arguments": {}}</tool',
              "_call>"]
    events = [stream.feed(p) for p in pieces]
    assert events[:3] == [[Content("Sure")], [Content(". ")], []]
    assert events[-1] == [Call(0, ToolCall("get_time", {}))]


@given(st.lists(st.text(alphabet=st.sampled_from(list('<>/tool_call{}"name: ,ab')), max_size=12),
                max_size=12))
def test_stream_in_any_pieces_equals_whole_and_never_crashes(pieces):
    stream = CallStream()
    events = [e for p in pieces for e in stream.feed(p)] + stream.finish()
    streamed = "".join(e.text for e in events if isinstance(e, Content)).strip()
    assert (streamed, stream.calls) == split_output("".join(pieces))


def test_vllm_extract_and_stream_give_openai_dicts():
    content, calls = extract("Checking." + OSLO)
    assert content == "Checking."
    assert calls == [{"type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}}]
    splitter = StreamSplitter()
    assert splitter.delta("Checking.<tool") == ("Checking.", [])
    _, deltas = splitter.delta(OSLO[5:])
    assert [(d["index"], d["function"]["name"]) for d in deltas] == [(0, "get_weather")]
    assert deltas[0]["id"].startswith("call_")
    assert extract("plain") == ("plain", [])


def test_vllm_constraint_only_for_required_and_named():
    assert constraint([WEATHER], "auto", True) is None
    assert constraint([], "required", True) is None
    named = constraint([WEATHER, TIME], {"type": "function", "function": {"name": "get_time"}},
                       False)
    assert '\\"get_time\\"' in named and "get_weather" not in named
    with pytest.raises(ValueError, match="nope"):
        constraint([WEATHER], {"type": "function", "function": {"name": "nope"}}, True)


def test_output_grammar_bounds_the_number_of_calls():
    tools = ToolCache().tools([TIME])
    assert ')*\n' in output_grammar(tools, "line", False, 0, None)
    assert ')+\n' in output_grammar(tools, "none", False, 1, None)
    assert ')?\n' in output_grammar(tools, "line", False, 0, 1)
    assert 'root ::= reasoning\n' in output_grammar([], "free", False, 0, None)


def _plan(**body):
    request = parse_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                             **body})
    return plan_request(request, ServeConfig(system_prompt="Call tools.", mask="soft"),
                        ToolCache())


def test_plan_per_tool_choice():
    auto = _plan(tools=[WEATHER, TIME])
    assert (auto.mask, auto.grammar, [t.name for t in auto.allowed]) == (
        "soft", None, ["get_weather", "get_time"])
    no_tools = _plan()  # without tools the default is "none": no call can be written
    assert (no_tools.mask, no_tools.allowed, no_tools.tools) == ("hard", [], [])
    forced = _plan(tools=[WEATHER, TIME], tool_choice="none")
    assert (forced.mask, forced.allowed) == ("hard", [])
    named = _plan(tools=[WEATHER, TIME], parallel_tool_calls=False,
                  tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert (named.mask, [t.name for t in named.allowed], named.max_calls) == (
        "hard", ["get_time"], 1)
    # Every plan offers all tools in the prompt, so the prompt prefix stays the same.
    assert named.messages[0] == auto.messages[0]
    # Only "auto" with tools leaves the call to the model's decision (call_threshold).
    required = _plan(tools=[WEATHER], tool_choice="required")
    assert [p.call_decision for p in (auto, no_tools, forced, named, required)] == [
        True, False, False, False, False]


def test_field_paths_and_type_errors_name_the_field():
    assert field_path(("messages", 2, "content", "list[TextPart]", 0, "type")) == \
        "messages[2].content[0].type"
    with pytest.raises(RequestError) as exc_info:
        parse_request({"model": "m", "messages": [{"role": "user", "content": 5}]})
    assert exc_info.value.param == "messages[0].content"
    with pytest.raises(RequestError, match="JSON object"):
        parse_request(["not", "an", "object"])


def test_conversation_must_start_with_a_user_message():
    with pytest.raises(RequestError) as exc_info:
        plan_request(parse_request({"model": "m", "messages": [
            {"role": "system", "content": "x"}, {"role": "assistant", "content": "y"}]}),
            ServeConfig(system_prompt=""), ToolCache())
    assert exc_info.value.param == "messages[1]"


def test_duplicate_tool_names_are_rejected():
    with pytest.raises(RequestError) as exc_info:
        ToolCache().tools([WEATHER, WEATHER])
    assert exc_info.value.param == "tools[1]"


OSLO_CALL = {"name": "get_weather", "arguments": {"city": "Oslo"}}


def _catalogue_openai_tools() -> list[dict]:
    """Every tool of the bundled OpenAI-format schema files."""
    tools = []
    for path in sorted(Path("data/tool_schemas").glob("*/openai_*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        tools += doc if isinstance(doc, list) else [doc]
    return tools


def test_vllm_chat_template_renders_what_toolmodal_serve_builds(tiny_model_dir):
    from transformers.utils.chat_template_utils import render_jinja_template

    from toolmodal.model import load_tokenizer

    tools = _catalogue_openai_tools()
    assert len(tools) >= 10
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                                                              "function": OSLO_CALL}]},
        {"role": "tool", "content": "12 C"},
    ]
    request = parse_request({"model": "m", "messages": messages[:2] + [
        {**messages[2], "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}, messages[3]],
        "tools": tools})
    plan = plan_request(request, ServeConfig(system_prompt="Call tools."), ToolCache())
    ours = load_tokenizer(tiny_model_dir).apply_chat_template(
        plan.messages, tokenize=False, add_generation_prompt=True)
    rendered, _ = render_jinja_template([messages], tools=tools,
                                        chat_template=chat_template("Call tools."),
                                        add_generation_prompt=True, bos_token="<bos>")
    assert rendered[0] == ours


def test_serve_command_arguments():
    from toolmodal.cli import build_parser

    args = build_parser().parse_args(["serve", "--model", "out/model-q4_k_m.gguf", "--mask",
                                      "hard", "--port", "9000"])
    assert (args.target, args.engine, args.mask, args.port, args.host, args.max_queue) == (
        "serve:serve", None, "hard", 9000, "127.0.0.1", 16)
