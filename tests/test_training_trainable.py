"""Trainable-parameter modes on the tiny fixture: embeddings_frozen trains only the tool rows of
the tied embedding/output matrix (without a gradient or optimizer state for the rest)."""

from __future__ import annotations

import pytest
import torch
from test_training import _changed, _weights
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.training.backend import load_for_training, save_model, tool_token_ids
from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.training.run import run_stage
from toolmodal.training.sft import trainable_state

pytestmark = pytest.mark.smoke
EMB = "model.embed_tokens.weight"


def test_frozen_matrix_has_no_gradient_and_same_outputs(tiny_model_dir, tmp_path):
    config = SFTStageConfig(stage="sft_selection", trainable="embeddings_frozen")
    model, tokenizer = load_for_training(tiny_model_dir, config)
    trainable = trainable_state(model)
    big = model.lm_head.base.weight
    assert not big.requires_grad and all(p is not big for p in trainable.values())
    n_tools = len(tool_token_ids(tokenizer))
    assert trainable["model.embed_tokens.rows"].shape == (n_tools, big.shape[1])
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.tensor([[2, *tool_token_ids(tokenizer)[:3], 10, 11]])
    torch.testing.assert_close(model(input_ids=ids).logits, plain(input_ids=ids).logits)
    model(input_ids=ids).logits.sum().backward()
    assert big.grad is None and model.lm_head.rows.grad is not None
    save_model(model, tokenizer, tmp_path / "saved")  # unwrapped: a plain folder, tying kept
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "saved", dtype=torch.float32)
    assert saved.lm_head.weight is saved.model.embed_tokens.weight


def test_embeddings_frozen_trains_only_tool_rows(tiny_model_dir, tmp_path):
    from datasets import Dataset, DatasetDict
    from test_training import _row

    data = DatasetDict({"selection_train": Dataset.from_list([_row(i, "s") for i in range(6)]),
                        "selection_validation": Dataset.from_list([_row(0, "s")])})
    config = SFTStageConfig(stage="sft_selection", max_steps=2, per_device_train_batch_size=3,
                            trainable="embeddings_frozen", learning_rate=1e-2)
    run_stage(tiny_model_dir, data, config, tmp_path / "frozen")
    before, after = _weights(tiny_model_dir), _weights(tmp_path / "frozen")
    assert set(before) == set(after)
    rows = (before[EMB] != after[EMB]).any(dim=1).nonzero().flatten().tolist()
    tool_ids = tool_token_ids(AutoTokenizer.from_pretrained(tiny_model_dir))
    assert rows and set(rows) <= set(tool_ids)  # frozen rows unchanged, tool rows trained
    assert any("proj" in k for k in _changed(before, after))


def test_grpo_rejects_lora_with_token_rows():
    with pytest.raises(ValueError, match="train_tool_token_rows_only"):
        GRPOStageConfig(trainable="lora")
    assert GRPOStageConfig(trainable="lora", train_tool_token_rows_only=False)


def test_decision_rows_train_beside_the_tool_rows(tiny_model_dir, tmp_path):
    """`train_decision_rows`: the end-of-turn and "No" rows move too, no other frozen row."""
    from datasets import Dataset, DatasetDict
    from test_training import _row

    from toolmodal.training.backend import decision_token_ids

    data = DatasetDict({"selection_train": Dataset.from_list([_row(i, "s") for i in range(6)]),
                        "selection_validation": Dataset.from_list([_row(0, "s")])})
    config = SFTStageConfig(stage="sft_selection", max_steps=2, per_device_train_batch_size=3,
                            trainable="embeddings_frozen", train_decision_rows=True,
                            learning_rate=1e-2)
    run_stage(tiny_model_dir, data, config, tmp_path / "decision")
    before, after = _weights(tiny_model_dir), _weights(tmp_path / "decision")
    rows = set((before[EMB] != after[EMB]).any(dim=1).nonzero().flatten().tolist())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    decision = set(decision_token_ids(tokenizer))
    assert len(decision) == 2
    assert decision <= rows <= set(tool_token_ids(tokenizer)) | decision


def test_every_no_call_answer_opens_with_the_decline_token(tiny_model_dir):
    """The decline row trained is the first token of every no-call answer of the bundled data."""
    from toolmodal.datagen.irrelevance import load_answers
    from toolmodal.paths import project_path
    from toolmodal.training.backend import DECLINE_OPENER, decision_token_ids

    answers = load_answers(project_path("data/requests/no_call_answers.yaml"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = [a for style in answers.values() if isinstance(style, dict)
             for key in ("unserved", "action") for a in style[key]]
    assert texts and all(t.startswith(DECLINE_OPENER + " ") for t in texts)
    firsts = {tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t)[0]) for t in texts}
    assert firsts == {decision_token_ids(tokenizer)[1]}


def test_decision_rows_need_the_frozen_embedding():
    with pytest.raises(ValueError, match="train_decision_rows needs trainable: embeddings_frozen"):
        SFTStageConfig(stage="sft_joint", trainable="full", train_decision_rows=True)
    assert GRPOStageConfig(trainable="embeddings_frozen", train_decision_rows=True)
