"""Vocabulary trimming: same pieces on the corpus, byte fallback elsewhere, same greedy outputs.

Unit and smoke tiers use the tiny fixture trimmed to the bundled data folder plus the generated
numbers/dates; the BFCL sample is used here only to CHECK tokenization, never to build a corpus.
The real-model test (slow) trims /work/prepared-base with a small English/code corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer, LogitsProcessor, LogitsProcessorList

from toolmodal import vocab
from toolmodal.model import load_model
from toolmodal.tool_tokens import TOOL_TOKENS

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_BASE = Path("/work/prepared-base")
ODD_TEXTS = ["Grüße aus Köln, 東京 в Москве 🎉", "tab\there\n\n  indented  ", "<0x41> <tool_call>",
             "naïve café — “quotes” ½ ≥ ∑", "x" * 300]


def bfcl_texts(bfcl_dir: Path) -> list[str]:
    """Questions and function documents of the BFCL sample (for checking only)."""
    texts = []
    for file in sorted(bfcl_dir.glob("BFCL_*.json")):
        for line in file.read_text().splitlines():
            row = json.loads(line)
            texts += [m["content"] for turn in row["question"] for m in turn]
            texts.append(json.dumps(row.get("function", []), ensure_ascii=False))
    return texts


@pytest.fixture(scope="module")
def corpus(tiny_model_dir: Path) -> list[str]:
    return vocab.build_corpus([], 0, AutoTokenizer.from_pretrained(tiny_model_dir))


@pytest.fixture(scope="module")
def trimmed(tiny_model_dir: Path, corpus: list[str], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vocab") / "trimmed"
    summary = vocab.trim_model_dir(tiny_model_dir, out, corpus)
    assert summary["vocab_size_after"] < summary["vocab_size_before"]
    return out


def _tokenizers(tiny_model_dir: Path, trimmed: Path) -> tuple[Tokenizer, Tokenizer]:
    return (Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json")),
            Tokenizer.from_file(str(trimmed / "tokenizer.json")))


def test_corpus_paths_expand_patterns_and_name_one_that_matches_nothing(tmp_path):
    assert vocab.corpus_paths(["data/tool_schemas"]) == [REPO_ROOT / "data" / "tool_schemas"]
    found = vocab.corpus_paths(["data/tool_schemas/weath*"])
    assert found == [REPO_ROOT / "data" / "tool_schemas" / "weather"]
    (tmp_path / "b1").write_text("x")
    (tmp_path / "a1").write_text("x")
    assert vocab.corpus_paths([str(tmp_path / "?1")]) == [tmp_path / "a1", tmp_path / "b1"]
    with pytest.raises(FileNotFoundError, match=r"nomatch\*: the pattern matches nothing"):
        vocab.corpus_paths(["nomatch*"])


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_corpus_sample_is_the_same_wherever_the_folder_is_and_whatever_else_it_holds(tmp_path):
    """A folder sampled under a budget gives the same texts on every machine: where it lives does
    not matter, and a file added to it takes its own turn without reordering the others."""
    files = {f"pkg/mod{i}.py": f"text {i}\n" for i in range(40)}
    here = _package(tmp_path / "a" / "site-packages", files)
    there = _package(tmp_path / "elsewhere" / "b" / "site-packages", files)
    budget = 7 * 10  # 10 of the 40 files
    sample = vocab.corpus_texts([here / "pkg"], budget)
    assert len(sample) == 10
    assert vocab.corpus_texts([there / "pkg"], budget) == sample
    assert sample != [files[f"pkg/mod{i}.py"] for i in range(10)]  # not the sort order
    _package(there, {"pkg/zz_extra.py": "extra\n"})
    everything = vocab.corpus_texts([there / "pkg"], 10**6)
    assert [t for t in everything if t != "extra\n"] == vocab.corpus_texts([here / "pkg"], 10**6)


def test_bpe_steps_rebuild_a_piece() -> None:
    ranks = {("a", "b"): 0, ("ab", "c"): 1, ("b", "c"): 2}
    assert vocab._bpe_steps("abc", ranks) == [("a", "b"), ("ab", "c")]
    with pytest.raises(ValueError, match="does not rebuild"):
        vocab._bpe_steps("bca", ranks)  # no merge joins "bc" and "a"


def test_closure_adds_ancestors_only() -> None:
    merges = [["a", "b"], ["ab", "c"], ["b", "c"], ["x", "y"]]
    assert vocab.merge_closure({"abc"}, merges, set()) == {"a", "b", "ab", "c", "abc"}


def test_benchmark_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bfcl-sample").mkdir()
    with pytest.raises(ValueError, match="BFCL"):
        vocab.corpus_texts([tmp_path / "bfcl-sample"], 1000)
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "BFCL_v4_simple.json").write_text("secret")
    (tmp_path / "ok" / "notes.md").write_text("kept\n")
    assert vocab.corpus_texts([tmp_path / "ok"], 1000) == ["kept\n"]


def test_kept_merges_are_closed(tiny_model_dir: Path, trimmed: Path) -> None:
    spec = json.loads((trimmed / "tokenizer.json").read_text())
    kept = set(spec["model"]["vocab"])
    added = {t["content"] for t in spec["added_tokens"]}
    ranks = {(a, b): r for r, (a, b) in enumerate(spec["model"]["merges"])}
    assert all(a in kept and b in kept and a + b in kept for a, b in ranks)
    for piece in kept - added:  # every kept piece is reachable by kept merges from characters
        if len(piece) > 1 and not vocab.BYTE_TOKEN.fullmatch(piece):
            vocab._bpe_steps(piece, ranks)
    assert all(f"<0x{i:02X}>" in kept for i in range(256))


def test_corpus_pieces_identical(tiny_model_dir: Path, trimmed: Path, corpus) -> None:
    full, small = _tokenizers(tiny_model_dir, trimmed)
    pairs = zip(corpus, full.encode_batch(corpus), small.encode_batch(corpus), strict=True)
    for text, before, after in pairs:
        assert after.tokens == before.tokens, text[:80]


def test_other_text_same_or_byte_fallback(tiny_model_dir, trimmed, bfcl_dir) -> None:
    full, small = _tokenizers(tiny_model_dir, trimmed)
    kept = set(small.get_vocab())
    for text in bfcl_texts(bfcl_dir) + ODD_TEXTS:
        before, after = full.encode(text, add_special_tokens=False), small.encode(
            text, add_special_tokens=False)
        assert small.decode(after.ids) == full.decode(before.ids)
        if set(before.tokens) <= kept:  # every piece kept: the whole sequence is unchanged
            assert after.tokens == before.tokens, text[:80]


def test_specials_and_chat_template_unchanged(tiny_model_dir: Path, trimmed: Path) -> None:
    full, small = (AutoTokenizer.from_pretrained(p) for p in (tiny_model_dir, trimmed))
    assert small.chat_template == full.chat_template
    assert small.all_special_tokens == full.all_special_tokens
    for token in [*TOOL_TOKENS, "<start_of_turn>", "<end_of_turn>", "<bos>", "<pad>"]:
        assert small.convert_ids_to_tokens(small.convert_tokens_to_ids(token)) == token
    messages = [{"role": "system", "content": "Use tools."},
                {"role": "user", "content": "Weather in Oslo tomorrow at 10:30?"}]
    ids = {t: t.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
           for t in (full, small)}
    pieces = {t: t.convert_ids_to_tokens(ids[t]) for t in (full, small)}
    assert small.decode(ids[small]) == full.decode(ids[full])
    specials = set(full.all_special_tokens)
    assert ([p for p in pieces[small] if p in specials]
            == [p for p in pieces[full] if p in specials])
    if set(pieces[full]) <= set(small.get_vocab()):
        assert pieces[small] == pieces[full]


class _KeepOnly(LogitsProcessor):
    """Restrict the untrimmed model to the kept ids, the trimmed model's whole vocabulary."""

    def __init__(self, keep: list[int]) -> None:
        self.keep = torch.tensor(keep)

    def __call__(self, input_ids, scores):
        masked = torch.full_like(scores, float("-inf"))
        masked[:, self.keep] = scores[:, self.keep]
        return masked


