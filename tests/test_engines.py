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
    return TransformersEngine(tiny_model_dir, EngineConfig(max_new_tokens=12, batch_size=2))


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
