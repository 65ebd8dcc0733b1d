"""The merged HF folder every other export format is made from.

A plain model folder is re-saved as fp32 safetensors with its tokenizer; a PEFT adapter folder
(one holding `adapter_config.json`) is loaded onto the base model it names and merged first. The
result is checked to carry what inference needs: the chat template, `<end_of_turn>` as EOS, and
every tool token as one id inside the embedding matrix.

Deliberately left out: GGUF conversion and quantization (`toolmodal.export.gguf`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from toolmodal.chat import END_OF_TURN
from toolmodal.tool_tokens import TOOL_TOKENS

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


class ExportError(RuntimeError):
    """An exported artifact lacks something inference needs; the message names file and item."""


def load_merged(model_dir: Path) -> PreTrainedModel:
    """Load an HF model folder, or a PEFT adapter folder merged into its base, in fp32."""
    if (model_dir / ADAPTER_CONFIG).is_file():
        from peft import AutoPeftModelForCausalLM

        log.info("merging the adapter in %s into its base model", model_dir)
        peft_model = AutoPeftModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        return peft_model.merge_and_unload()
    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)


def check_hf_folder(tokenizer, model: PreTrainedModel, source: Path) -> None:
    """Raise ExportError unless the tokenizer and model are ready for tool calling.

    Args:
        tokenizer: The tokenizer to be saved.
        model: The (merged) model to be saved.
        source: The folder they came from (named in errors).
    """
    if not tokenizer.chat_template:
        raise ExportError(f"{source}: tokenizer has no chat template")
    if tokenizer.eos_token != END_OF_TURN:
        raise ExportError(f"{source}: eos_token is {tokenizer.eos_token!r}, not {END_OF_TURN!r}")
    rows = model.get_input_embeddings().weight.shape[0]
    for token in TOOL_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise ExportError(f"{source}: tool token {token!r} is not a single token: {ids}")
        if ids[0] >= rows:
            raise ExportError(f"{source}: tool token {token!r} has id {ids[0]} but the "
                              f"embedding matrix has only {rows} rows")


def merge_to_hf(model_dir: Path, out: Path) -> Path:
    """Write the merged fp32 HF folder (safetensors, tokenizer, chat template) to `out`.

    Args:
        model_dir: HF model folder or PEFT adapter folder (its tokenizer is used either way).
        out: Folder to write; replaced if it exists.

    Returns:
        `out`.
    """
    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_merged(model_dir).eval()
    check_hf_folder(tokenizer, model, model_dir)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return out
