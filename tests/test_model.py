"""Base model preparation: fixture properties, prepare/reuse semantics, the command, real model."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from toolmodal.chat import CHAT_TEMPLATE
from toolmodal.cli import main as cli_main
from toolmodal.model import (
    MARKER,
    PREPARED_MODEL,
    convert_gguf,
    load_model,
    load_tokenizer,
    prepare_base_model,
)
from toolmodal.tool_tokens import TOOL_TOKENS


def check_prepared(folder: Path, base_vocab: int | None = None) -> None:
    """Assert what every prepared model folder must satisfy."""
    tokenizer, model = load_tokenizer(folder), load_model(folder)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert tokenizer.eos_token == "<end_of_turn>"
    assert model.generation_config.eos_token_id[0] == end_of_turn
    assert model.dtype == torch.float32
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.config.vocab_size == len(tokenizer)
    for token in TOOL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    if base_vocab is not None:
        assert len(tokenizer) == base_vocab + len(TOOL_TOKENS)


def test_fixture_is_a_prepared_tiny_gemma(tiny_model_dir):
    check_prepared(tiny_model_dir)
    tokenizer, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>")] == [0, 1, 2]
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert sum(f.stat().st_size for f in tiny_model_dir.iterdir()) < 5_000_000
    # Byte fallback: text outside the reduced vocabulary still round-trips.
    text = "Zürich 🌧 «ok»"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_fixture_forward_and_generate(tiny_model_dir):
    tokenizer, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                        add_generation_prompt=True, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] <= ids["input_ids"].shape[1] + 4


@pytest.fixture
def bare_model_dir(tiny_model_dir, tmp_path) -> Path:
    """The tiny fixture as a plain base model: no tool tokens, no chat template, <eos> as EOS."""
    tokenizer = load_tokenizer(tiny_model_dir)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in TOOL_TOKENS]
    bare = type(tokenizer)(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                           bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                           pad_token="<pad>")
    model = load_model(tiny_model_dir)
    model.resize_token_embeddings(len(bare))
    model.generation_config.eos_token_id = 1
    folder = tmp_path / "bare"
    model.save_pretrained(folder)
    bare.save_pretrained(folder)
    return folder


def test_prepare_adds_template_eos_and_tokens(bare_model_dir, tmp_path):
    out = prepare_base_model(str(bare_model_dir), tmp_path / "prepared")
    check_prepared(out, base_vocab=len(load_tokenizer(bare_model_dir)))
    assert json.loads((out / MARKER).read_text())["source"] == str(bare_model_dir)
    assert not list(tmp_path.glob(".prepared.tmp-*"))  # temporary folder renamed away


def test_prepare_reuses_a_finished_folder(bare_model_dir, tmp_path):
    out = prepare_base_model(str(bare_model_dir), tmp_path / "prepared")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert prepare_base_model(str(bare_model_dir), out) == out
    assert time.perf_counter() - start < 1.0  # nothing loaded
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        # Prepared from another source: refusing beats silently training the wrong model.
        ({"source": "some/other-model"}, "was prepared from 'some/other-model'"),
        # A folder toolmodal did not write.
        (None, "not written by toolmodal"),
    ],
)
def test_prepare_refuses_a_foreign_folder(bare_model_dir, tmp_path, marker, message):
    out = tmp_path / "prepared"
    out.mkdir()
    if marker is not None:
        (out / MARKER).write_text(json.dumps(marker))
    with pytest.raises(FileExistsError, match=message):
        prepare_base_model(str(bare_model_dir), out)


def test_model_prepare_command(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "copy"
    assert cli_main(["model", "prepare", "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    check_prepared(out)


# --- the real 270M model (opt in: pytest -m slow) -------------------------------------------


@pytest.mark.slow
def test_prepare_real_model():
    start = time.perf_counter()
    out = prepare_base_model(None, PREPARED_MODEL)
    print(f"prepared {out} in {time.perf_counter() - start:.1f} s")
    check_prepared(out, base_vocab=262_144)
    tokenizer = load_tokenizer(out)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in
           ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>")]
    assert ids == [0, 1, 2, 105, 106]


@pytest.mark.slow
def test_convert_packaged_gguf(tmp_path):
    from toolmodal.model import assemble_packaged_gguf

    out = convert_gguf(assemble_packaged_gguf(), tmp_path / "converted")
    model = load_model(out)
    assert model.config.vocab_size == 262_144
    assert "quantization_config" not in model.config.to_dict()
    shutil.rmtree(out)
