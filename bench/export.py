"""Benchmark exported models: size, load time, RSS, speed and accuracy per format.

    .venv/bin/python bench/export.py --model DIR --data DATASET_DIR --out DIR \
        [--limit 20] [--modes none,soft,hard] [--splits test_seen,test_unseen,...] [--reuse]

Exports `--model` (HF folder or LoRA adapter) to every format with `toolmodal.export`, then for
the unexported HF model (transformers engine, fp32), each GGUF file (llama.cpp engine) and
Q4_K_M with its correction adapter (`gguf-q4_k_m+lora`, see `toolmodal.export.residual`):

- speed and memory in a fresh child process that imports only what serving that format needs
  (torch+transformers for HF, llama-cpp-python for GGUF, with the llama.cpp engine's batch
  size), 2 threads: load time, peak RSS (VmHWM of the child: `ru_maxrss` would report the
  parent's peak, which Linux carries over exec), time-to-first-token on a real test prompt and
  greedy decode tokens/s over 64 tokens;
- accuracy with `toolmodal.evaluate` on the same test splits and mask modes for every format
  (exact match; irrelevance accuracy on test_irrelevance), the drop in points against the
  unexported model, and fidelity: the share of test prompts answered with exactly the text
  the unexported model wrote (more telling than accuracy while the model is weak).

Prints a markdown table and writes `bench.json` under `--out`. Deliberately left out: GPU
formats (AWQ/GPTQ) and batching (llama.cpp decodes one sequence at a time here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DECODE_TOKENS = 64
THREADS = 2
ACCURACY_METRIC = {"test_irrelevance": "irrelevance_accuracy"}  # else exact_match


def _peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM; unlike ru_maxrss, reset by exec)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def perf_gguf(path: Path, prompt: str, lora: Path | None, n_batch: int) -> dict:
    """Load time, TTFT, decode tok/s and peak RSS of a GGUF file (llama.cpp only)."""
    import llama_cpp

    start = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=THREADS,
                          n_threads_batch=THREADS, n_batch=n_batch, n_ubatch=n_batch,
                          verbose=False, lora_path=None if lora is None else str(lora))
    load = time.perf_counter() - start
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    start = time.perf_counter()
    stream = llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0)
    next(stream)
    ttft = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(DECODE_TOKENS):
        next(stream)
    decode = DECODE_TOKENS / (time.perf_counter() - start)
    return {"load_s": load, "prompt_tokens": len(tokens), "ttft_s": ttft, "decode_tps": decode,
            "rss_mb": _peak_rss_mb()}


def perf_hf(path: Path, prompt: str) -> dict:
    """Load time, TTFT, decode tok/s and peak RSS of an HF folder (transformers, fp32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    load = time.perf_counter() - start
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)

    def timed(n: int) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return time.perf_counter() - start

    ttft = timed(1)
    decode = DECODE_TOKENS / (timed(DECODE_TOKENS + 1) - ttft)
    return {"load_s": load, "prompt_tokens": enc["input_ids"].shape[1], "ttft_s": ttft,
            "decode_tps": decode, "rss_mb": _peak_rss_mb()}


