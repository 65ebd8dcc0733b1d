"""Export: merged HF folder (plain and LoRA), llama.cpp's converter, GGUF checks, GBNF translation.

Tests that quantize or run llama.cpp skip only where llama-cpp-python (the `export` extra) is not
installed; the f16 conversion needs only the converter, which pip fetches from PyPI once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGUFReader
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.engines.llamacpp import gbnf_from_ebnf
from toolmodal.export import ALL_FORMATS, ExportConfig, export_model, gguf_name
from toolmodal.export.gguf import _converter_member, tool_token_ids
from toolmodal.export.merge import ExportError, check_hf_folder, merge_to_hf
from toolmodal.tool_tokens import TOOL_TOKENS

PREFIX = "llama_cpp_python-0.3.36/vendor/llama.cpp/"


@pytest.fixture(scope="module")
def f16_export(tiny_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """The fixture exported once to merged + f16 GGUF (the reduced tokenizer's pre-tokenizer
    is unknown to llama.cpp's hash table, so it is named)."""
    out = tmp_path_factory.mktemp("export")
    config = ExportConfig(formats=["merged", "gguf-f16"], tokenizer_pre="gemma4")
    return export_model(tiny_model_dir, out, config)


@pytest.mark.parametrize(("name", "expected"), [
    (PREFIX + "convert_hf_to_gguf.py", "convert_hf_to_gguf.py"),  # the script itself
    (PREFIX + "conversion/gemma.py", "conversion/gemma.py"),  # its model classes
    (PREFIX + "gguf-py/gguf/vocab.py", "gguf-py/gguf/vocab.py"),  # its gguf-py
    (PREFIX + "gguf-py/tests/test_quants.py", None),  # gguf-py's tests are not needed
    (PREFIX + "src/llama.cpp", None),  # C++ sources are not extracted
    (PREFIX + "convert_hf_to_gguf_update.py", None),  # a different script sharing the prefix
    ("llama_cpp_python-0.3.36/llama_cpp/llama.py", None),  # the bindings are installed, not copied
])
def test_converter_members(name: str, expected: str | None) -> None:
    assert _converter_member(name, PREFIX) == expected


def test_config_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="gguf-q2_k"):
        ExportConfig(formats=["gguf-q2_k"])
    assert ExportConfig().formats == list(ALL_FORMATS)
    assert gguf_name("gguf-q4_k_m") == "model-q4_k_m.gguf"


