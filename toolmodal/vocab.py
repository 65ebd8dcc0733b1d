"""Vocabulary trimming: keep the tokens a domain corpus needs, drop the rest of the 262k rows.

The tied embedding/output matrix of Gemma 3 270M is 262,144 x 640, most of the model's
parameters and most of what each decode step reads. English requests, JSON, identifiers, numbers
and tool schemas need a small part of it. This module keeps:

- every piece the (untrimmed) tokenizer produces on the corpus texts, and on their lines:
  llama.cpp's Gemma tokenizer (pre-tokenizer `gemma4`) splits a text at newline runs before
  merging while HF's merges run across them, so the two can pick different pieces near a newline
  (upstream, before any trimming); keeping both keeps both tokenizations of the corpus unchanged,
- every added token (control, chat, tool tokens) but Gemma's `<unusedN>` placeholders, and
  every byte-fallback token `<0xXX>`,
- closed under BPE construction: for each kept piece, the two pieces its last merge joined when
  BPE runs on that piece alone, recursively. Inside a longer text, the merges that build one final
  piece only ever involve symbols of that piece and run in the same order as on the piece alone,
  so this closure holds every merge the corpus ever applies.

A merge is kept when both its parts and its result are kept, in its original rank order. BPE
picks the lowest-ranked applicable merge at each step; dropping merges that were never picked
cannot change a pick, so every corpus text tokenizes to exactly the same pieces as before. Any
other text still encodes: characters without a kept token fall back to bytes.

The embedding rows are re-indexed in the original id order (special tokens keep their relative
order; their ids may change), the chat template and token strings are unchanged.

Deliberately left out: Unigram/WordPiece tokenizers (Gemma 3's tokenizer.json is BPE) and any
choice of which corpus to use beyond the file walk below; BFCL data is refused outright.
"""

from __future__ import annotations

import calendar
import glob
import hashlib
import json
import logging
import re
import shutil
import string
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import torch
from tokenizers import Tokenizer

from toolmodal.paths import project_path

JSON_MARKS = '"{}[]:,'

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SYSTEM_PROMPTS_DIR = Path(__file__).resolve().parents[1] / "configs" / "system_prompts"

TEXT_SUFFIXES = (".py", ".pyi", ".md", ".rst", ".txt", ".json", ".yaml", ".yml", ".toml", ".cfg")
BYTE_TOKEN = re.compile(r"<0x[0-9A-F]{2}>")
NEWLINE_RUNS = re.compile(r"[^\n]+|\n+")  # llama.cpp's LLAMA_VOCAB_PRE_TYPE_GEMMA4 split
UNUSED_TOKEN = re.compile(r"<unused\d+>")  # Gemma's 6k placeholder control tokens: never used
CHUNK_CHARS = 4000
CORPUS_SEED = 1_000_003  # generated conversations of the corpus (not the data stage's seed)
FORBIDDEN = "bfcl"  # never build a vocabulary from the benchmark


def _text_files(root: Path) -> list[Path]:
    """Text files under `root` (or `root` itself), BFCL files left out, sorted."""
    if FORBIDDEN in str(root).lower():
        raise ValueError(f"vocabulary corpus {root}: BFCL data may not be used to build it")
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"vocabulary corpus {root}: no such file or folder")
    return sorted(p for p in root.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file()
                  and FORBIDDEN not in str(p.relative_to(root)).lower())


