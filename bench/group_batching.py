"""Training rows per second: whole-group batches of larger training groups vs the former batching.

Two arms train the same model (reloaded from disk for each) with the same trainer and settings
(the cpu overlay's joint stage: full fine-tune, packing, `split_packed`, batch 8, lr 5e-5) for
the same number of optimizer steps, from the same seed:

- baseline: the data as `make run` generated it until 2026-12-02 (training groups of 4-8 rows)
  batched as the trainer did then: groups shuffled and concatenated, cut every 8 rows, so most
  batches straddle 2-3 groups and compute each one's tool block (`straddling_batches` below, the
  former `toolmodal.training.packing.group_batches`);
- new: training groups of 7-8 rows (`min_train_group_size` / `max_train_group_size`) batched
  whole by first fit (today's `group_batches`): one tool block per batch for most steps.

Per arm it prints the rows trained, the tokens the forward passes computed (shared prefixes once
per batch), the supervised tokens, the step seconds (model loading and tokenisation excluded),
rows/s and supervised tokens/s, then new / baseline. Rows/s is what buys learning per
core-second at a fixed batch size; supervised tokens/s also counts rows' length.

    .venv/bin/toolmodal data generate --schemas data/tool_schemas --out /tmp/gb/old-data \
        --config /tmp/gb/old.yaml --tokenizer MODEL   # cpu overlay's generation settings
    .venv/bin/toolmodal data generate ... --out /tmp/gb/new-data --config /tmp/gb/new.yaml
    .venv/bin/python bench/group_batching.py --model MODEL --baseline-data /tmp/gb/old-data \
        --new-data /tmp/gb/new-data --steps 8

Deliberately left out: what the batching does to accuracy (that is the `make run` comparison in
bench/results), GPU timing.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import load_from_disk  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from toolmodal.training import sft  # noqa: E402
from toolmodal.training.backend import load_for_training  # noqa: E402
from toolmodal.training.config import SFTStageConfig  # noqa: E402
from toolmodal.training.metrics import MetricsLogger, read_metrics  # noqa: E402
from toolmodal.training.packing import group_batches, pack_batch, shuffled_groups  # noqa: E402


def straddling_batches(keys: Sequence[str], batch_size: int, seed: int) -> list[list[int]]:
    """The former batching: shuffled groups concatenated and cut every `batch_size` rows."""
    rng = random.Random(seed)
    order = [i for group in shuffled_groups(keys, rng) for i in group]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def computed_tokens(examples: list, batches: list[list[int]]) -> int:
    """Tokens the packed forward passes of `batches` hold (each group's prefix once a batch)."""
    total = 0
    for batch in batches:
        members = [examples[i] for i in batch]
        total += sum(len(s.input_ids) for s in pack_batch(members, [e.group for e in members]))
    return total


def run_arm(model_dir: Path, examples: list, config: SFTStageConfig, batching, out: Path) -> dict:
    """Train `config.max_steps` steps with `batching` as the trainer's group batching."""
    torch.manual_seed(0)
    model, tokenizer = load_for_training(model_dir, config)
    plan = batching([e.group for e in examples], config.per_device_train_batch_size,
                    config.seed)[:config.max_steps]
    with mock.patch.object(sft, "group_batches", batching):
        began = time.perf_counter()
        sft.train_sft(model, tokenizer, examples, config, out, MetricsLogger(out / "m.jsonl"))
        wall = time.perf_counter() - began
    steps = [m for m in read_metrics(out / "m.jsonl") if "loss" in m]
    epoch = batching([e.group for e in examples], config.per_device_train_batch_size, config.seed)
    return {"epoch_per_row": computed_tokens(examples, epoch) / len(examples),
            "epoch_rows_per_batch": len(examples) / len(epoch),
            "rows": sum(len(b) for b in plan), "computed": computed_tokens(examples, plan),
            "supervised": sum(m["supervised_tokens"] for m in steps),
            "seconds": sum(m["step_seconds"] for m in steps), "wall": wall,
            "batches_with_one_group": sum(len({examples[i].group for i in b}) == 1
                                          for b in plan)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="prepared base model folder")
    parser.add_argument("--baseline-data", type=Path, required=True)
    parser.add_argument("--new-data", type=Path, required=True)
    parser.add_argument("--split", default="joint_train")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config = SFTStageConfig(stage="sft_joint", max_steps=args.steps, packing=True,
                            split_packed=True, per_device_train_batch_size=8,
                            learning_rate=5e-5, lr_scheduler_type="constant", save_steps=10**6,
                            seed=42, loss_weight_schedule=[], max_length=1024, trainable="full")
    arms = {"baseline": (args.baseline_data, straddling_batches),
            "new": (args.new_data, group_batches)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, batching) in arms.items():
            examples, _ = sft.encode_rows(tokenizer, load_from_disk(str(data))[args.split],
                                          config.max_length)
            results[name] = run_arm(args.model, examples, config, batching, Path(tmp) / name)
    print(f"{args.steps} optimizer steps of up to 8 rows, {args.split}")
    print(f"{'arm':<10}{'rows':>6}{'one-group':>10}{'computed tok':>13}{'sup. tok':>9}"
          f"{'step s':>8}{'rows/s':>8}{'sup tok/s':>10}")
    for name, r in results.items():
        print(f"{name:<10}{r['rows']:>6}{r['batches_with_one_group']:>10}{r['computed']:>13}"
              f"{r['supervised']:>9}{r['seconds']:>8.1f}{r['rows'] / r['seconds']:>8.3f}"
              f"{r['supervised'] / r['seconds']:>10.1f}")
    old, new = results["baseline"], results["new"]

    def ratio(key: str) -> float:
        return (new[key] / new["seconds"]) / (old[key] / old["seconds"])

    print(f"new / baseline: {ratio('rows'):.2f}x rows/s, {ratio('supervised'):.2f}x supervised "
          f"tokens/s over the timed steps")
    print("whole epoch (token counts, no training): computed tokens per row "
          f"{old['epoch_per_row']:.1f} baseline, {new['epoch_per_row']:.1f} new "
          f"({old['epoch_per_row'] / new['epoch_per_row']:.2f}x fewer); rows per batch "
          f"{old['epoch_rows_per_batch']:.2f} vs {new['epoch_rows_per_batch']:.2f}")

if __name__ == "__main__":
    main()