def measure_perf(fmt: str, path: Path, prompt_file: Path, lora: Path | None) -> dict:
    """Run the perf measurement of one format in a fresh child process.

    The child gets the llama.cpp engine's batch size from here: importing the engine module
    there would count its own imports (pydantic, transformers' chat-template code; ~30 MB) in
    the GGUF's RSS, which should be llama-cpp-python's alone.
    """
    from toolmodal.engines.llamacpp import N_BATCH

    cmd = [sys.executable, __file__, "--perf", fmt, str(path), str(prompt_file), str(lora),
           str(N_BATCH)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=os.environ | {"OMP_NUM_THREADS": str(THREADS)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def size_mb(*paths: Path | None) -> float:
    files = [f for p in paths if p is not None
             for f in ([p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()])]
    return sum(f.stat().st_size for f in files) / 2**20


def accuracy(fmt: str, path: Path, lora: Path | None, splits: dict[str, list[dict]],
             args) -> tuple[dict, dict]:
    """Evaluate one format with toolmodal.evaluate.

    Returns split -> mode -> accuracy, and split -> mode -> the generated texts.
    """
    from toolmodal.engines import EngineConfig, load_engine
    from toolmodal.evaluate import EvalConfig, evaluate

    engine_name = "transformers" if fmt == "hf-fp32" else "llamacpp"
    engine_config = EngineConfig(max_new_tokens=args.max_new_tokens, batch_size=8, lora=lora)
    config = EvalConfig(engine=engine_name, engine_config=engine_config, mask_modes=args.modes,
                        test_splits=list(splits), limit=args.limit)
    engine = load_engine(engine_name, path, engine_config)
    report = evaluate(engine, config, splits, log=lambda line: print(f"  {fmt} {line}"))
    tests = report["test_sets"].items()
    acc = {split: {mode: result["metrics"][ACCURACY_METRIC.get(split, "exact_match")]
                   for mode, result in entry["modes"].items()} for split, entry in tests}
    raw = {split: {mode: [e["raw"] for e in result["examples"]]
                   for mode, result in entry["modes"].items()} for split, entry in tests}
    return acc, raw


def fidelity(raw: dict, reference: dict, mode: str) -> float:
    """Share of test prompts where `raw` holds exactly the reference's text (one mode)."""
    pairs = [(a, b) for split in reference for a, b in
             zip(raw[split][mode], reference[split][mode], strict=True)]
    return sum(a == b for a, b in pairs) / len(pairs)


def first_prompt(merged: Path, rows: list[dict]) -> str:
    """A real test prompt rendered with the model's chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    return tokenizer.apply_chat_template(rows[0]["prompt"], tokenize=False,
                                         add_generation_prompt=True)


def memory_bandwidth_gbs(mb: int = 256, rounds: int = 5) -> float:
    """Read bandwidth of this machine: THREADS processes at once, each summing its own array."""
    code = (f"import numpy as np, time\na = np.ones({mb * 2**18}, np.float32)\na.sum()\n"
            f"t = time.perf_counter()\nfor _ in range({rounds}): a.sum()\n"
            "print(time.perf_counter() - t)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(THREADS)]
    seconds = max(float(proc.communicate()[0]) for proc in procs)
    return THREADS * rounds * mb / 1024 / seconds


def table(results: dict[str, dict], modes: list[str], bandwidth: float) -> str:
    """Markdown table: one row per format, accuracy as the mean over splits per mode.

    "bound tok/s": decode speed if each token only had to stream the weights (file size) once
    from memory at `bandwidth` GB/s; an estimate (numpy's streaming rate, not a hardware peak:
    llama.cpp may beat it by a few percent, as f16 did).
    """
    head = ["format", "size MB", "load s", "peak RSS MB", "TTFT s", "decode tok/s",
            "bound tok/s"]
    head += [f"acc {m}" for m in modes] + [f"drop {m}" for m in modes]
    head += [f"same as hf {m}" for m in modes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = results.get("hf-fp32")
    for fmt, r in results.items():
        acc = r["mean_accuracy"]
        cells = [fmt, f"{r['size_mb']:.0f}", f"{r['load_s']:.2f}", f"{r['rss_mb']:.0f}",
                 f"{r['ttft_s']:.3f}", f"{r['decode_tps']:.1f}",
                 f"{bandwidth * 1024 / r['size_mb']:.0f}"]
        cells += [f"{100 * acc[m]:.1f}" for m in modes]
        cells += [f"{100 * (ref['mean_accuracy'][m] - acc[m]):+.1f}" if ref else "n/a"
                  for m in modes]
        cells += [f"{100 * fidelity(r['raw'], ref['raw'], m):.0f}" if ref else "n/a"
                  for m in modes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def split_table(results: dict[str, dict]) -> str:
    """Markdown table of accuracy per split and mode (rows) and format (columns)."""
    fmts = list(results)
    lines = ["| split | mode | " + " | ".join(fmts) + " |", "|---|---|" + "---|" * len(fmts)]
    first = results[fmts[0]]["accuracy"]
    for split, by_mode in first.items():
        for mode in by_mode:
            cells = [f"{100 * results[f]['accuracy'][split][mode]:.1f}" for f in fmts]
            lines.append(f"| {split} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure(fmt: str, path: Path, lora: Path | None, splits: dict[str, list[dict]],
            prompt_file: Path, args) -> dict:
    """Perf and accuracy of one format, cached in `--out/bench-<fmt>.json`; with --reuse the
    accuracy comes from that cache and only speed and memory are measured again."""
    cache = args.out / f"bench-{fmt}.json"
    print(f"== {fmt}: {path}" + (f" + {lora.name}" if lora else ""), flush=True)
    result = {"size_mb": size_mb(path, lora), **measure_perf(fmt, path, prompt_file, lora)}
    if args.reuse and cache.is_file():
        kept = json.loads(cache.read_text())
        return result | {k: kept[k] for k in ("accuracy", "raw", "mean_accuracy")}
    result["accuracy"], result["raw"] = accuracy(fmt, path, lora, splits, args)
    result["mean_accuracy"] = {m: sum(a[m] for a in result["accuracy"].values()) / len(splits)
                               for m in args.modes}
    cache.write_text(json.dumps(result, indent=1))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="dataset from `data generate`")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=20, help="examples per split")
    parser.add_argument("--modes", default="none,soft,hard")
    parser.add_argument("--splits", default="test_seen,test_unseen,test_chain,test_irrelevance")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--tokenizer-pre", default=None, help="see ExportConfig.tokenizer_pre")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse exported files and per-format accuracy already in --out "
                             "(speed and memory are measured again)")
    parser.add_argument("--formats",
                        default="hf-fp32,gguf-f16,gguf-q8_0,gguf-q4_k_m,gguf-q4_k_m+lora",
                        help="what to measure (hf-fp32 = the unexported model; "
                             "gguf-q4_k_m+lora = Q4_K_M with its correction adapter)")
    args = parser.parse_args()
    args.modes = args.modes.split(",")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import load_from_disk

    from toolmodal.export import ALL_FORMATS, CORRECTION, ExportConfig, export_model, gguf_name
    from toolmodal.export.residual import adapter_name

    started = time.perf_counter()
    if args.reuse and (args.out / "merged").is_dir():
        paths = {"merged": args.out / "merged"}
        paths |= {f: args.out / gguf_name(f) for f in ALL_FORMATS if f != "merged"}
        paths[CORRECTION] = args.out / adapter_name(paths["gguf-q4_k_m"])
    else:
        paths = export_model(args.model, args.out,
                             ExportConfig(tokenizer_pre=args.tokenizer_pre))
    export_s = time.perf_counter() - started
    dataset = load_from_disk(str(args.data))
    splits = {s: [dict(r) for r in dataset[s]] for s in args.splits.split(",")}
    prompt_file = args.out / "bench_prompt.txt"
    prompt_file.write_text(first_prompt(paths["merged"], splits[next(iter(splits))]))
    variants = {"hf-fp32": (paths["merged"], None)}
    variants |= {f: (p, None) for f, p in paths.items() if f not in ("merged", CORRECTION)}
    variants["gguf-q4_k_m+lora"] = (paths["gguf-q4_k_m"], paths[CORRECTION])
    results: dict[str, dict] = {}
    for fmt in args.formats.split(","):
        results[fmt] = measure(fmt, *variants[fmt], splits, prompt_file, args)
    (args.out / "bench.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "export_s": export_s,
         "results": results}, indent=1))
    bandwidth = memory_bandwidth_gbs()
    print(f"\nexport took {export_s:.0f} s; {args.limit} examples per split; "
          f"accuracy in %, drop in points vs hf-fp32; memory read bandwidth "
          f"({THREADS} processes) {bandwidth:.1f} GB/s\n")
    print(table(results, args.modes, bandwidth) + "\n\n" + split_table(results))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--perf":
        fmt, path, prompt = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]).read_text()
        lora = None if sys.argv[5] == "None" else Path(sys.argv[5])
        print(json.dumps(perf_hf(path, prompt) if fmt == "hf-fp32" else
                         perf_gguf(path, prompt, lora, int(sys.argv[6]))))
        sys.exit(0)
    sys.exit(main())