def _chunks(text: str) -> Iterator[str]:
    """Split a text at line ends into pieces of about CHUNK_CHARS characters."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + CHUNK_CHARS)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _file_texts(file: Path) -> list[str]:
    """A file's text, or, for a JSON list of strings (a word list), one line per word.

    Each word is written bare and after a space, the forms it takes in identifiers and in running
    text (capitalised forms are left to the corpus: they double the pieces a word list adds).
    """
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json" and text.lstrip().startswith("["):
        words = json.loads(text)
        if all(isinstance(w, str) for w in words):
            text = "".join(f"{w} {w}\n" for w in words)
    return list(_chunks(text))


def corpus_paths(entries: Iterable[str]) -> list[Path]:
    """A config's corpus entries as paths: a relative one under the project root; a glob pattern
    as the paths it matches, sorted (`.venv/lib/python3*/site-packages`: whichever Python made
    the virtual environment).

    Raises:
        FileNotFoundError: A pattern that matches nothing, named.
    """
    paths = []
    for entry in entries:
        if not any(char in entry for char in "*?["):
            paths.append(project_path(entry))
            continue
        matches = sorted(Path(p) for p in glob.glob(str(project_path(entry))))
        if not matches:
            raise FileNotFoundError(f"vocabulary corpus {entry}: the pattern matches nothing")
        paths += matches
    return paths


def sample_rank(relative: Path, seed: int) -> str:
    """A file's place in the sampling order: a seeded hash of its path below the corpus folder's
    parent (`site-packages/transformers/...`), the same on every machine whatever else the
    folder holds (a shuffle of the files found would reorder all of them when one is added)."""
    return hashlib.sha256(f"{seed}:{relative.as_posix()}".encode()).hexdigest()


def corpus_texts(paths: Iterable[str | Path], max_chars: int, seed: int = 0) -> list[str]:
    """Read the text files under `paths` into chunks, at most `max_chars` characters in all.

    Files named directly are read first, in the given order; the files found in folders follow
    in the order of `sample_rank`, so that a budget smaller than a folder samples all of its
    subfolders, not only the first in sort order, and a file's turn never depends on which other
    files the folder holds. Files that are not UTF-8 (or not valid JSON for .json) are skipped.
    A JSON list of strings is read as a word list (`_file_texts`).

    Args:
        paths: Files or folders (walked for TEXT_SUFFIXES).
        max_chars: Character budget over all files.
        seed: Order of the files found in folders.

    Returns:
        The text chunks (each ends at a line end).
    """
    named = [Path(p) for p in paths if Path(p).is_file()]
    found = sorted((sample_rank(f.relative_to(Path(p).parent), seed), f)
                    for p in paths if not Path(p).is_file() for f in _text_files(Path(p)))
    found = [f for _, f in found]
    texts, total = [], 0
    for file in [f for p in named for f in _text_files(p)] + found:
        try:
            chunks = _file_texts(file)
        except (UnicodeDecodeError, OSError, json.JSONDecodeError):
            continue
        for chunk in chunks:
            texts.append(chunk[:max_chars - total])
            total += len(texts[-1])
            if total >= max_chars:
                break
        if total >= max_chars:
            break
    log.info("vocabulary corpus: %d files considered, %d chars", len(named) + len(found), total)
    return texts


def build_corpus(paths: Iterable[str | Path], max_chars: int,
                 chat_tokenizer=None) -> list[str]:
    """The whole corpus: the bundled data folder (schemas, request templates, values), the
    system prompt variants, the texts under `paths` (at most `max_chars` characters), the
    generated `domain_texts` and, given the tokenizer whose chat template renders prompts,
    `generated_chats`."""
    bundled = corpus_texts([DATA_DIR, SYSTEM_PROMPTS_DIR], 10**9)
    chats = generated_chats(chat_tokenizer) if chat_tokenizer is not None else []
    return bundled + corpus_texts(paths, max_chars) + domain_texts() + chats


def generated_chats(tokenizer, examples: int = 600, seeds: int = 12) -> list[str]:
    """Training conversations of the bundled catalogue as the model sees them: chat template,
    tool blocks in the tool modality (masked names included), values, calls. Train splits only,
    of `seeds` seeds of their own (from CORPUS_SEED), so the data stage's test sets stay text
    outside the corpus; each seed holds out other tools, so every tool of the catalogue (whose
    raw schema files are in the corpus anyway) appears in some training conversation."""
    return [tokenizer.apply_chat_template(messages, tokenize=False)
            for messages in _training_conversations(examples, seeds)]


@cache
def _training_conversations(examples: int, seeds: int) -> tuple[list[dict], ...]:
    """The messages of `generated_chats` (generated once per process: the tests trim twice)."""
    from toolmodal.datagen import GenerationConfig, generate_dataset
    from toolmodal.ingest import load_catalogue

    catalogue, conversations = load_catalogue([DATA_DIR / "tool_schemas"]), []
    for seed in range(CORPUS_SEED, CORPUS_SEED + seeds):
        dataset, _ = generate_dataset(catalogue, GenerationConfig(examples=examples, seed=seed))
        conversations += [row["prompt"] + row["completion"] for split in dataset
                          if not split.startswith("test") for row in dataset[split]]
    return tuple(conversations)


def domain_texts() -> list[str]:
    """Generated numbers, dates, times, JSON literals, punctuation pairs, triples of JSON's
    marks and two-letter codes
    (postal codes, country and state codes), in the forms requests and calls use."""
    months = list(calendar.month_name)[1:] + list(calendar.month_abbr)[1:]
    days = list(calendar.day_name) + list(calendar.day_abbr)
    numbers = [f"{n} -{n} {n}.5 {n}% ${n} {n}k {n}th" for n in range(10000)]
    years = [f"{y}-{m:02d}-{d:02d} {d}/{m}/{y} {m}/{d}/{y} {d:02d}.{m:02d}.{y}"
             for y in range(1990, 2041) for m in range(1, 13) for d in (1, 9, 15, 28, 31)]
    times = [f"{h:02d}:{m:02d} {h}:{m:02d}:00 {h % 12 or 12}:{m:02d} am pm UTC"
             for h in range(24) for m in range(0, 60, 5)]
    words = [f"{d}, {m} {n} {m} {n}, {y}" for d in days for m in months
             for n in (1, 2, 3, 12, 21) for y in (2024, 2025, 2026)]
    json_literals = ['{"a": true, "b": false, "c": null, "d": [1, 2.5, -3], "e": {"f": ""}}',
                     '{"x":1,"y":[],"z":{}}', "[]", "{}", '""', "\\n \\t \\\" \\u00e9"]
    punctuation = [f"{a}{b} x{a}{b}" for a in string.punctuation for b in string.punctuation]
    punctuation += [f"{a}{b}{c} x{a}{b}{c}" for a in JSON_MARKS for b in JSON_MARKS
                    for c in JSON_MARKS]  # compact JSON: `":[`, `"},`, `]}]`
    codes = [f"{a}{b} {a}{b}1" for a in string.ascii_uppercase for b in string.ascii_uppercase]
    return numbers + years + times + words + json_literals + punctuation + codes


def line_chunks(texts: Iterable[str]) -> list[str]:
    """The texts split as llama.cpp's `gemma4` pre-tokenizer splits them: runs of newlines and
    runs of everything else."""
    return [chunk for text in texts for chunk in NEWLINE_RUNS.findall(text)]


def corpus_pieces(tokenizer: Tokenizer, texts: list[str]) -> set[str]:
    """Every piece the tokenizer produces on `texts` (no special tokens added)."""
    pieces: set[str] = set()
    for start in range(0, len(texts), 2000):
        for encoding in tokenizer.encode_batch(texts[start:start + 2000], add_special_tokens=False):
            pieces.update(encoding.tokens)
    return pieces


def _bpe_steps(piece: str, ranks: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """The merges BPE applies to `piece` alone, in order (lowest rank first, leftmost first)."""
    symbols, applied = list(piece), []
    while len(symbols) > 1:
        pairs = enumerate(zip(symbols, symbols[1:], strict=False))
        candidates = [(ranks[a, b], i) for i, (a, b) in pairs if (a, b) in ranks]
        if not candidates:
            break
        _, i = min(candidates)
        applied.append((symbols[i], symbols[i + 1]))
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
    if symbols != [piece]:
        raise ValueError(f"BPE does not rebuild vocabulary piece {piece!r} from its characters "
                         f"(ends at {symbols})")
    return applied


def merge_closure(pieces: set[str], merges: list[list[str]], atomic: set[str]) -> set[str]:
    """`pieces` plus every intermediate piece BPE builds them from.

    Args:
        pieces: Pieces to keep.
        merges: The tokenizer's merges, as [left, right] pairs in rank order.
        atomic: Pieces never built by merges (added and byte-fallback tokens).

    Returns:
        The closed set.
    """
    ranks = {(a, b): rank for rank, (a, b) in enumerate(merges)}
    kept, done = set(pieces), set(atomic)
    for piece in sorted(pieces):
        if piece in done or len(piece) == 1:
            continue
        for a, b in _bpe_steps(piece, ranks):
            kept.update((a, b, a + b))
            done.add(a + b)
    return kept


def kept_pieces(spec: dict, texts: list[str]) -> set[str]:
    """The pieces a trimmed tokenizer keeps for `texts` (see the module docstring).

    Args:
        spec: The parsed tokenizer.json (a BPE model with byte fallback).
        texts: Corpus texts.

    Returns:
        Corpus pieces, their BPE ancestors, added tokens, byte-fallback tokens and `<unk>`.
    """
    model = spec["model"]
    if model["type"] != "BPE" or not model["byte_fallback"]:
        raise ValueError(f"tokenizer.json model is {model['type']} (byte_fallback="
                         f"{model.get('byte_fallback')}); only BPE with byte fallback is trimmed")
    if model["merges"] and not isinstance(model["merges"][0], list):
        raise ValueError("tokenizer.json merges are strings; expected [left, right] pairs")
    added = {t["content"] for t in spec["added_tokens"] if not UNUSED_TOKEN.fullmatch(t["content"])}
    atomic = added | {t for t in model["vocab"] if BYTE_TOKEN.fullmatch(t)} | {model["unk_token"]}
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    pieces = corpus_pieces(tokenizer, texts) | corpus_pieces(tokenizer, line_chunks(texts))
    return merge_closure(pieces - atomic, model["merges"], atomic) | atomic


def trim_spec(spec: dict, keep: set[str]) -> tuple[dict, list[int]]:
    """A tokenizer.json spec with only `keep`, re-indexed in the original id order.

    Args:
        spec: The parsed tokenizer.json.
        keep: Pieces to keep (added tokens included).

    Returns:
        The new spec and, for each new id, the old id (the embedding rows to keep).
    """
    model = spec["model"]
    old_ids = {t: i for t, i in model["vocab"].items()} | {t["content"]: t["id"]
                                                           for t in spec["added_tokens"]}
    missing = keep - old_ids.keys()
    if missing:
        raise ValueError(f"pieces to keep not in the vocabulary: {sorted(missing)[:10]}")
    order = sorted(old_ids[t] for t in keep)
    new_id = {old: new for new, old in enumerate(order)}
    trimmed = json.loads(json.dumps(spec))
    trimmed["model"]["vocab"] = {t: new_id[i] for t, i in model["vocab"].items() if t in keep}
    trimmed["model"]["merges"] = [[a, b] for a, b in model["merges"]
                                  if a in keep and b in keep and a + b in keep]
    trimmed["added_tokens"] = [t for t in trimmed["added_tokens"] if t["content"] in keep]
    for token in trimmed["added_tokens"]:
        token["id"] = new_id[token["id"]]
    for special in (trimmed.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [new_id[old_ids[t]] for t in special["tokens"]]
    return trimmed, order


def _remap(value, new_id: dict[int, int]):
    """Map a token id (or list of ids, or None) from old to new ids."""
    if value is None:
        return None
    if isinstance(value, list):
        return [new_id[v] for v in value]
    return new_id[value]


def reindex_model(model: torch.nn.Module, old_ids: list[int]) -> None:
    """Keep only the embedding rows `old_ids` (output layer tied) and remap config ids, in place.

    Args:
        model: A causal LM with tied input/output embeddings.
        old_ids: For each new id, its old id.
    """
    if not model.config.tie_word_embeddings:
        raise ValueError("vocabulary trimming expects tied embeddings (tie_word_embeddings)")
    new_id = {old: new for new, old in enumerate(old_ids)}
    rows = model.get_input_embeddings().weight.data[torch.tensor(old_ids)].clone()
    embedding = model.get_input_embeddings()
    embedding.weight = torch.nn.Parameter(rows)
    embedding.num_embeddings = len(old_ids)
    model.config.vocab_size = len(old_ids)
    model.tie_weights()
    for cfg in (model.config, model.generation_config):
        for field in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(cfg, field, _remap(getattr(cfg, field), new_id))


def trim_model_dir(src: Path, out: Path, texts: list[str]) -> dict:
    """Write a trimmed copy of the HF folder `src` to `out` (which must not exist).

    Args:
        src: HF folder with tokenizer.json (BPE, byte fallback) and a tied-embedding model.
        out: Folder to write.
        texts: Corpus texts whose tokenization must stay the same.

    Returns:
        Summary: old and new vocabulary size, corpus chunks and characters.
    """
    from toolmodal.model import load_model

    spec = json.loads((src / "tokenizer.json").read_text())
    trimmed, old_ids = trim_spec(spec, kept_pieces(spec, texts))
    model = load_model(src)
    old_size = model.config.vocab_size
    reindex_model(model, old_ids)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    model.save_pretrained(out)
    (out / "tokenizer.json").write_text(json.dumps(trimmed, ensure_ascii=False, indent=1))
    return {"vocab_size_before": old_size, "vocab_size_after": len(old_ids),
            "corpus_chunks": len(texts), "corpus_chars": sum(map(len, texts))}
