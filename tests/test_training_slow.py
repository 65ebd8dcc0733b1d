"""Slow: one real optimizer step of our SFT loop on the prepared 270M model (opt in: -m slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.schema import Param, Tool
from toolmodal.training.config import SFTStageConfig
from toolmodal.training.metrics import MetricsLogger, read_metrics
from toolmodal.training.sft import encode_rows, train_sft

pytestmark = pytest.mark.slow
MODEL = Path(__file__).resolve().parent.parent / ".cache" / "models" / "gemma3-270m-toolmodal"
TOOL = Tool(name="get_weather", description="Weather in a city",
            parameters=(Param(name="city", type="string", required=True),))


def test_one_step_on_270m(tmp_path):
    if not (MODEL / "config.json").is_file():
        pytest.skip(f"prepared model not found at {MODEL}")
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    rows = Dataset.from_list([
        {"prompt": build_prompt("Call a tool.", [TOOL], f"Weather in {city}?"),
         "completion": [{"role": "assistant",
                         "content": format_output([ToolCall("get_weather", {"city": city})])}]}
        for city in ("Oslo", "Rome")])
    examples, _ = encode_rows(tokenizer, rows, 1024)
    before = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    config = SFTStageConfig(stage="sft_selection", max_steps=1, per_device_train_batch_size=2)
    train_sft(model, tokenizer, examples, config, tmp_path, MetricsLogger(tmp_path / "m.jsonl"))
    assert read_metrics(tmp_path / "m.jsonl")[0]["loss"] > 0
    assert not torch.equal(before, model.model.layers[0].mlp.up_proj.weight)
