"""Smoke tests of the training stages on the tiny fixture model: a few real steps each.

Each asserts the loss was logged and trainable parameters changed; resume is checked by stopping
after a checkpoint and rerunning into the same folder. The dataset is built by hand following
the data contract (prompt/completion chat columns, tools and expected_calls as JSON).
"""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.cli import main
from toolmodal.schema import Param, Tool
from toolmodal.scoring import completion_text
from toolmodal.training import grpo
from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.training.grpo import tied_groups
from toolmodal.training.masks import DECISION, IGNORE, EncodedExample
from toolmodal.training.metrics import MetricsLogger, read_metrics
from toolmodal.training.run import run_stage, stage_splits
from toolmodal.training.sft import (
    _CurvePoints,
    _plan,
    collate,
    encode_rows,
    supervised_loss,
    train_sft,
)

pytestmark = pytest.mark.smoke

TOOLS = [Tool(name="get_weather", description="Weather", category="weather",
              parameters=(Param(name="city", type="string", required=True),)),
         Tool(name="add", description="Add numbers", category="math",
              parameters=(Param(name="a", type="number", required=True),
                          Param(name="b", type="number", required=True)))]
CALLS = [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("add", {"a": 1, "b": 2}),
         ToolCall("get_weather", {"city": "Rome"}), ToolCall("add", {"a": 5, "b": 7})]


def _row(i: int, phase: str) -> dict:
    call = CALLS[i % len(CALLS)]
    return {
        "id": f"{phase}-{i}", "phase": phase, "kind": "single",
        "prompt": build_prompt("Call a tool.", TOOLS, f"Request {i}: {call.name}?"),
        "completion": [{"role": "assistant", "content": format_output([call])}],
        "tools": json.dumps([t.model_dump(mode="json") for t in TOOLS]),
        "expected_calls": json.dumps([{"name": call.name, "arguments": call.arguments}]),
        "difficulty": 1, "n_tools": 2, "category": "mixed", "prompt_variant": "plain",
    }


@pytest.fixture(scope="module")
def data() -> DatasetDict:
    splits = {}
    for phase in ("selection", "arguments", "joint"):
        splits[f"{phase}_train"] = Dataset.from_list([_row(i, phase) for i in range(8)])
        splits[f"{phase}_validation"] = Dataset.from_list([_row(i, phase) for i in range(2)])
    return DatasetDict(splits)


