"""Export a trained model: merged HF folder, GGUF f16, Q8_0 and Q4_K_M for llama.cpp.

`export_model(model, out, config)` writes, under `out`:

- `merged/`: an fp32 HF folder (safetensors, tokenizer with the tool tokens, chat template);
  a PEFT adapter folder (one holding `adapter_config.json`) is merged into its base first;
- `model-f16.gguf`: llama.cpp's own HF->GGUF converter run on `merged/`;
- `model-q8_0.gguf`, `model-q4_k_m.gguf`: llama.cpp's quantizer run on the f16 file;
- `model-q4_k_m.lora.gguf` (with Q4_K_M, unless `correction_rank` is 0): a LoRA adapter for
  llama.cpp holding the low-rank correction of Q4_K_M towards the f16 file
  (`toolmodal.export.residual`: without it, a fine-tune smaller than the base's Q4 grid is
  rounded away). Run Q4_K_M with it: `EngineConfig(lora=...)`.

Each GGUF file is checked before it counts as written: every tool token is one vocabulary entry
of a non-normal type (control or user-defined, so llama.cpp never splits it), the chat template
is embedded, and, when llama-cpp-python is installed, llama.cpp itself loads the vocabulary and
tokenizes each tool token to that single id.

Toolchain: the converter is not a package of its own; it ships inside the llama-cpp-python
source distribution, which `toolmodal.export.gguf` fetches with pip at the pinned version and
unpacks into a cache folder once. Quantizing and loading need llama-cpp-python itself (the
`export` extra; built from source, ~40 min on 2 cores, then cached by pip as a wheel).

On a CUDA machine with the `gpu` extra, `awq-int4` and `gptq-int4` also write `awq-int4/` and
`gptq-int4/`: W4A16 compressed-tensors folders for vLLM, calibrated on training rows
(`toolmodal.export.gpu_quant`). Selecting them anywhere else raises before any work is done.

Deliberately left out: evaluation of the exported files (`toolmodal.evaluate` with the
`llamacpp` engine) and the benchmark table (`bench/export.py`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Literal

from datasets import DatasetDict
from pydantic import BaseModel, ConfigDict, Field

from toolmodal.export.gguf import check_gguf, convert_to_gguf, quantize_gguf
from toolmodal.export.gpu_quant import GPU_FORMATS, check_gpu_formats, write_gpu_formats
from toolmodal.export.merge import merge_to_hf
from toolmodal.export.residual import adapter_name, write_residual_adapter

log = logging.getLogger(__name__)

ExportFormat = Literal["merged", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m", "awq-int4", "gptq-int4"]
# The default selection (CPU); the GPU-only formats are opt-in.
ALL_FORMATS: tuple[str, ...] = ("merged", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m")
QUANTIZED: dict[str, str] = {"gguf-q8_0": "q8_0", "gguf-q4_k_m": "q4_k_m"}
CORRECTION = "gguf-q4_k_m-lora"  # key of the Q4_K_M correction adapter in the result


class ExportConfig(BaseModel):
    """Settings of the export stage.

    Attributes:
        formats: What to write; the GGUF formats always pass through a merged folder (kept
            only when "merged" is listed) and the quantized ones through the f16 file.
        tokenizer_pre: llama.cpp pre-tokenizer name to write instead of the one the converter
            detects by hashing the tokenizer's output; None detects it (the real Gemma 3
            tokenizer is detected). Needed only for vocabularies llama.cpp does not know,
            like the reduced tokenizer of the test fixture ("gemma4" for Gemma's).
        threads: Threads for quantizing.
        correction_rank: Rank of the Q4_K_M correction adapter (0: write none).
        cache_dir: Where the llama.cpp converter is unpacked (None: ~/.cache/toolmodal).
        calibration_split: Dataset split whose rows calibrate `awq-int4` / `gptq-int4`.
        calibration_rows: How many rows of it (fewer when the split is smaller).
        calibration_max_length: Tokens kept of each calibration conversation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    formats: list[ExportFormat] = Field(default_factory=lambda: list(ALL_FORMATS))
    tokenizer_pre: str | None = None
    threads: int = 2
    correction_rank: int = Field(default=64, ge=0)
    cache_dir: Path | None = None
    calibration_split: str = "joint_train"
    calibration_rows: int = Field(default=128, ge=1)
    calibration_max_length: int = Field(default=1024, ge=1)


def gguf_name(fmt: str) -> str:
    """File name of a GGUF format, e.g. "gguf-q4_k_m" -> "model-q4_k_m.gguf"."""
    return f"model-{fmt.removeprefix('gguf-')}.gguf"


def export_model(model: Path, out: Path, config: ExportConfig,
                 calibration: DatasetDict | None = None) -> dict[str, Path]:
    """Write the requested formats of `model` under `out`.

    Args:
        model: HF model folder, or a PEFT adapter folder whose base it names.
        out: Output folder (created; existing files of the same names are replaced).
        config: Which formats and how.
        calibration: The training dataset; needed only by the GPU formats.

    Returns:
        Format -> written path, in the order of `ALL_FORMATS` then `GPU_FORMATS`; the Q4_K_M
        correction adapter (if written) comes right after Q4_K_M, keyed `CORRECTION`.

    Raises:
        GPUQuantError: A GPU format was selected without CUDA, llm-compressor or calibration
            rows; raised before anything is written.
    """
    check_gpu_formats(config.formats, calibration, config.calibration_split)
    out.mkdir(parents=True, exist_ok=True)
    formats = set(config.formats)
    written: dict[str, Path] = {}
    merged = merge_to_hf(model, out / "merged")
    if "merged" in formats:
        written["merged"] = merged
    if formats & {"gguf-f16", *QUANTIZED}:
        f16 = convert_to_gguf(merged, out / gguf_name("gguf-f16"), config.tokenizer_pre,
                              config.cache_dir)
        check_gguf(f16)
        written["gguf-f16"] = f16
        for fmt, qtype in QUANTIZED.items():
            if fmt in formats:
                written[fmt] = quantize_gguf(f16, out / gguf_name(fmt), qtype, config.threads)
                check_gguf(written[fmt])
        if "gguf-q4_k_m" in written and config.correction_rank:
            q4 = written["gguf-q4_k_m"]
            written[CORRECTION] = write_residual_adapter(f16, q4, out / adapter_name(q4),
                                                         config.correction_rank)
        if "gguf-f16" not in formats:
            written.pop("gguf-f16").unlink()
    written |= write_gpu_formats(merged, out, config.formats, calibration,
                                 config.calibration_split, config.calibration_rows,
                                 config.calibration_max_length)
    if "merged" not in formats:
        shutil.rmtree(merged)
    order = (*ALL_FORMATS, CORRECTION, *GPU_FORMATS)
    return {fmt: written[fmt] for fmt in order if fmt in written}


def written_names(config: ExportConfig) -> list[str]:
    """What `export_model` writes with `config`, as names inside its output folder."""
    names = [fmt if fmt == "merged" or fmt in GPU_FORMATS else gguf_name(fmt)
             for fmt in config.formats]
    if "gguf-q4_k_m" in config.formats and config.correction_rank:
        names.append(adapter_name(Path(gguf_name("gguf-q4_k_m"))))
    return names


def check_deployed(config: ExportConfig, model_file: str | None, lora_file: str | None) -> None:
    """Raise ValueError unless the export writes the deployed file and its adapter.

    `model_file` / `lora_file` are the full pipeline's `exported_file` / `exported_lora` (None:
    not used); checked before a run starts, not when the evaluation after training looks.
    """
    names = written_names(config)
    for key, name in (("exported_file", model_file), ("exported_lora", lora_file)):
        if name is not None and name not in names:
            raise ValueError(f"{key} {name!r} is not written by the export step: export.formats "
                             f"{list(config.formats)} write {names}; add its format or "
                             f"deploy one of those")
