"""llama.cpp evaluation throughput: requests decoded together vs one at a time, same rows, one run.

Loads one GGUF file (the deployed Q8_0 of a `make run`) and completes the first `--rows` rows of
each test split, per mask mode, twice with the same engine: `batch_size 1` (the former path:
llama-cpp-python's `generate`, one request at a time, shared prompt prefixes kept in its KV
cache) and `--batch-size` (`toolmodal.engines.llama_batch`: requests of a wave decoded in one
forward pass per step, the shared tool block evaluated once). Prints rows/min of each path per
split and mode, the speed-up, identical outputs and exact matches of each path. Usage:

    nice .venv/bin/python bench/llamacpp_batch.py --model EXPORT/model/model-q8_0.gguf \\
        --data DATASET/hf_datasets [--rows 48] [--batch-size 8] [--modes none hard] \\
        [--call-threshold 0.4] [--max-new-tokens 160]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from datasets import load_from_disk

from toolmodal.engines import EngineConfig, Request
from toolmodal.engines.llamacpp import LlamaCppEngine
from toolmodal.scoring import calls_from_json, score_example, tools_from_json

SPLITS = ["test_seen", "test_unseen", "test_chain", "test_irrelevance"]


def run_path(engine: LlamaCppEngine, batch_size: int, requests: list[Request]):
    """Wall seconds and generations with `batch_size` (1: the one-request path)."""
    engine.config = engine.config.model_copy(update={"batch_size": batch_size})
    started = time.perf_counter()
    out = engine.generate(requests)
    return time.perf_counter() - started, out


def exact(rows: list[dict], requests: list[Request], generations) -> int:
    """Rows whose output is an exact match of their expected calls."""
    return sum(score_example(g.text, list(q.tools), list(calls_from_json(r["expected_calls"])),
                             g.ended).exact
               for r, q, g in zip(rows, requests, generations, strict=True))


def main() -> None:
    """Measure both paths per split and mode; print one JSON record per pair and a total."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a saved DatasetDict")
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--modes", nargs="+", default=["none", "hard"])
    parser.add_argument("--call-threshold", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args()
    dataset = load_from_disk(str(args.data))
    engine = LlamaCppEngine(args.model, EngineConfig(max_new_tokens=args.max_new_tokens,
                                                     call_threshold=args.call_threshold))
    totals = {"old_s": 0.0, "new_s": 0.0, "rows": 0, "identical": 0}
    for split in SPLITS:
        rows = dataset[split].to_list()[:args.rows]
        for mode in args.modes:
            requests = [Request(r["prompt"], list(tools_from_json(r["tools"])), mode)
                        for r in rows]
            run_path(engine, args.batch_size, requests[:2])  # warm-up: grammars, allocations
            old_s, old = run_path(engine, 1, requests)
            new_s, new = run_path(engine, args.batch_size, requests)
            same = sum(a.text == b.text for a, b in zip(old, new, strict=True))
            print(json.dumps({
                "split": split, "mode": mode, "rows": len(rows),
                "old_rows_per_min": round(60 * len(rows) / old_s, 1),
                "new_rows_per_min": round(60 * len(rows) / new_s, 1),
                "speedup": round(old_s / new_s, 2), "identical_outputs": same,
                "old_exact": exact(rows, requests, old), "new_exact": exact(rows, requests, new),
                "old_tokens": sum(g.n_new_tokens for g in old),
                "new_tokens": sum(g.n_new_tokens for g in new)}), flush=True)
            for key, value in (("old_s", old_s), ("new_s", new_s), ("rows", len(rows)),
                               ("identical", same)):
                totals[key] += value
    print(json.dumps({"model": str(args.model), "batch_size": args.batch_size,
                      "call_threshold": args.call_threshold, "rows": totals["rows"],
                      "old_rows_per_min": round(60 * totals["rows"] / totals["old_s"], 1),
                      "new_rows_per_min": round(60 * totals["rows"] / totals["new_s"], 1),
                      "speedup": round(totals["old_s"] / totals["new_s"], 2),
                      "identical_outputs": totals["identical"]}))


if __name__ == "__main__":
    main()