def _weights(path) -> dict[str, torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _changed(before: dict, after: dict) -> list[str]:
    return [k for k in before if not torch.equal(before[k], after[k])]


def test_loss_equals_full_logits_loss(tiny_model_dir, data):
    """Logits at supervised positions only give the same loss as HF's full-logit loss."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    examples, _ = encode_rows(tokenizer, data["joint_train"].select(range(3)), 512)
    batch = collate(examples, tokenizer.pad_token_id)
    parts = supervised_loss(model, batch)
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 labels=batch["labels"]).loss
    assert parts.tokens == int((batch["labels"][:, 1:] != IGNORE).sum())
    torch.testing.assert_close(parts.weighted / parts.weight, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(parts.plain / parts.tokens, float(full.detach()), rtol=1e-5,
                               atol=1e-5)


def test_decision_weight_reweights_only_decision_tokens(tiny_model_dir, data):
    """decision_weight w adds (w - 1) per decision token to the weight and (w - 1) times their
    cross-entropy to the weighted sum; the plain NLL is unchanged."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    examples, _ = encode_rows(tokenizer, data["joint_train"].select(range(3)), 512)
    batch = collate(examples, tokenizer.pad_token_id)
    decisions = int((batch["target_kinds"] == DECISION).sum())
    assert decisions >= 3  # each row's first token and the token after each call
    with torch.no_grad():
        base, heavy = supervised_loss(model, batch), supervised_loss(model, batch, 0.5, 0.5, 4.0)
    assert heavy.plain == pytest.approx(base.plain) and heavy.tokens == base.tokens
    assert heavy.weight == pytest.approx(base.weight + 3.0 * decisions)
    assert float(heavy.weighted) > float(base.weighted)


def test_one_epoch_of_first_fit_batches_trains_every_row_once():
    groups = ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2  # batches of 4 hold 3 or 2 + 2
    examples = [EncodedExample([1, 2], [IGNORE, 2], [0, 1], group=g) for g in groups]
    config = SFTStageConfig(stage="sft_joint", per_device_train_batch_size=4,
                            num_train_epochs=1.0)
    plan = _plan(examples, config)
    assert sorted(i for batch in plan for i in batch) == list(range(len(groups)))
    assert len(plan) == 4  # not ceil(11 / 4) = 3, which would leave a group untrained


def test_curve_counts_the_rows_the_steps_trained(tmp_path):
    # first-fit batches may hold fewer rows than the batch size: the curve counts real rows
    config = SFTStageConfig(stage="sft_joint", per_device_train_batch_size=2,
                            gradient_accumulation_steps=2, curve_every_steps=1)
    plan = [[0, 1], [2], [3, 4], [5], [6, 7], [8, 9]]
    points = _CurvePoints(None, [], 0, config, MetricsLogger(tmp_path / "m.jsonl"), True, plan)
    assert points.seen == [0, 3, 6, 10]


@pytest.mark.parametrize("stage", ["sft_selection", "sft_arguments", "sft_joint"])
def test_sft_stage_trains(tiny_model_dir, data, tmp_path, stage):
    config = SFTStageConfig(stage=stage, max_steps=3, per_device_train_batch_size=2,
                            save_steps=2, learning_rate=1e-3)
    summary = run_stage(tiny_model_dir, data, config, tmp_path / stage)
    metrics = read_metrics(tmp_path / stage / "metrics.jsonl")
    steps = [m for m in metrics if "loss" in m]
    losses = [m["loss"] for m in steps]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert {"learning_rate", "grad_norm", "supervised_tokens_per_second", "nll"} <= set(steps[0])
    assert "eval_loss" in metrics[-1] and summary["global_step"] == 3
    assert losses[-1] < losses[0] and steps[-1]["nll"] < steps[0]["nll"]
    curve = json.loads((tmp_path / stage / "learning_curve.json").read_text())["points"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples, _ = encode_rows(tokenizer, stage_splits(data, stage)[0], config.max_length)
    trained = sum(map(len, _plan(examples, config)[:3]))  # first-fit batches: 2 rows or fewer
    assert [p["step"] for p in curve] == [0, 3] and curve[-1]["examples_seen"] == trained
    assert (tmp_path / stage / "learning_curve.png").stat().st_size > 1000
    assert _changed(_weights(tiny_model_dir), _weights(tmp_path / stage))
    assert run_stage(tiny_model_dir, data, config, tmp_path / stage) == {"already_done": True}


def test_resume_after_kill(tiny_model_dir, data, tmp_path):
    """A run stopped right after its step-2 checkpoint resumes at step 2 and ends identically."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples, _ = encode_rows(tokenizer, data["joint_train"], 512)
    config = SFTStageConfig(stage="sft_joint", max_steps=4, per_device_train_batch_size=2,
                            save_steps=2, learning_rate=1e-3)

    def run(out, stop_after=None):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        logger = MetricsLogger(out / "metrics.jsonl")
        return model, train_sft(model, tokenizer, examples, config, out, logger,
                                stop_after=stop_after)

    _, killed = run(tmp_path / "a", stop_after=2)
    assert killed["global_step"] == 2 and (tmp_path / "a/checkpoints/checkpoint-2").is_dir()
    resumed_model, resumed = run(tmp_path / "a")
    assert resumed["resumed_from"] == 2 and resumed["global_step"] == 4
    assert [m["step"] for m in read_metrics(tmp_path / "a/metrics.jsonl")] == [1, 2, 3, 4]
    straight_model, straight = run(tmp_path / "b")
    assert straight["resumed_from"] == 0
    for (name, p), (_, q) in zip(resumed_model.named_parameters(),
                                 straight_model.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)


def test_lora_trains_only_tool_token_rows(tiny_model_dir, data, tmp_path):
    config = SFTStageConfig(stage="sft_selection", max_steps=2, per_device_train_batch_size=2,
                            trainable="lora", lora_r=8, learning_rate=1e-2)
    run_stage(tiny_model_dir, data, config, tmp_path / "lora")
    before, after = _weights(tiny_model_dir), _weights(tmp_path / "lora")
    assert set(before) == set(after)  # merged: a plain model folder
    emb = "model.embed_tokens.weight"
    rows = (before[emb] != after[emb]).any(dim=1).nonzero().flatten().tolist()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    from toolmodal.training.backend import tool_token_ids

    assert rows and set(rows) <= set(tool_token_ids(tokenizer))
    assert any("proj" in k for k in _changed(before, after))


def _length_reward(completions, **_) -> list[float]:
    """Varies within a group even for a random model, so the smoke run has a gradient."""
    return [len(completion_text(c)) / 100 for c in completions]


def test_tied_groups_flags_whole_groups():
    advantages = torch.tensor([0.0, 0.0, 0.7, -0.7, 0.0, 1e-9])
    assert tied_groups(advantages, 2).tolist() == [True, True, False, False, True, True]


@pytest.mark.parametrize(("mode", "trainable", "rewards"), [
    ("weighted", "full", ("rewards/tool_selection_reward/mean",
                          "rewards/no_hallucination_reward/mean")),
    ("call", "embeddings_frozen", ("rewards/call_reward/mean",)),
])
def test_grpo_stage_trains(tiny_model_dir, data, tmp_path, monkeypatch, mode, trainable, rewards):
    # A random model's rewards all tie (no signal); add a varying reward to the real scorers.
    table = {"weighted": "WEIGHTED_REWARDS", "call": "CALL_REWARDS"}[mode]
    monkeypatch.setattr(grpo, table, [*getattr(grpo, table), (_length_reward, 1.0)])
    config = GRPOStageConfig(max_steps=2, per_device_train_batch_size=2, num_generations=2,
                             max_completion_length=8, learning_rate=1e-3, save_steps=1,
                             reward_mode=mode, trainable=trainable)
    assert config.prompts_per_step == 2  # 2 completions x 2 accumulation steps / 2 generations
    summary = run_stage(tiny_model_dir, data, config, tmp_path / "grpo")
    metrics = read_metrics(tmp_path / "grpo/metrics.jsonl")
    logged = [m for m in metrics if "loss" in m]
    assert len(logged) == 2 and summary["global_step"] == 2
    for key in ("reward", "frac_reward_zero_std", "tied_groups/dropped_share",
                "tied_groups/resampled", *rewards):
        assert key in logged[0], key
    assert _changed(_weights(tiny_model_dir), _weights(tmp_path / "grpo"))


def test_train_command(tiny_model_dir, data, tmp_path):
    data.save_to_disk(tmp_path / "data")
    (tmp_path / "c.yaml").write_text("max_steps: 1\nper_device_train_batch_size: 2\n")
    assert main(["train", "--stage", "sft_arguments", "--model", str(tiny_model_dir),
                 "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                 "--config", str(tmp_path / "c.yaml")]) == 0
    assert (tmp_path / "out/config.json").is_file()


def test_run_tracked_stage_returns_curves_and_clears_checkpoints(tiny_model_dir, data, tmp_path):
    from toolmodal.training.tracked import run_tracked_stage

    config = SFTStageConfig(stage="sft_selection", max_steps=2, per_device_train_batch_size=2,
                            save_steps=1, learning_rate=1e-3)
    summary, logged_steps, curves = run_tracked_stage(tiny_model_dir, data, config, tmp_path / "s")
    assert summary["global_step"] == 2 and logged_steps >= 2
    assert "sft_selection training curves" in curves
    assert not (tmp_path / "s" / "checkpoints").exists()