@pytest.mark.smoke
def test_logits_and_greedy_outputs_identical(tiny_model_dir: Path, trimmed: Path, corpus) -> None:
    full_tok, small_tok = (AutoTokenizer.from_pretrained(p) for p in (tiny_model_dir, trimmed))
    full, small = load_model(tiny_model_dir), load_model(trimmed)
    kept = [full_tok.convert_tokens_to_ids(t) for t in small_tok.convert_ids_to_tokens(
        list(range(len(small_tok))))]
    assert small.config.vocab_size == len(small_tok) < full.config.vocab_size
    for prompt in corpus[-3000::1000]:  # whole corpus texts: the same pieces in both
        a = full_tok(prompt, return_tensors="pt")
        b = small_tok(prompt, return_tensors="pt")
        assert (small_tok.convert_ids_to_tokens(b.input_ids[0])
                == full_tok.convert_ids_to_tokens(a.input_ids[0]))
        with torch.no_grad():
            torch.testing.assert_close(small(**b).logits, full(**a).logits[..., kept])
        out_a = full.generate(**a, max_new_tokens=12, do_sample=False,
                              logits_processor=LogitsProcessorList([_KeepOnly(kept)]))
        out_b = small.generate(**b, max_new_tokens=12, do_sample=False)
        assert (small_tok.convert_ids_to_tokens(out_b[0])
                == full_tok.convert_ids_to_tokens(out_a[0]))


