"""Loading the model to train, by device: unsloth on CUDA, plain transformers on the CPU.

Both paths return a causal LM (optionally wrapped with LoRA) plus its tokenizer, which
`toolmodal.training.sft` trains the same way. The unsloth path cannot run on this machine (no
CUDA, and unsloth pulls a CUDA torch: `gpu` extra only), so it is kept to the calls unsloth
documents and is imported only there. With LoRA, the new tool-token embedding rows can train
through peft's `trainable_token_indices`; with `trainable: embeddings_frozen` the tied
embedding/output matrix is frozen but its tool-token rows train (`toolmodal.training.trainable`).
`save_model` merges adapters and tool rows before saving.
Deliberately left out: quantised (4-bit) loading; multi-GPU is `launch` (accelerate launch of the
same command), not a loading concern.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.training.trainable import freeze_embeddings_except, has_tool_rows, merge_tool_rows

log = logging.getLogger(__name__)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# The tokens the two decisions of an answer are written with, besides the call token: stopping
# (the chat's end of turn, after a call or a no-call answer) and declining (every no-call answer
# opens with "No", data/requests/no_call_answers.yaml). With the embedding frozen, only the
# tool-token rows move; a frozen end-of-turn row then has to climb from the base model's
# log-odds (about -25 nats against a second call after a call) through the body alone.
END_OF_TURN = "<end_of_turn>"
DECLINE_OPENER = "No"


def load_for_training(model_dir: Path, config: SFTStageConfig | GRPOStageConfig):
    """(model, tokenizer) ready to train (`config.trainable`: full, embeddings_frozen or lora),
    on CUDA (unsloth) if available.

    Raises:
        FileNotFoundError: If `model_dir` has no config.json.
    """
    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model folder (no config.json)")
    if torch.cuda.is_available():
        return _load_unsloth(Path(model_dir), config)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if config.trainable == "lora":
        model = get_peft_model(model, lora_config(config, tool_token_ids(tokenizer)))
    if config.trainable == "embeddings_frozen":
        freeze_embeddings_except(model, trained_row_ids(tokenizer, config))
    return model, tokenizer


def trained_row_ids(tokenizer, config: SFTStageConfig | GRPOStageConfig) -> list[int]:
    """The embedding rows `embeddings_frozen` trains: the tool tokens, and with
    `train_decision_rows` the `decision_token_ids`."""
    ids = tool_token_ids(tokenizer)
    return ids + decision_token_ids(tokenizer) if config.train_decision_rows else ids


def decision_token_ids(tokenizer) -> list[int]:
    """Ids of END_OF_TURN and of the first token the tokenizer writes DECLINE_OPENER with.

    Raises:
        ValueError: If the tokenizer has no END_OF_TURN token.
    """
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if end is None or end == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer {tokenizer.name_or_path} has no {END_OF_TURN} token")
    return [end, tokenizer.convert_tokens_to_ids(tokenizer.tokenize(DECLINE_OPENER)[0])]


def tool_token_ids(tokenizer) -> list[int]:
    """Ids of the project's tool tokens; raises if the tokenizer lacks one."""
    from toolmodal.tool_tokens import TOOL_TOKENS

    ids = tokenizer.convert_tokens_to_ids(TOOL_TOKENS)
    missing = [t for t, i in zip(TOOL_TOKENS, ids, strict=True) if i == tokenizer.unk_token_id]
    if missing:
        raise ValueError(f"tokenizer lacks tool tokens {missing[:5]}: prepare the model first")
    return ids


def lora_config(config: SFTStageConfig | GRPOStageConfig, token_ids: list[int]) -> LoraConfig:
    """LoRA on the attention and MLP projections, plus the tool-token embedding rows if set."""
    return LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=LORA_TARGETS, task_type="CAUSAL_LM",
        trainable_token_indices={"embed_tokens": token_ids}
        if config.train_tool_token_rows_only else None)


def _load_unsloth(model_dir: Path, config: SFTStageConfig | GRPOStageConfig):
    from unsloth import FastLanguageModel  # CUDA only (gpu extra)

    # One GPU per process under `accelerate launch` (unsloth's DDP guide); rank 0 alone.
    device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(model_dir), max_seq_length=unsloth_max_seq_length(config),
        load_in_4bit=False, full_finetuning=config.trainable != "lora", device_map=device_map)
    if config.trainable == "embeddings_frozen":
        freeze_embeddings_except(model, trained_row_ids(tokenizer, config))
    if config.trainable == "lora":
        model = FastLanguageModel.get_peft_model(
            model, r=config.lora_r, lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout, target_modules=LORA_TARGETS,
            use_gradient_checkpointing="unsloth", random_state=config.seed)
    return model, tokenizer


def unsloth_max_seq_length(config: SFTStageConfig | GRPOStageConfig) -> int:
    """Sequence budget unsloth sizes its kernels for."""
    if isinstance(config, SFTStageConfig):
        return config.max_length
    return 2048 + config.max_completion_length


def save_model(model, tokenizer, out: Path) -> Path:
    """Save a plain HF folder (LoRA merged) with the tokenizer; returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    if has_tool_rows(model):
        merge_tool_rows(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