def test_merged_folder_has_template_and_tool_tokens(f16_export: dict[str, Path]) -> None:
    merged = f16_export["merged"]
    assert (merged / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert tokenizer.chat_template and "generation" in tokenizer.chat_template
    for token in TOOL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token


def test_f16_gguf_keeps_tool_tokens_single(f16_export: dict[str, Path],
                                           tiny_model_dir: Path) -> None:
    path = f16_export["gguf-f16"]
    hf_ids = AutoTokenizer.from_pretrained(tiny_model_dir).convert_tokens_to_ids(TOOL_TOKENS)
    assert tool_token_ids(path) == dict(zip(TOOL_TOKENS, hf_ids, strict=True))
    fields = GGUFReader(path).fields
    assert fields["general.architecture"].contents() == "gemma3"
    assert "{% generation %}" in fields["tokenizer.chat_template"].contents().replace("-", "")
    end_of_turn = AutoTokenizer.from_pretrained(tiny_model_dir).convert_tokens_to_ids(
        "<end_of_turn>")
    assert fields["tokenizer.ggml.eos_token_id"].contents() == end_of_turn


def test_tool_token_check_names_the_missing_token(tmp_path: Path) -> None:
    import gguf

    writer = gguf.GGUFWriter(tmp_path / "bad.gguf", "gemma3")
    tokens = ["<pad>", "hello", *TOOL_TOKENS[1:]]  # <tool_start> missing
    writer.add_token_list(tokens)
    writer.add_token_types([3] * len(tokens))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(ExportError, match="<tool_start>.*found 0 times"):
        tool_token_ids(tmp_path / "bad.gguf")


def test_check_requires_chat_template(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer.chat_template = None
    with pytest.raises(ExportError, match="no chat template"):
        check_hf_folder(tokenizer, model, tiny_model_dir)


def test_lora_adapter_is_merged(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == tiny_model_dir
    ids = torch.tensor([[2, 10, 20, 30]])
    with torch.no_grad():
        expected = peft_model(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merge_to_hf(adapter, tmp_path / "m"),
                                                      dtype=torch.float32)
        assert not (tmp_path / "m" / "adapter_config.json").exists()
        torch.testing.assert_close(merged(ids).logits, expected, rtol=1e-4, atol=1e-4)
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        assert not torch.allclose(plain(ids).logits, expected, atol=1e-3)


@pytest.mark.parametrize(("ebnf", "gbnf"), [
    # xgrammar's lookahead is a speed hint; GBNF has none, so it is dropped
    (r'a ::= (("\"" b)) (=([ \n\r\t]* [,}\]:]))', r'a ::= (("\"" b))'),
    # unbounded repetition: {m, -1} -> {m,}
    ("a ::= (x{0, -1} y{1, -1})", "a ::= (x{0,} y{1,})"),
    # bounded repetition loses only the space
    ("a ::= (x{1, 6})", "a ::= (x{1,6})"),
    # "(=" and braces inside a string literal are text, left alone
    ('a ::= (("\\"f(=x{0, -1}\\""))', 'a ::= (("\\"f(=x{0, -1}\\""))'),
    # \0 is not a GBNF escape: written as \x00
    (r"a ::= [^\0-\x1f\"\\\r\n]", r"a ::= [^\x00-\x1f\"\\\r\n]"),
    # GBNF rule names have no "_": written as "-" (not inside strings)
    ('root_1 ::= (a_b "x_y")', 'root-1 ::= (a-b "x_y")'),
    # an escaped ] inside a class does not end it
    (r"a ::= [\]a] (=(b))", r"a ::= [\]a]"),
])
def test_gbnf_translation(ebnf: str, gbnf: str) -> None:
    assert gbnf_from_ebnf(ebnf) == gbnf + "\n"


def test_ebnf_string_literals_unescaped() -> None:
    from toolmodal.engines.llamacpp import ebnf_string

    assert ebnf_string(r'"^[a-z]+(\\.[a-z]+)\?$"') == r"^[a-z]+(\.[a-z]+)?$"
    assert ebnf_string(r'"a\"b\n"') == 'a"b\n'


def test_gbnf_translation_rejects_non_rule() -> None:
    with pytest.raises(ValueError, match="not an EBNF rule"):
        gbnf_from_ebnf("root = x")


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"^\d{4}-\d{2}$", r"^[0-9]{4}-[0-9]{2}$"),  # outside a class: becomes a class
    (r"[\d-]+", r"[0-9-]+"),  # inside a class: its range only
    (r"[#@]\w+\s\.", r"[#@][a-zA-Z0-9_]+[ \t\n\r][.]"),  # escaped punctuation: a class
    (r"a\-b\]\nc[\.\]]", r"a[\-]b[\]]\nc[\.\]]"),  # class metacharacters stay escaped
])
def test_pattern_shorthands_expanded(pattern: str, expected: str) -> None:
    from toolmodal.engines.llamacpp import expand_shorthands

    assert expand_shorthands(pattern) == expected


def test_low_rank_factors_reproduce_a_low_rank_residual() -> None:
    from toolmodal.export.residual import low_rank

    rng = np.random.default_rng(0)
    residual = (rng.normal(size=(12, 2)) @ rng.normal(size=(2, 20))).astype(np.float32)
    a, b, kept = low_rank(residual, rank=4)
    assert a.shape == (4, 20) and b.shape == (12, 4)
    np.testing.assert_allclose(b @ a, residual, atol=1e-5)
    assert kept == pytest.approx(1.0)
    a, b, kept = low_rank(residual, rank=1)
    assert a.shape == (1, 20) and 0.3 < kept < 1.0
    a, b, kept = low_rank(np.zeros((3, 5), np.float32), rank=8)  # capped at 3; nothing to keep
    assert a.shape == (3, 5) and kept == 1.0 and not (b @ a).any()
