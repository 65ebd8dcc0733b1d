"""Engines on the tiny fixture: generation patched to fixed ids, batching, padding, loading."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from toolmodal.calls import ToolCall, format_output, parse_output
from toolmodal.chat import build_prompt
from toolmodal.engines import EngineConfig, Generation, Request, load_engine
from toolmodal.engines.transformers_engine import TransformersEngine
from toolmodal.schema import Param, Tool

WEATHER = Tool(name="get_weather", parameters=(Param(name="city", type="string",
                                                     required=True),))
CALL = format_output([ToolCall("get_weather", {"city": "Oslo"})])


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    """The generate() path (masked modes use it; tests patch `model.generate`)."""
    return TransformersEngine(tiny_model_dir, EngineConfig(max_new_tokens=12, batch_size=2,
                                                           prefix_cache=False))


@pytest.fixture(scope="module")
def prefix_engine(tiny_model_dir: Path) -> TransformersEngine:
    """The shared-prefix KV path (unmasked requests)."""
    return TransformersEngine(tiny_model_dir, EngineConfig(max_new_tokens=16, batch_size=3))


def _request(query: str, mode: str = "none") -> Request:
    return Request(build_prompt("Call a tool.", [WEATHER], query), [WEATHER], mode)


def _fixed_generate(engine: TransformersEngine, monkeypatch, texts: list[str]) -> list[int]:
    """Make model.generate append the ids of texts[row] + end of turn + padding; return sizes."""
    eot, pad = engine.stop_ids[0], engine.tokenizer.pad_token_id
    rows = [engine.tokenizer(t, add_special_tokens=False)["input_ids"] + [eot] for t in texts]
    calls = {"n": 0}

    def generate(input_ids, **kwargs):
        batch = rows[calls["n"]:calls["n"] + input_ids.shape[0]]
        calls["n"] += input_ids.shape[0]
        width = max(len(r) for r in batch) + 2
        new = torch.tensor([r + [pad] * (width - len(r)) for r in batch])
        return torch.cat([input_ids, new], dim=1)

    monkeypatch.setattr(engine.model, "generate", generate)
    return [len(r) for r in rows]


def test_fixed_ids_come_back_as_text_and_parse(engine, monkeypatch):
    sizes = _fixed_generate(engine, monkeypatch, [CALL, "No tool fits.", "Sure." + CALL])
    out = engine.generate([_request("weather in Oslo?"), _request("hi"), _request("Oslo?")])
    assert [g.text for g in out] == [CALL, "No tool fits.", "Sure." + CALL]
    assert [g.n_new_tokens for g in out] == sizes  # up to and including end of turn
    assert parse_output(out[0].text).calls == [ToolCall("get_weather", {"city": "Oslo"})]
    assert parse_output(out[1].text).calls == []
    assert all(isinstance(g, Generation) and g.seconds >= 0 for g in out)


def test_results_keep_request_order_across_mask_modes(engine, monkeypatch):
    # Requests are grouped by mode (none, soft, hard) and batched; answers return in order.
    texts = ["A", "B", "C", "D"]  # generation order: none(0, 2), soft(3), hard(1)
    _fixed_generate(engine, monkeypatch, texts)
    monkeypatch.setattr(engine, "processors", lambda batch, length: [])
    requests = [_request("q0"), _request("q1", "hard"), _request("q2"), _request("q3", "soft")]
    assert [g.text for g in engine.generate(requests)] == ["A", "D", "B", "C"]


def test_batched_greedy_equals_one_by_one(engine):
    # Left padding must not change what each row generates.
    requests = [_request("What is the weather in Oslo today?"), _request("Hi")]
    together = engine.generate(requests)
    alone = [engine.generate([r])[0] for r in requests]
    assert [g.text for g in together] == [g.text for g in alone]


def _mixed_requests() -> list[Request]:
    """Prompts sharing the whole tool block, sharing only part of it, and one longer than
    the fixture's 128-token sliding window."""
    other = Tool(name="get_time", description="Current time in a zone. " * 20,
                 parameters=(Param(name="zone", type="string", required=True),))
    return [_request("What is the weather in Oslo today?"), _request("Hi"),
            Request(build_prompt("Call a tool.", [WEATHER, other], "Time in Oslo?")),
            _request("Weather in Rome tomorrow, please, in celsius?"),
            Request(build_prompt("Call a tool.", [WEATHER, other], "Time in Rome?")),
            Request(build_prompt("Other prompt.", [WEATHER], "Hi"))]


