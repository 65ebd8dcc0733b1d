"""The server's llama.cpp backend on the tiny fixture exported to GGUF: tool-block snapshots and
the hard mask for a named tool_choice.

Skipped only where llama-cpp-python (the `export` extra, built from source) is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolmodal.engines import EngineConfig, load_engine
from toolmodal.export import ExportConfig, export_model
from toolmodal.serve.backends import LlamaCppBackend
from toolmodal.serve.protocol import parse_request
from toolmodal.serve.translate import ServeConfig, ToolCache, plan_request

pytest.importorskip("llama_cpp", reason="llama-cpp-python (the `export` extra) not installed")
pytestmark = pytest.mark.smoke


def _tool(name: str, description: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": {
                                                 "city": {"type": "string"}}}}}


TOOLS_A = [_tool("get_weather", "Current weather"), _tool("get_time", "Current time")]
TOOLS_B = [_tool("find_hotel", "Hotels in a city"), _tool("book_taxi", "A taxi ride")]
NO_PARAMS = {"type": "function", "function": {"name": "ping", "description": "Ping"}}


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path, tmp_path_factory) -> LlamaCppBackend:
    out = tmp_path_factory.mktemp("serve-gguf")
    files = export_model(tiny_model_dir, out, ExportConfig(formats=["gguf-q8_0"],
                                                           tokenizer_pre="gemma4"))
    engine = load_engine("llamacpp", files["gguf-q8_0"], EngineConfig(max_new_tokens=24))
    return LlamaCppBackend(engine, tool_states=4)


def _plan(tools: list[dict], question: str, **extra):
    request = parse_request({"model": "m", "tools": tools, "max_tokens": 12, **extra,
                             "messages": [{"role": "user", "content": question}]})
    return plan_request(request, ServeConfig(system_prompt="Call tools."), ToolCache())


def _generate(backend: LlamaCppBackend, plan) -> list[int]:
    prompt = backend.prompt_ids(plan.messages)
    tokens = []
    for token in backend.tokens(plan, prompt):
        tokens.append(token)
        if len(tokens) == plan.max_tokens:
            break
    return tokens


def test_tool_blocks_are_restored_and_answers_do_not_change(backend):
    first = _plan(TOOLS_A, "weather in Oslo?")
    reference = _generate(backend, first)  # evaluated from scratch
    _generate(backend, _plan(TOOLS_B, "a taxi please"))
    again = _generate(backend, first)  # tools A put back from the snapshot
    warm = _generate(backend, _plan(TOOLS_A, "time in Oslo?"))
    assert again == reference
    assert backend.tool_blocks["restored"] >= 1 and backend.tool_blocks["evaluated"] >= 2
    assert backend.tool_blocks["warm"] >= 1 and warm is not None
    assert backend.states.bytes_held() > 0


@pytest.mark.parametrize("temperature", [0.0, 0.8])  # lazy grammar / llama.cpp's sampler
def test_named_tool_choice_on_llama_cpp_forces_the_call(backend, temperature):
    plan = _plan([*TOOLS_A, NO_PARAMS], "hello", parallel_tool_calls=False, max_tokens=60,
                 tool_choice={"type": "function", "function": {"name": "ping"}},
                 temperature=temperature)
    text = backend.detokenize(_generate(backend, plan))
    assert text == '<tool_call>{"name": "ping", "arguments": {}}</tool_call>'


def test_call_decision_acts_at_the_first_position_on_llama_cpp(backend, monkeypatch):
    engine = backend.engine
    (call_id,) = engine.llm.tokenize(b"<tool_call>", add_bos=False, special=True)
    monkeypatch.setattr(engine, "config", engine.config.model_copy(
        update={"call_threshold": 1.0}))  # withheld unless certain
    seen: list[tuple[int, float]] = []
    make = engine.decision_processor

    def recording(prompt_length: int):
        decide = make(prompt_length)

        def wrapped(input_ids, scores):
            out = decide(input_ids, scores)
            seen.append((len(input_ids) - prompt_length, float(out[call_id])))
            return out

        return wrapped

    monkeypatch.setattr(engine, "decision_processor", recording)
    tokens = _generate(backend, _plan(TOOLS_A, "weather in Oslo?"))
    assert seen[0] == (0, float("-inf")) and tokens[0] != call_id
    assert [offset for offset, _ in seen[:3]] == [0, 1, 2]
    assert all(value > float("-inf") for _, value in seen[1:])  # later positions untouched
    seen.clear()
    _generate(backend, _plan(TOOLS_A, "weather in Oslo?", tool_choice="required"))
    assert seen == []  # a required call is not the model's to decide
