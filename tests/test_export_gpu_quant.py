"""GPU export formats (awq-int4, gptq-int4): config names, the up-front requirement check, and
the calibration texts. The quantisation itself needs CUDA and llm-compressor (the `gpu` extra);
its test skips, saying so, on any machine without both (every development machine here).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoConfig, AutoTokenizer

from toolmodal.chat import END_OF_TURN
from toolmodal.export import ALL_FORMATS, ExportConfig, export_model, gpu_quant
from toolmodal.export.gpu_quant import GPU_FORMATS, GPUQuantError, calibration_texts
from toolmodal.tool_tokens import TOOL_TOKENS

PREPARED_MODEL = Path(__file__).resolve().parents[1] / ".cache/models/gemma3-270m-toolmodal"
HAS_GPU_STACK = torch.cuda.is_available() and importlib.util.find_spec("llmcompressor") is not None


def _row(i: int) -> dict:
    """One dataset row of the contract's shape (only the columns calibration reads matter)."""
    call = json.dumps({"name": "get_weather", "arguments": {"city": f"City{i}"}})
    return {
        "id": f"r{i}", "phase": "joint", "kind": "single",
        "prompt": [{"role": "system", "content": "You call tools."},
                   {"role": "user", "content": f"Weather in City{i}?"}],
        "completion": [{"role": "assistant", "content": f"<tool_call>{call}</tool_call>"}],
        "tools": "[]", "expected_calls": "[]", "difficulty": 1, "n_tools": 1,
        "category": "weather", "prompt_variant": "plain",
    }


@pytest.fixture()
def dataset() -> DatasetDict:
    return DatasetDict({"joint_train": Dataset.from_list([_row(i) for i in range(5)])})


@pytest.fixture()
def gpu_stack(monkeypatch: pytest.MonkeyPatch):
    """Pretend CUDA and llm-compressor are present, so the remaining checks can be reached."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if name == "llmcompressor" else real_find_spec(name))


def test_gpu_format_names_validate_and_are_opt_in() -> None:
    assert ExportConfig(formats=["awq-int4", "gptq-int4"]).formats == list(GPU_FORMATS)
    with pytest.raises(ValueError, match="awq-int8"):
        ExportConfig(formats=["awq-int8"])  # a scheme we do not write
    assert not set(ExportConfig().formats) & set(GPU_FORMATS)  # default stays CPU-only
    assert not set(ALL_FORMATS) & set(GPU_FORMATS)


@pytest.mark.parametrize("fmt", GPU_FORMATS)
def test_no_cuda_raises_before_any_work(fmt: str, tiny_model_dir: Path, tmp_path: Path,
                                        dataset: DatasetDict,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    kept = tmp_path / "earlier-export.txt"
    kept.write_text("written by an earlier export")
    with pytest.raises(GPUQuantError, match=rf"{fmt} need a CUDA GPU"):
        export_model(tiny_model_dir, tmp_path, ExportConfig(formats=["merged", fmt]), dataset)
    assert kept.read_text() == "written by an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier-export.txt"]  # no merge ran


def test_missing_library_is_named(monkeypatch: pytest.MonkeyPatch, dataset: DatasetDict) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "llmcompressor" else real_find_spec(name))
    with pytest.raises(GPUQuantError, match=r"gptq-int4 need the llmcompressor package") as err:
        gpu_quant.check_gpu_formats(["gguf-f16", "gptq-int4"], dataset, "joint_train")
    assert "CUDA" not in str(err.value)  # only what is actually missing is listed


def test_missing_calibration_is_named(gpu_stack, dataset: DatasetDict) -> None:
    with pytest.raises(GPUQuantError, match="--calibration-data"):
        gpu_quant.check_gpu_formats(["awq-int4"], None, "joint_train")
    with pytest.raises(GPUQuantError, match="'joint_validation'"):
        gpu_quant.check_gpu_formats(["awq-int4"], dataset, "joint_validation")
    gpu_quant.check_gpu_formats(["awq-int4"], dataset, "joint_train")  # everything present
    gpu_quant.check_gpu_formats(["merged", "gguf-q4_k_m"], None, "joint_train")  # no GPU format


def test_calibration_texts_are_chat_formatted(tiny_model_dir: Path,
                                              dataset: DatasetDict) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = calibration_texts(dataset["joint_train"], tokenizer, 3)
    assert len(texts) == 3
    assert texts == calibration_texts(dataset["joint_train"], tokenizer, 3)  # fixed seed
    for text in texts:
        assert text.count("<start_of_turn>user") == 1  # system folded into the first user turn
        assert "You call tools." in text and "<start_of_turn>model" in text
        assert '<tool_call>{"name": "get_weather"' in text  # the completion is included
        assert text.rstrip().endswith(END_OF_TURN)
    assert len(calibration_texts(dataset["joint_train"], tokenizer, 50)) == 5  # all there are


def test_calibration_refuses_an_empty_split(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with pytest.raises(GPUQuantError, match="no rows"):
        calibration_texts(Dataset.from_list([]), tokenizer, 8)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_GPU_STACK, reason="needs a CUDA GPU and llm-compressor (the gpu "
                    "extra); neither is on the development machine")
@pytest.mark.skipif(not PREPARED_MODEL.is_dir(), reason="prepared 270M model not built")
@pytest.mark.parametrize("fmt", GPU_FORMATS)
def test_quantised_folder_is_compressed_tensors(fmt: str, tmp_path: Path,
                                                dataset: DatasetDict) -> None:
    config = ExportConfig(formats=[fmt], calibration_rows=4, calibration_max_length=256)
    folder = export_model(PREPARED_MODEL, tmp_path, config, dataset)[fmt]
    quant = AutoConfig.from_pretrained(folder).to_dict()["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert all(len(tokenizer.encode(t, add_special_tokens=False)) == 1 for t in TOOL_TOKENS)
    assert not (tmp_path / "merged").exists()  # only the selected format is kept