def _gguf_pieces(gguf: Path, texts: list[str]) -> list[list[str]]:
    """llama.cpp's tokenization of `texts`, as the GGUF vocabulary's piece strings."""
    import llama_cpp
    from gguf import GGUFReader

    names = GGUFReader(gguf).fields["tokenizer.ggml.tokens"].contents()
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    return [[names[i] for i in llm.tokenize(t.encode(), add_bos=False, special=True)]
            for t in texts]


@pytest.mark.smoke
def test_llama_cpp_tokenizer_agrees(tiny_model_dir, trimmed, corpus, bfcl_dir, tmp_path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed yet "
                        "(arrives with .venv/.installed-export, the `export` extra)")
    from toolmodal.export.gguf import convert_to_gguf

    texts = corpus[::50] + bfcl_texts(bfcl_dir) + ODD_TEXTS
    full_gguf = convert_to_gguf(tiny_model_dir, tmp_path / "full.gguf", tokenizer_pre="gemma4")
    small_gguf = convert_to_gguf(trimmed, tmp_path / "small.gguf", tokenizer_pre="gemma4")
    full_lc, small_lc = _gguf_pieces(full_gguf, texts), _gguf_pieces(small_gguf, texts)
    full, small = _tokenizers(tiny_model_dir, trimmed)
    kept = set(small.get_vocab())
    for i, (text, before, after) in enumerate(zip(texts, full_lc, small_lc, strict=True)):
        if i < len(corpus[::50]):  # corpus text: llama.cpp's pieces unchanged
            assert after == before, text[:80]
        if set(before) <= kept:  # llama.cpp's pieces all kept: unchanged
            assert after == before, text[:80]
        hf_before = full.encode(text, add_special_tokens=False).tokens
        if before == hf_before:  # llama.cpp agreed with HF before trimming: it still does
            assert after == small.encode(text, add_special_tokens=False).tokens, text[:80]