def test_prefix_kv_reuse_gives_the_plain_greedy_outputs(prefix_engine, engine, monkeypatch):
    monkeypatch.setattr(engine, "config", engine.config.model_copy(
        update={"max_new_tokens": prefix_engine.config.max_new_tokens}))
    requests = _mixed_requests()
    reference = [engine.generate([r])[0] for r in requests]  # one by one, no cache reuse
    fast = prefix_engine.generate(requests)
    assert [(g.text, g.n_new_tokens, g.ended) for g in fast] == \
        [(g.text, g.n_new_tokens, g.ended) for g in reference]
    assert prefix_engine._prefixes  # shared prefixes were cached


def test_prefix_path_stops_each_row_at_its_own_end_of_turn(prefix_engine, engine, monkeypatch):
    # Make a token the model emits early in some rows an extra stop token: those rows leave
    # the batch; every row must still match generate()'s per-row stopping.
    requests = _mixed_requests()
    first = prefix_engine.generate(requests[:1])[0]
    stop = prefix_engine.tokenizer(first.text, add_special_tokens=False)["input_ids"][2]
    for e in (engine, prefix_engine):
        monkeypatch.setattr(e, "stop_ids", [*e.stop_ids, stop])
    monkeypatch.setattr(engine, "config", engine.config.model_copy(
        update={"max_new_tokens": prefix_engine.config.max_new_tokens}))
    reference = [engine.generate([r])[0] for r in requests]
    fast = prefix_engine.generate(requests)
    assert [(g.text, g.n_new_tokens, g.ended) for g in fast] == \
        [(g.text, g.n_new_tokens, g.ended) for g in reference]
    assert fast[0].ended  # stopped at the chosen token...
    assert not all(g.ended for g in fast)  # ...while other rows of its batch went on


def test_masked_generation_from_the_prefilled_cache_equals_the_plain_path(
        prefix_engine, engine, monkeypatch):
    monkeypatch.setattr(engine, "config", engine.config.model_copy(
        update={"max_new_tokens": prefix_engine.config.max_new_tokens}))
    requests = [Request(r.messages, [WEATHER], "soft") for r in _mixed_requests()[:4]]
    reference = [engine.generate([r])[0] for r in requests]
    fast = prefix_engine.generate(requests)
    assert [g.text for g in fast] == [g.text for g in reference]


def test_hard_mode_through_the_engine_parses_to_offered_calls(engine):
    for generation in engine.generate([_request("weather in Oslo?", "hard")]):
        assert all(c.name == "get_weather" for c in parse_output(generation.text).calls)


def test_load_engine_by_name(tiny_model_dir):
    assert isinstance(load_engine("transformers", tiny_model_dir, EngineConfig()),
                      TransformersEngine)
    with pytest.raises(ValueError, match="unknown engine 'tgi'"):
        load_engine("tgi", tiny_model_dir, EngineConfig())  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm installed")
def test_vllm_engine_needs_vllm(tiny_model_dir):
    with pytest.raises(ModuleNotFoundError, match="vllm"):
        load_engine("vllm", tiny_model_dir, EngineConfig())


def test_llama_cpp_engine_module_does_not_load_torch() -> None:
    """Serving a GGUF file must not pay torch's ~0.5 GB of RSS."""
    import subprocess
    import sys

    code = "import sys, toolmodal.engines.llamacpp; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("batch_size", [1, 8])
def test_llama_cpp_runs_shared_prefixes_back_to_back(monkeypatch, batch_size: int) -> None:
    # sorted prompts make rows with the same tool block neighbours, one at a time (llama-cpp-
    # python keeps the common prefix of consecutive prompts) or decoded together (the batch
    # decoder shares the previous prompt's cells); answers come back in request order.
    from toolmodal.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine.__new__(LlamaCppEngine)  # no GGUF: only the ordering is tested
    engine.config = EngineConfig(batch_size=batch_size)
    prompts = {"b": [1, 2, 9], "a": [1, 2, 3], "c": [5], "d": [1, 4]}
    run: list[list[int]] = []

    def generate_one(request: Request, prompt: list[int]) -> Generation:
        run.append(prompt)
        return Generation(request.messages[0]["content"], 1, 0.0, True)

    def generate_batched(requests: list[Request], batch: list[list[int]]) -> list[Generation]:
        return [generate_one(r, p) for r, p in zip(requests, batch, strict=True)]

    monkeypatch.setattr(engine, "prompt_tokens", lambda messages: prompts[messages[0]["content"]],
                        raising=False)
    monkeypatch.setattr(engine, "_generate_one", generate_one, raising=False)
    monkeypatch.setattr(engine, "_generate_batched", generate_batched, raising=False)
    out = engine.generate([Request([{"role": "user", "content": k}]) for k in "bacd"])
    assert run == [[1, 2, 3], [1, 2, 9], [1, 4], [5]]
    assert [g.text for g in out] == ["b", "a", "c", "d"]
