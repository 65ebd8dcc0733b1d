"""Supervised tokens/s: our SFT trainer with shared-prefix packing vs without, on the same rows.

Three arms: unpacked (padded rows), packed (one packed sequence per group, all of a batch padded
into one forward), and packed + `split_packed` (each packed sequence its own forward, no padding).

All arms train the same model (reloaded from disk for each) for the same optimizer steps on the
same rows, with the same loss: the rows are the first `--steps` batches of the packed trainer's
own plan over the whole split (groups adjacent, as in a real epoch), so the unpacked trainer sees
exactly those rows too (its plan orders them by length buckets). Packing is the only difference
(`SFTStageConfig.packing`, `split_packed`). Rows are grouped by the data's `group` column, else by
their first prompt message (system prompt + tools). Step time excludes model loading and
tokenisation. `--trainable` applies to all arms (e.g. embeddings_frozen: packing on top of it).

    .venv/bin/python -m toolmodal.cli data generate --schemas data/tool_schemas \
        --out /tmp/pack-data --examples 600 --config gen.yaml   # min_tools 2, max_tools 3
    nice .venv/bin/python bench/packing_speed.py --model /work/prepared-base \
        --data /tmp/pack-data --steps 3

Deliberately left out: multi-process runs and GPU timing.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import load_from_disk  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from toolmodal.training.backend import load_for_training  # noqa: E402
from toolmodal.training.config import SFTStageConfig  # noqa: E402
from toolmodal.training.metrics import MetricsLogger, read_metrics  # noqa: E402
from toolmodal.training.packing import group_batches, shared_prefix  # noqa: E402
from toolmodal.training.sft import encode_rows, train_sft  # noqa: E402


def bench_rows(examples: list, batch_size: int, steps: int, seed: int) -> list:
    """The rows the packed trainer's first `steps` batches would hold."""
    batches = group_batches([e.group for e in examples], batch_size, seed)[:steps]
    return [examples[i] for batch in batches for i in batch]


def run(model_dir: Path, rows: list, config: SFTStageConfig, out: Path) -> dict:
    """Train `config` on `rows`; supervised tokens, step seconds and the mean logged loss."""
    torch.manual_seed(0)
    model, tokenizer = load_for_training(model_dir, config)
    began = time.perf_counter()
    train_sft(model, tokenizer, rows, config, out, MetricsLogger(out / "metrics.jsonl"))
    wall = time.perf_counter() - began
    steps = [m for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    tokens = sum(m["supervised_tokens"] for m in steps)
    seconds = sum(m["step_seconds"] for m in steps)
    return {"tokens": tokens, "seconds": seconds, "wall": wall,
            "nll": sum(m["nll"] * m["supervised_tokens"] for m in steps) / tokens}


def describe(rows: list, batch_size: int) -> str:
    """Group sizes and token counts of the bench rows."""
    sizes = collections.Counter(collections.Counter(e.group for e in rows).values())
    total = sum(len(e.input_ids) for e in rows)
    packed = 0
    for ids in group_batches([e.group for e in rows], batch_size, seed=0):  # the trainer's plan
        batch = [rows[i] for i in ids]
        for key in dict.fromkeys(e.group for e in batch):
            members = [e for e in batch if e.group == key]
            n = shared_prefix(members)
            packed += n + sum(len(e.input_ids) - n for e in members)
    return (f"{len(rows)} rows, group sizes {dict(sorted(sizes.items()))}, "
            f"input tokens {total} unpacked vs {packed} packed ({total / packed:.2f}x fewer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("/work/prepared-base"))
    parser.add_argument("--data", type=Path, required=True, help="toolmodal data generate output")
    parser.add_argument("--split", default="joint_train")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--trainable", default="full", choices=["full", "embeddings_frozen",
                                                                 "lora"])
    parser.add_argument("--arms", default="unpacked,packed,packed+split",
                        help="comma-separated subset of unpacked, packed, packed+split")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    examples, _ = encode_rows(tokenizer, load_from_disk(str(args.data))[args.split],
                              args.max_length)
    rows = bench_rows(examples, args.batch_size, args.steps, seed=0)
    print(f"{args.split}: {describe(rows, args.batch_size)}; trainable={args.trainable}")
    arms = {"unpacked": (False, False), "packed": (True, False), "packed+split": (True, True)}
    arms = {name: arms[name] for name in args.arms.split(",")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (packing, split) in arms.items():
            config = SFTStageConfig(stage="sft_joint", max_steps=args.steps, packing=packing,
                                    split_packed=split,
                                    per_device_train_batch_size=args.batch_size,
                                    learning_rate=1e-5, save_steps=10**6, seed=0,
                                    loss_weight_schedule=[], max_length=args.max_length,
                                    trainable=args.trainable)
            results[name] = run(args.model, rows, config, Path(tmp) / name.replace("+", "-"))
    print(f"{'trainer':<14}{'sup. tokens':>12}{'step s':>9}{'tokens/s':>10}{'mean nll':>10}")
    for name, r in results.items():
        print(f"{name:<14}{r['tokens']:>12}{r['seconds']:>9.1f}"
              f"{r['tokens'] / r['seconds']:>10.1f}{r['nll']:>10.4f}")
    speed = {k: r["tokens"] / r["seconds"] for k, r in results.items()}
    names = list(speed)
    for i, name in enumerate(names):
        for base in names[:i]:
            print(f"{name} / {base}: {speed[name] / speed[base]:.2f}x supervised tokens/s")


if __name__ == "__main__":
    main()