@pytest.mark.slow
def test_real_model_trim(tmp_path: Path, bfcl_dir: Path) -> None:
    if not (REAL_BASE / "config.json").is_file():
        pytest.skip(f"{REAL_BASE} not prepared")
    site_packages = vocab.corpus_paths([".venv/lib/python3*/site-packages"])
    texts = vocab.build_corpus(site_packages, 2_000_000, AutoTokenizer.from_pretrained(REAL_BASE))
    summary = vocab.trim_model_dir(REAL_BASE, tmp_path / "trimmed", texts)
    assert summary["vocab_size_after"] < summary["vocab_size_before"] // 4
    full, small = _tokenizers(REAL_BASE, tmp_path / "trimmed")
    sample = texts[::10]
    for a, b in zip(full.encode_batch(sample), small.encode_batch(sample), strict=True):
        assert b.tokens == a.tokens
    kept = set(small.get_vocab())
    for text in bfcl_texts(bfcl_dir) + ODD_TEXTS:
        before, after = full.encode(text), small.encode(text)
        assert small.decode(after.ids) == full.decode(before.ids)
        if set(before.tokens) <= kept:
            assert after.tokens == before.tokens, text[:80]
    full_tok, small_tok = (AutoTokenizer.from_pretrained(p) for p in (REAL_BASE,
                                                                      tmp_path / "trimmed"))
    full_model, small_model = load_model(REAL_BASE), load_model(tmp_path / "trimmed")
    messages = [{"role": "user", "content": "What is the weather in Paris on 2025-03-14?"}]
    ids = {t: t.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                    return_dict=True) for t in (full_tok, small_tok)}
    outs = {t: m.generate(**ids[t], max_new_tokens=16, do_sample=False)[0]
            for t, m in ((full_tok, full_model), (small_tok, small_model))}
    assert (small_tok.convert_ids_to_tokens(outs[small_tok])
            == full_tok.convert_ids_to_tokens(outs[full_tok]))


@pytest.mark.smoke
def test_prepare_with_vocab_corpus(tiny_model_dir: Path, tmp_path: Path) -> None:
    from toolmodal.model import MARKER, prepare_base_model

    notes = tmp_path / "notes.md"
    notes.write_text("Book a flight to Oslo on 2025-06-01 and send the invoice by email.\n")
    out = prepare_base_model(str(tiny_model_dir), tmp_path / "prepared", vocab_corpus=[notes])
    tokenizer, model = AutoTokenizer.from_pretrained(out), load_model(out)
    assert len(tokenizer) == model.config.vocab_size < load_model(tiny_model_dir).config.vocab_size
    assert tokenizer.eos_token == "<end_of_turn>"
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert model.generation_config.eos_token_id[0] == end_of_turn
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert all(len(tokenizer.tokenize(t)) == 1 for t in TOOL_TOKENS)
    assert "vocab:" in json.loads((out / MARKER).read_text())["source"]


def test_line_chunks_split_like_llama_cpp_gemma4() -> None:
    assert vocab.line_chunks(["a b\n\nc", "\nx\n"]) == ["a b", "\n\n", "c", "\n", "x", "\n"]


def test_generated_test_prompts_tokenize_unchanged(tiny_model_dir: Path, trimmed: Path) -> None:
    """The corpus holds generated training conversations (their own seed), so the test sets'
    prompts, generated with another seed and never in the corpus, keep their pieces."""
    from toolmodal.datagen import GenerationConfig, generate_dataset
    from toolmodal.ingest import load_catalogue

    dataset, _ = generate_dataset(load_catalogue([vocab.DATA_DIR / "tool_schemas"]),
                                  GenerationConfig(examples=600, seed=0))
    chat = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = [chat.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
             for split in ("test_seen", "test_unseen") for row in dataset[split]]
    full, small = _tokenizers(tiny_model_dir, trimmed)
    same = sum(a.tokens == b.tokens for a, b in zip(full.encode_batch(texts),
                                                   small.encode_batch(texts), strict=True))
    assert same >= 0.95 * len(texts), f"{same}/{len(texts)} test prompts keep their pieces"
