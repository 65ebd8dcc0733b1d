"""The Q4_K_M correction adapter (`toolmodal.export.residual`) on the tiny fixture.

Skipped only where llama-cpp-python (the `export` extra, built from source) is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

from toolmodal.chat import build_prompt
from toolmodal.engines import EngineConfig, Request, load_engine
from toolmodal.export import CORRECTION, ExportConfig, export_model
from toolmodal.export.residual import write_residual_adapter
from toolmodal.schema import Param, Tool

pytest.importorskip("llama_cpp", reason="llama-cpp-python (the `export` extra) not installed")

WEATHER = Tool(name="get_weather", description="Current weather for a city", parameters=(
    Param(name="city", type="string", required=True),))


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("export-q4")
    return export_model(tiny_model_dir, out, ExportConfig(
        formats=["gguf-f16", "gguf-q4_k_m"], tokenizer_pre="gemma4", correction_rank=16))


def _matrices(path: Path) -> dict[str, np.ndarray]:
    return {t.name: dequantize(t.data, t.tensor_type).astype(np.float32)
            for t in GGUFReader(path).tensors}


def test_adapter_is_a_llama_cpp_lora_with_every_block_matrix(exported) -> None:
    adapter = GGUFReader(exported[CORRECTION])
    fields = {k: adapter.fields[k].contents() for k in
              ("general.type", "general.architecture", "adapter.type", "adapter.lora.alpha")}
    assert fields == {"general.type": "adapter", "general.architecture": "gemma3",
                      "adapter.type": "lora", "adapter.lora.alpha": 0.0}
    quantized = [t for t in GGUFReader(exported["gguf-q4_k_m"]).tensors
                 if t.name.startswith("blk.") and len(t.shape) == 2]
    names = {t.name for t in adapter.tensors}
    assert quantized and names == {f"{t.name}.lora_{ab}" for t in quantized for ab in "ab"}


def test_correction_brings_q4_weights_towards_f16(exported) -> None:
    """Rank 16 of 64: random quantization noise is full rank, so only a part goes."""
    f16, q4 = _matrices(exported["gguf-f16"]), _matrices(exported["gguf-q4_k_m"])
    lora = _matrices(exported[CORRECTION])
    names = [n for n in q4 if f"{n}.lora_a" in lora]
    assert names
    for name in names:
        corrected = q4[name] + lora[f"{name}.lora_b"] @ lora[f"{name}.lora_a"]
        before = np.linalg.norm(f16[name] - q4[name])
        assert np.linalg.norm(f16[name] - corrected) < 0.95 * before, name


def _last_logits(engine, tokens: list[int]) -> np.ndarray:
    engine.llm.reset()
    engine.llm.eval(tokens)
    logits = engine.llama_cpp.llama_get_logits_ith(engine.llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(logits, shape=(engine.llm.n_vocab(),)).copy()


def test_llama_cpp_applies_the_correction(exported, tmp_path: Path) -> None:
    """Logits of Q4_K_M + a full-rank adapter are closer to the f16 file's than Q4_K_M's."""
    adapter = write_residual_adapter(exported["gguf-f16"], exported["gguf-q4_k_m"],
                                     tmp_path / "full.lora.gguf", rank=10_000)
    config = EngineConfig(max_new_tokens=4)
    plain = load_engine("llamacpp", exported["gguf-q4_k_m"], config)
    fixed = load_engine("llamacpp", exported["gguf-q4_k_m"],
                        config.model_copy(update={"lora": adapter}))
    reference = load_engine("llamacpp", exported["gguf-f16"], config)
    tokens = plain.prompt_tokens(build_prompt("Call tools.", [WEATHER], "Weather in Oslo?"))
    target = _last_logits(reference, tokens)
    error_plain = np.abs(_last_logits(plain, tokens) - target).mean()
    error_fixed = np.abs(_last_logits(fixed, tokens) - target).mean()
    assert 0 < error_fixed < 0.5 * error_plain
    [gen] = fixed.generate([Request(build_prompt("", [WEATHER], "hi"), [WEATHER], "none")])
    assert 0 < gen.n_new_tokens <= 4


def test_full_rank_correction_is_exact_up_to_f16(exported, tmp_path: Path) -> None:
    out = write_residual_adapter(exported["gguf-f16"], exported["gguf-q4_k_m"],
                                 tmp_path / "full.lora.gguf", rank=10_000)
    f16, q4, lora = (_matrices(p) for p in (exported["gguf-f16"], exported["gguf-q4_k_m"], out))
    name = next(n for n in q4 if f"{n}.lora_a" in lora)
    corrected = q4[name] + lora[f"{name}.lora_b"] @ lora[f"{name}.lora_a"]
    np.testing.assert_allclose(corrected, f16[name], atol=1e-3)


def test_missing_lora_file_is_named(exported, tmp_path: Path) -> None:
    missing = tmp_path / "nope.lora.gguf"
    with pytest.raises(FileNotFoundError, match="nope.lora.gguf"):
        load_engine("llamacpp", exported["gguf-q4_k_m"], EngineConfig(lora=missing))


def test_other_engines_refuse_a_lora_file(exported, tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="llamacpp"):
        load_engine("transformers", tiny_model_dir, EngineConfig(lora=exported[CORRECTION]))
