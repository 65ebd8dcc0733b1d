"""AWQ / GPTQ int4 folders for vLLM, made with llm-compressor on a CUDA GPU.

Two export formats, both 4-bit weights with 16-bit activations (W4A16, groups of 128) written
in the `compressed-tensors` format that vLLM loads as is (`vllm serve DIR`):

- `awq-int4`: llm-compressor's `AWQModifier` (activation-aware scales, Gemma 3 mappings built
  in) followed by `QuantizationModifier` with the `W4A16_ASYM` preset;
- `gptq-int4`: llm-compressor's `GPTQModifier` with the `W4A16` preset.

Both start from the merged HF folder and calibrate on chat-formatted rows of the training data
(prompt plus completion, rendered with the model's own chat template, so the tool schemas and
tool calls the model will see are what the scales are fitted to). `lm_head` (tied to the
embeddings) stays unquantised. The tokenizer files are copied from the merged folder unchanged,
so the tool tokens stay single tokens; the written folder is checked for that.

Requirements are checked before any export work starts (`check_gpu_formats`): a CUDA device,
the `llmcompressor` package (installed by hand: docs/gpu-stack.md) and calibration rows. A
selected format is never skipped silently.

Deliberately left out: running any of this here (no GPU on the development machine), other
schemes (FP8, NVFP4, W8A8), and evaluating the folders (`toolmodal evaluate --engine vllm`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from toolmodal.export.merge import ExportError
from toolmodal.tool_tokens import TOOL_TOKENS

log = logging.getLogger(__name__)

GPU_FORMATS: tuple[str, ...] = ("awq-int4", "gptq-int4")
LIBRARY = "llmcompressor"
# Files of the merged folder that hold weights or the model config: llm-compressor writes its
# own; everything else (tokenizer, chat template, generation config) is copied unchanged.
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json")


class GPUQuantError(RuntimeError):
    """A GPU export format was selected on a machine or with inputs that cannot make it."""


def missing_requirements(calibration: DatasetDict | None, split: str) -> list[str]:
    """What this machine and these inputs lack for the GPU formats (empty: nothing).

    Args:
        calibration: The dataset whose `split` holds the calibration rows, or None.
        split: Name of the split to calibrate on.
    """
    missing = []
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU (torch.cuda.is_available() is False on this machine)")
    if importlib.util.find_spec(LIBRARY) is None:
        missing.append(f"the {LIBRARY} package (pip install llmcompressor==0.14.0.1 "
                       "transformers==5.17.0 in the export environment: docs/gpu-stack.md)")
    if calibration is None:
        missing.append("calibration rows (pass the training dataset, CLI: --calibration-data DIR)")
    elif split not in calibration:
        missing.append(f"the calibration split {split!r} in the dataset (it has "
                       f"{sorted(calibration)})")
    return missing


def check_gpu_formats(formats: list[str], calibration: DatasetDict | None, split: str) -> None:
    """Raise GPUQuantError naming each selected GPU format and everything it lacks.

    Called before any export work, so a failing selection writes and deletes nothing.

    Args:
        formats: The selected export formats (non-GPU ones are ignored here).
        calibration: The dataset that holds the calibration split, or None.
        split: Name of the calibration split.
    """
    selected = [fmt for fmt in formats if fmt in GPU_FORMATS]
    if not selected:
        return
    missing = missing_requirements(calibration, split)
    if missing:
        raise GPUQuantError(f"export format(s) {', '.join(selected)} need "
                            f"{'; '.join(missing)}. Nothing was exported; drop "
                            f"{', '.join(selected)} from --formats to export the others.")


def calibration_texts(rows: Dataset, tokenizer, count: int) -> list[str]:
    """Chat-formatted calibration texts: prompt + completion of `count` rows, as the model sees
    them in training.

    Args:
        rows: Dataset rows with `prompt` and `completion` message lists (the dataset contract).
        tokenizer: Tokenizer whose chat template renders the conversation.
        count: How many rows to take; fewer when the split is smaller.

    Returns:
        One rendered conversation per row, from a fixed-seed shuffle (the data is generated in
        runs of one tool category; a shuffle spreads the sample over all of them).
    """
    if len(rows) == 0:
        raise GPUQuantError("the calibration split has no rows")
    picked = rows.shuffle(seed=0).select(range(min(count, len(rows))))
    return [tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
            for row in picked]


def recipe(fmt: str) -> list:
    """llm-compressor modifiers of one GPU format (W4A16, `lm_head` left in 16 bits)."""
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier

    if fmt == "awq-int4":
        return [AWQModifier(), QuantizationModifier(targets=["Linear"], scheme="W4A16_ASYM",
                                                    ignore=["lm_head"])]
    if fmt == "gptq-int4":
        return [GPTQModifier(targets=["Linear"], scheme="W4A16", ignore=["lm_head"])]
    raise GPUQuantError(f"unknown GPU export format {fmt!r}; known: {GPU_FORMATS}")


def quantize_for_vllm(merged: Path, out: Path, fmt: str, texts: list[str],
                      max_length: int) -> Path:
    """Quantise the merged HF folder into a compressed-tensors folder vLLM loads.

    Args:
        merged: The merged fp32 HF folder (`toolmodal.export.merge.merge_to_hf`).
        out: Folder to write; replaced if it exists.
        fmt: "awq-int4" or "gptq-int4".
        texts: Chat-formatted calibration texts (`calibration_texts`).
        max_length: Tokens kept of each calibration text.

    Returns:
        `out`.
    """
    from llmcompressor import oneshot

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    # bf16: Gemma's activations overflow fp16; llm-compressor onloads layers to the GPU itself.
    model = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.bfloat16)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: calibrating on %d texts of the training data", fmt, len(texts))
    oneshot(model=model, tokenizer=tokenizer, dataset=Dataset.from_dict({"text": texts}),
            recipe=recipe(fmt), max_seq_length=max_length, num_calibration_samples=len(texts),
            output_dir=str(tmp))
    copy_tokenizer_files(merged, tmp)
    check_vllm_folder(tmp, fmt)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return out


def copy_tokenizer_files(merged: Path, out: Path) -> None:
    """Copy every non-weight file of the merged folder (tokenizer, chat template, generation
    config) over what the quantiser wrote, so the vocabulary is byte-identical."""
    for path in merged.iterdir():
        if path.is_file() and path.name not in MODEL_FILES:
            shutil.copy2(path, out / path.name)


def check_vllm_folder(folder: Path, fmt: str) -> None:
    """Raise ExportError unless `folder` is a compressed-tensors checkpoint whose tokenizer
    keeps every tool token as one id."""
    quant = AutoConfig.from_pretrained(str(folder)).to_dict().get("quantization_config")
    if quant is None or quant["quant_method"] != "compressed-tensors":
        raise ExportError(f"{folder}/config.json ({fmt}): quantization_config is {quant!r}, "
                          "not a compressed-tensors one")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    for token in TOOL_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise ExportError(f"{folder} ({fmt}): tool token {token!r} is not a single token: "
                              f"{ids}")


def write_gpu_formats(merged: Path, out: Path, formats: list[str], calibration: DatasetDict,
                      split: str, rows: int, max_length: int) -> dict[str, Path]:
    """Write each selected GPU format as `out/<format>/` from the merged folder.

    Args:
        merged: The merged HF folder.
        out: The export folder.
        formats: Selected formats (only GPU ones are written here).
        calibration: Dataset holding the calibration split (checked by `check_gpu_formats`).
        split: The calibration split.
        rows: Calibration rows to take.
        max_length: Tokens kept of each calibration text.

    Returns:
        Format -> written folder, for the selected GPU formats.
    """
    selected = [fmt for fmt in GPU_FORMATS if fmt in formats]
    if not selected:
        return {}
    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    texts = calibration_texts(calibration[split], tokenizer, rows)
    return {fmt: quantize_for_vllm(merged, out / fmt, fmt, texts, max_length) for fmt in selected}
