"""Evaluation throughput: the former generation path vs the shared-prefix path, same rows, one run.

Generates a dataset with the cpu overlay's settings (600 examples, 2-3 tools per prompt), takes
the first `--rows`/4 rows of each test split (chains and irrelevance in the mix), and completes
them unmasked with one loaded model twice: `prefix_cache=False` (the former path: batches in
dataset order, `generate()` until the slowest row ends) and the default (requests sorted so
shared prompt prefixes are adjacent, the prefix's KV cache reused, rows leaving the batch at
end-of-turn). Prints rows/min of each, the speed-up, how many outputs are
identical, and the prompt-token share the prefix cache saved. Usage:

    nice .venv/bin/python bench/eval_throughput.py [--model /work/prepared-base] [--rows 32]
        [--threads 2] [--batch-size 6] [--max-new-tokens 96] [--dataset SAVED_DATASET_DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from datasets import load_from_disk

from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.engines import EngineConfig, Request
from toolmodal.engines.transformers_engine import TransformersEngine, shared_prefix_lengths
from toolmodal.ingest import load_catalogue
from toolmodal.scoring import tools_from_json

SPLITS = ["test_seen", "test_unseen", "test_chain", "test_irrelevance"]


def test_rows(schemas: Path, n: int, seed: int, saved: Path | None) -> list[dict]:
    """The first n/4 rows of each test split (as evaluation takes them: `limit`), of the saved
    dataset (if given) or of one generated with the cpu overlay's settings."""
    if saved is not None:
        dataset = load_from_disk(str(saved))
    else:
        config = GenerationConfig(examples=600, min_tools=2, max_tools=3, max_tokens=1024,
                                  seed=seed)
        dataset, _ = generate_dataset(load_catalogue([schemas]), config)
    share = n // len(SPLITS)
    return [row for split in SPLITS for row in dataset[split].to_list()[:share]]


def timed(engine: TransformersEngine, requests: list[Request]) -> tuple[float, list]:
    """Wall seconds and generations of one engine call."""
    started = time.perf_counter()
    out = engine.generate(requests)
    return time.perf_counter() - started, out


def shared_share(engine: TransformersEngine, requests: list[Request]) -> float:
    """Share of prompt tokens the prefix cache does not recompute."""
    ids = [engine.prompt_ids(r) for r in requests]
    shared = shared_prefix_lengths(requests, ids)
    computed_once = {tuple(row[:n]) for row, n in zip(ids, shared, strict=True)}
    return (sum(shared) - sum(map(len, computed_once))) / sum(map(len, ids))


def main() -> None:
    """Measure both paths and print one JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/work/prepared-base")
    parser.add_argument("--schemas", default="data/tool_schemas")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="a saved DatasetDict (save_to_disk) instead of generating one")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = test_rows(Path(args.schemas), args.rows, args.seed, args.dataset)
    requests = [Request(r["prompt"], list(tools_from_json(r["tools"]))) for r in rows]
    config = EngineConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    engine = TransformersEngine(Path(args.model), config)
    engine.generate(requests[:1])  # warm-up: first-call allocations count in neither path
    engine.config = config.model_copy(update={"prefix_cache": False})
    old_s, old = timed(engine, requests)
    print(f"old path: {len(rows)} rows in {old_s:.1f} s", flush=True)
    engine.config = config
    engine._prefixes.clear()
    new_s, new = timed(engine, requests)
    lengths = [len(engine.prompt_ids(r)) for r in requests]
    print(json.dumps({
        "model": args.model, "dataset": str(args.dataset or "generated"), "rows": len(rows),
        "threads": args.threads,
        "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "mean_prompt_tokens": round(sum(lengths) / len(lengths)),
        "prompt_tokens_reused": round(shared_share(engine, requests), 3),
        "old_rows_per_min": round(60 * len(rows) / old_s, 1),
        "new_rows_per_min": round(60 * len(rows) / new_s, 1),
        "speedup": round(old_s / new_s, 2),
        "old_generated_tokens": sum(g.n_new_tokens for g in old),
        "new_generated_tokens": sum(g.n_new_tokens for g in new),
        "ended_at_end_of_turn": sum(g.ended for g in new),
        "identical_outputs": sum(a.text == b.text for a, b in zip(old, new, strict=True)),
        "new_mean_latency_s": round(sum(g.seconds for g in new) / len(new), 2),
    }, indent=1))


if __name__ == "__main__":
    main()
