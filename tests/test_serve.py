"""The OpenAI-compatible server, live on a free port, driven by the official `openai` client.

Smoke tier: the tiny fixture model with the transformers engine. Where a test needs a known
answer the backend's `tokens` is patched to yield the token ids of a fixed text; tool_choice
"none", "required" and a named function run the real model under the hard mask, whose grammar
alone decides the shape of the answer.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import uvicorn

from toolmodal.engines import EngineConfig
from toolmodal.engines.transformers_engine import TransformersEngine
from toolmodal.serve.app import create_app
from toolmodal.serve.backends import TransformersBackend
from toolmodal.serve.translate import ServeConfig

pytestmark = pytest.mark.smoke

QUEUE_LIMIT = 2
BODY_LIMIT = 200_000
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "Current time",
                                         "parameters": {"type": "object", "properties": {}}}}
MODE = {"type": "function", "function": {
    "name": "set_mode", "parameters": {"type": "object", "properties": {
        "mode": {"type": "string", "enum": ["fast", "slow"]}}, "required": ["mode"]}}}
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
USER = [{"role": "user", "content": "What's the weather in Oslo?"}]


def _http(url: str, body: bytes | None = None) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of a GET, or a POST of raw bytes."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(TransformersEngine(tiny_model_dir, EngineConfig()))


@pytest.fixture(scope="module")
def base_url(backend):
    app = create_app(backend, ServeConfig(system_prompt="Call a tool.", default_max_tokens=24),
                     model_name="tiny-gemma", max_queue=QUEUE_LIMIT, max_body_bytes=BODY_LIMIT)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(base_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)


def _script(backend, monkeypatch, text: str, seen: list | None = None, delay: float = 0.0):
    """Make generation yield the token ids of `text` (recording the plan and prompt)."""
    ids = backend.tokenizer(text, add_special_tokens=False)["input_ids"]

    def tokens(plan, prompt):
        if seen is not None:
            seen.append((plan, prompt))
        for token in ids:
            time.sleep(delay)
            yield token

    monkeypatch.setattr(backend, "tokens", tokens)



def test_models_and_health(client, base_url):
    assert [m.id for m in client.models.list().data] == ["tiny-gemma"]
    _, health, _ = _http(base_url.removesuffix("/v1") + "/health")
    assert health["status"] == "ok" and health["queue_limit"] == QUEUE_LIMIT


def test_tools_request_returns_openai_tool_calls(client, backend, monkeypatch):
    _script(backend, monkeypatch, "Checking." + CALL)
    response = client.chat.completions.create(model="tiny-gemma", messages=USER,
                                              tools=[WEATHER, TIME])
    choice = response.choices[0]
    call = choice.message.tool_calls[0]
    assert (call.type, call.function.name) == ("function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert call.id.startswith("call_")
    assert choice.message.content == "Checking."
    assert choice.finish_reason == "tool_calls"
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_tool_choice_auto_without_a_call_is_plain_content(client, backend, monkeypatch):
    _script(backend, monkeypatch, "No tool fits.")
    choice = client.chat.completions.create(model="tiny-gemma", messages=USER, tools=[WEATHER],
                                            tool_choice="auto").choices[0]
    assert choice.message.tool_calls is None
    assert (choice.message.content, choice.finish_reason) == ("No tool fits.", "stop")


def test_tool_choice_none_never_calls(client):
    # Real model, hard mask over no tools: "<" can never be written, so no call can start.
    choice = client.chat.completions.create(model="tiny-gemma", messages=USER, tools=[WEATHER],
                                            tool_choice="none", max_tokens=12).choices[0]
    assert choice.message.tool_calls is None
    assert "<" not in (choice.message.content or "")


def test_named_tool_choice_forces_that_call(client):
    # Real model: get_time has no parameters, so the grammar leaves exactly one answer.
    choice = client.chat.completions.create(
        model="tiny-gemma", messages=USER, tools=[WEATHER, TIME], max_tokens=200,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False).choices[0]
    assert [(c.function.name, json.loads(c.function.arguments))
            for c in choice.message.tool_calls] == [("get_time", {})]
    assert choice.finish_reason == "tool_calls"


def test_tool_choice_required_calls_an_offered_tool(client):
    choice = client.chat.completions.create(
        model="tiny-gemma", messages=USER, tools=[TIME, MODE], max_tokens=200,
        tool_choice="required", parallel_tool_calls=False).choices[0]
    (call,) = choice.message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert (call.function.name, arguments) in [("get_time", {}), ("set_mode", {"mode": "fast"}),
                                               ("set_mode", {"mode": "slow"})]


def test_multi_turn_with_tool_results_renders_our_format(client, backend, monkeypatch):
    seen: list = []
    _script(backend, monkeypatch, "It is 12 C in Oslo.", seen)
    messages = [
        {"role": "system", "content": "Answer in English."},
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12 C"},
    ]
    choice = client.chat.completions.create(model="tiny-gemma", messages=messages,
                                            tools=[WEATHER]).choices[0]
    assert (choice.message.content, choice.finish_reason) == ("It is 12 C in Oslo.", "stop")
    prompt = backend.tokenizer.decode(seen[0][1])
    assert "<start_of_turn>model\n" + CALL + "<end_of_turn>" in prompt
    assert "<start_of_turn>tool\n<tool_response>12 C</tool_response><end_of_turn>" in prompt
    # Tools first (a cacheable prefix), the client's system text after them, before the query.
    assert prompt.index("<tool_end>") < prompt.index("Answer in English.") < prompt.index("Oslo?")


def test_streaming_sends_content_then_one_tool_call_delta(client, backend, monkeypatch):
    _script(backend, monkeypatch, "Sure." + CALL)
    chunks = list(client.chat.completions.create(
        model="tiny-gemma", messages=USER, tools=[WEATHER], stream=True,
        stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "Sure."
    calls = [tc for d in deltas for tc in d.tool_calls or []]
    assert [(tc.index, tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [
        (0, "get_weather", {"city": "Oslo"})]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.completion_tokens > 0


def test_parallel_tool_calls_false_stops_after_the_first_call(client, backend, monkeypatch):
    _script(backend, monkeypatch, CALL + CALL.replace("Oslo", "Bergen"))
    calls = client.chat.completions.create(model="tiny-gemma", messages=USER, tools=[WEATHER],
                                           parallel_tool_calls=False).choices[0].message.tool_calls
    assert len(calls) == 1


BROKEN_CALL = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{x"}}
BAD_TOOL = {"type": "function", "function": {"name": "broken", "parameters": {
    "type": "object", "properties": {"x": {"type": "strange"}}}}}


@pytest.mark.parametrize(("kwargs", "param", "names"), [
    # A message role OpenAI does not have.
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "robot"),
    # temperature must be a number.
    ({"messages": USER, "temperature": "hot"}, "temperature", "hot"),
    # A tool schema the pipeline's ingester rejects: the error names tool and field.
    ({"messages": USER, "tools": [WEATHER, BAD_TOOL]}, "tools[1]", "'broken'"),
    # A named tool_choice that is not among the tools.
    ({"messages": USER, "tools": [WEATHER], "tool_choice": {
        "type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name", "nope"),
    # "required" with no tools at all.
    ({"messages": USER, "tool_choice": "required"}, "tool_choice", "required"),
    # Arguments of an earlier call that are not JSON.
    ({"messages": [*USER, {"role": "assistant", "tool_calls": [BROKEN_CALL]}]},
     "messages[1].tool_calls[0].function.arguments", "not JSON"),
])
def test_bad_requests_are_400_naming_the_field(client, kwargs, param, names):
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="tiny-gemma", **kwargs)
    error = exc_info.value.body
    assert error["param"] == param
    assert names in error["message"]


def test_malformed_json_and_oversized_body_are_400(base_url):
    url = base_url + "/chat/completions"
    status, body, _ = _http(url, b'{"model": "x", "messages": [')
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, body, _ = _http(url, b" " * (BODY_LIMIT + 1))
    assert (status, body["error"]["code"]) == (400, "body_too_large")


def test_more_tools_than_fit_the_context_is_400_naming_tools(client):
    tools = [{"type": "function", "function": {
        "name": f"tool_{i}", "description": "word " * 60,
        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}
        for i in range(60)]
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="tiny-gemma", messages=USER, tools=tools)
    assert exc_info.value.body["param"] == "tools"
    assert exc_info.value.body["code"] == "context_length_exceeded"


def test_server_keeps_serving_after_bad_input(client, backend, monkeypatch):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-gemma", messages=[])
    _script(backend, monkeypatch, CALL)
    response = client.chat.completions.create(model="tiny-gemma", messages=USER, tools=[WEATHER])
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_beyond_the_queue_limit_requests_get_503_promptly(base_url, backend, monkeypatch):
    _script(backend, monkeypatch, "slow answer " * 4, delay=0.1)
    body = json.dumps({"model": "tiny-gemma", "messages": USER}).encode()

    def post() -> tuple[int, float, str | None]:
        started = time.monotonic()
        status, _, headers = _http(base_url + "/chat/completions", body)
        return status, time.monotonic() - started, headers.get("retry-after")

    with ThreadPoolExecutor(QUEUE_LIMIT + 4) as pool:
        results = list(pool.map(lambda _: post(), range(QUEUE_LIMIT + 4)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(200) >= QUEUE_LIMIT and 503 in statuses
    assert all(seconds < 1.0 and retry == "1" for status, seconds, retry in results
               if status == 503)
