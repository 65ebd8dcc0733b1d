"""Low-rank correction of a quantized GGUF file, written as a llama.cpp LoRA adapter.

Why: the default base model ships as a Q4_K_M GGUF, so the weights of every model fine-tuned
from it start on the Q4_K_M grid. A fine-tune whose weight updates are smaller than half a
quantization step (measured on the cpu budgets: max |dW| ~4e-4) is rounded straight back onto
the base's grid when re-quantized to Q4_K_M: the file answers like the untrained base model.

What: for every quantized matrix of the transformer blocks, the residual
`R = W_reference - dequantize(W_quantized)` (reference: the f16 GGUF of the same model) is
approximated by its best rank-r factorization (truncated SVD, `R ~ B @ A`), and the factors are
written as a GGUF LoRA adapter (`general.type = adapter`, alpha 0, which llama.cpp reads as
scale 1 whatever each matrix's rank, so it applies `W x + B (A x)`). The adapter restores the
part of the fine-tune (and of the quantization error) the quantized file lost, at
rank x (in + out) f16 values per matrix (~30 MB at rank 64 for the 270M model). Load it with
the quantized file: `Llama(model_path=..., lora_path=...)`, or `toolmodal.engines.llamacpp`
with `EngineConfig.lora`.

Deliberately left out: the token embedding (tied to the output layer). Q4_K_M keeps it at Q8_0
for this model (its 640-wide rows are not a multiple of the K-quant block), fine enough to keep
the fine-tune; a rank-r correction of a 262k-row table would cost more than it restores.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, ReaderTensor
from gguf.quants import dequantize

from toolmodal.export.merge import ExportError

log = logging.getLogger(__name__)

_FLOAT_TYPES = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16}


def adapter_name(quantized: Path) -> str:
    """File name of the correction of a quantized file: model-q4_k_m.gguf -> ...lora.gguf."""
    return f"{quantized.stem}.lora.gguf"


def _corrected(tensor: ReaderTensor) -> bool:
    """Whether a tensor gets a correction: a quantized matrix of a transformer block."""
    return (tensor.name.startswith("blk.") and len(tensor.shape) == 2
            and tensor.tensor_type not in _FLOAT_TYPES)


def low_rank(residual: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Best rank-`rank` factors (A: rank x in, B: out x rank) of `residual` (out x in).

    Returns A, B and the share of the residual's energy (squared Frobenius norm) they keep.
    """
    u, s, vh = torch.linalg.svd(torch.from_numpy(residual), full_matrices=False)
    rank = min(rank, s.numel())
    total = float((s**2).sum())
    kept = float((s[:rank] ** 2).sum()) / total if total > 0 else 1.0
    return vh[:rank].numpy(), (u[:, :rank] * s[:rank]).numpy(), kept


def write_residual_adapter(reference: Path, quantized: Path, out: Path, rank: int) -> Path:
    """Write the rank-`rank` correction of `quantized` towards `reference` as a LoRA GGUF.

    Args:
        reference: The f16 (or f32) GGUF of the same model.
        quantized: The quantized GGUF made from it.
        out: Adapter file to write (replaced atomically if it exists).
        rank: Rank of each matrix's correction (capped at the matrix's smaller side).

    Returns:
        `out`.

    Raises:
        ExportError: The two files do not hold the same tensors, or none is quantized.
    """
    ref = {t.name: t for t in GGUFReader(reference).tensors}
    reader = GGUFReader(quantized)
    arch = reader.fields["general.architecture"].contents()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    writer = GGUFWriter(tmp, arch)
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 0.0)  # 0: scale 1 (ranks differ when capped)
    kept = [_add_correction(writer, ref, t, rank, quantized) for t in reader.tensors
            if _corrected(t)]
    if not kept:
        raise ExportError(f"{quantized}: no quantized block matrix to correct")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    log.info("%s: rank %d correction of %d matrices keeps %.1f%% of the residual energy",
             out.name, rank, len(kept), 100 * float(np.mean(kept)))
    return out


def _add_correction(writer: GGUFWriter, ref: dict[str, ReaderTensor], tensor: ReaderTensor,
                    rank: int, quantized: Path) -> float:
    """Add `<name>.lora_a` / `<name>.lora_b` for one tensor; returns the energy share kept."""
    if tensor.name not in ref:
        raise ExportError(f"{quantized}: tensor {tensor.name} is not in the reference file")
    target = dequantize(ref[tensor.name].data, ref[tensor.name].tensor_type)
    residual = target.astype(np.float32) - dequantize(tensor.data, tensor.tensor_type)
    a, b, kept = low_rank(residual.astype(np.float32), rank)
    writer.add_tensor(f"{tensor.name}.lora_a", a.astype(np.float16))
    writer.add_tensor(f"{tensor.name}.lora_b", b.astype(np.float16))
    return kept
