"""The call decision by probability mass: the rule, and both engines applying it at the first
generated position only."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from toolmodal.calls import CALL_START
from toolmodal.chat import build_prompt
from toolmodal.engines import EngineConfig, Request
from toolmodal.engines.transformers_engine import TransformersEngine
from toolmodal.masking.decision import call_probability, withholds_call
from toolmodal.schema import Param, Tool
from toolmodal.serve.backends import TransformersBackend
from toolmodal.serve.translate import Plan

WEATHER = Tool(name="get_weather", parameters=(Param(name="city", type="string",
                                                     required=True),))


def test_call_probability_is_the_softmax_mass_of_the_call_token():
    logits = np.array([[math.log(2), 0.0, 0.0], [5.0, 1000.0, 5.0]])  # p = .5 / ~0
    assert np.allclose(call_probability(logits, 0), [0.5, 0.0])
    assert withholds_call(logits, 0, 0.5).tolist() == [False, True]
    assert withholds_call(logits[0], 0, 0.51)  # one row (llama.cpp's scores)


def _logits_with_call_share(logits: torch.Tensor, call_id: int, share: float) -> torch.Tensor:
    """`logits` with the call token set to probability `share` (others keep their ratios)."""
    logits = logits.clone()
    logits[..., call_id] = float("-inf")
    rest = torch.logsumexp(logits, dim=-1)
    logits[..., call_id] = rest + math.log(share / (1 - share))
    return logits


@pytest.mark.parametrize("prefix_cache", [True, False])
@pytest.mark.parametrize(("threshold", "first_calls"), [(None, True), (0.3, True),
                                                        (0.5, False)])
def test_transformers_engine_withholds_a_call_below_the_threshold_at_the_first_token_only(
        tiny_model_dir: Path, monkeypatch, prefix_cache: bool, threshold: float | None,
        first_calls: bool):
    engine = TransformersEngine(tiny_model_dir, EngineConfig(
        max_new_tokens=3, batch_size=2, prefix_cache=prefix_cache, call_threshold=threshold))
    call_id = engine.tokenizer.convert_tokens_to_ids(CALL_START)
    forward = engine.model.forward

    def call_at_40_percent(*args, **kwargs):  # the argmax everywhere, yet below one half
        out = forward(*args, **kwargs)
        out.logits = _logits_with_call_share(out.logits, call_id, 0.4)
        return out

    monkeypatch.setattr(engine.model, "forward", call_at_40_percent)
    requests = [Request(build_prompt("Call a tool.", [WEATHER], q), [WEATHER])
                for q in ("Weather in Oslo?", "Hi")]
    for generation in engine.generate(requests):
        assert generation.text.startswith(CALL_START) is first_calls
        assert CALL_START in generation.text  # later positions untouched


@pytest.mark.parametrize(("threshold", "decides", "first_calls"), [
    (0.5, True, False), (0.5, False, True), (None, True, True)])
def test_server_transformers_backend_decides_only_where_the_plan_lets_the_model_choose(
        tiny_model_dir: Path, monkeypatch, threshold: float | None, decides: bool,
        first_calls: bool):
    engine = TransformersEngine(tiny_model_dir, EngineConfig(call_threshold=threshold))
    call_id = engine.tokenizer.convert_tokens_to_ids(CALL_START)
    forward = engine.model.forward

    def call_at_40_percent(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits = _logits_with_call_share(out.logits, call_id, 0.4)
        return out

    monkeypatch.setattr(engine.model, "forward", call_at_40_percent)
    backend = TransformersBackend(engine)
    messages = build_prompt("Call a tool.", [WEATHER], "Hi")
    plan = Plan(messages=messages, tools=[WEATHER], mask="none", allowed=[WEATHER],
                grammar=None, max_calls=None, max_tokens=2, call_decision=decides)
    tokens = backend.tokens(plan, backend.prompt_ids(messages))
    assert (next(tokens) == call_id) is first_calls
    assert next(tokens) == call_id  # the second position is left alone


def test_llama_cpp_decision_processor_acts_at_the_first_position_only():
    from toolmodal.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine.__new__(LlamaCppEngine)  # no GGUF: the processor alone
    engine.llm = SimpleNamespace(tokenize=lambda text, add_bos, special: [2])
    engine.config = EngineConfig(call_threshold=0.5)
    decide = engine.decision_processor(prompt_length=4)
    scores = np.log(np.array([0.25, 0.35, 0.4], dtype=np.float32))  # call (id 2) at 40%
    first = decide(np.arange(4), scores.copy())
    assert first[2] == -np.inf and np.argmax(first) == 1
    assert np.array_equal(decide(np.arange(5), scores.copy()), scores)  # later: untouched
    engine.config = EngineConfig(call_threshold=0.39)
    assert np.argmax(engine.decision_processor(4)(np.arange(4), scores.copy())) == 2


def test_the_threshold_is_a_probability():
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="call_threshold"):
            EngineConfig(call_threshold=bad)


def test_transformers_probe_reads_the_call_share_at_the_first_position(tiny_model_dir: Path,
                                                                        monkeypatch):
    engine = TransformersEngine(tiny_model_dir, EngineConfig())
    call_id = engine.tokenizer.convert_tokens_to_ids(CALL_START)
    forward = engine.model.forward
    share = {"value": 0.4}

    def with_share(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits = _logits_with_call_share(out.logits, call_id, share["value"])
        return out

    monkeypatch.setattr(engine.model, "forward", with_share)
    requests = [Request(build_prompt("Call a tool.", [WEATHER], q), [WEATHER])
                for q in ("weather in Oslo?", "and in Rome?")]
    probes = engine.first_token_calls(requests)
    assert [p for p, _ in probes] == pytest.approx([0.4, 0.4], rel=1e-4)
    assert [g for _, g in probes] == [True, True]  # the argmax, yet below one half
    share["value"] = 1e-4
    probes = engine.first_token_calls(requests)
    assert [p for p, _ in probes] == pytest.approx([1e-4, 1e-4], rel=1e-3)
    assert [g for _, g in probes] == [False, False]
