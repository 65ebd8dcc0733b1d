"""Learning-rate / schedule / trainable-parameter sweep of one SFT stage, with learning curves.

Each grid point trains the stage from the same base model on the same rows for the same number of
optimizer steps (`toolmodal.training.run.run_stage`, packing and curve settings from the stage
config), then reads its learning curve (teacher-forced first-call accuracy on validation rows vs
examples seen, see `toolmodal.training.curve`). Prints one row per point: final curve accuracy,
best accuracy, final loss, wall seconds, and accuracy gained per CPU-minute; writes
`sweep.json` and `sweep.png` (all curves on one plot) to --out.

Run by hand, on a quiet machine (figures are compared within one run only):
    .venv/bin/python bench/lr_sweep.py --model MODEL_DIR --data DATASET_DIR --out DIR \
        --stage sft_joint --steps 30 --grid 1e-5:cosine:full,5e-5:constant:full,1e-4:cosine:full

Deliberately left out: free generation (the evaluator measures that on the final model) and
parallel runs (two runs on two cores slow each other down more than they save).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import matplotlib
from datasets import load_from_disk

from toolmodal.training.config import SFTStageConfig
from toolmodal.training.metrics import read_metrics
from toolmodal.training.run import run_stage

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)


def parse_grid(text: str) -> list[tuple[float, str, str]]:
    """"lr:schedule:trainable,..." -> [(lr, schedule, trainable), ...]."""
    points = []
    for item in text.split(","):
        lr, schedule, trainable = item.split(":")
        points.append((float(lr), schedule, trainable))
    return points


def run_point(model: Path, data, out: Path, base: dict, lr: float, schedule: str,
              trainable: str) -> dict:
    """Train one grid point from scratch and summarise its curve."""
    shutil.rmtree(out, ignore_errors=True)
    config = SFTStageConfig(**{**base, "learning_rate": lr, "lr_scheduler_type": schedule,
                               "trainable": trainable})
    began = time.perf_counter()
    run_stage(model, data, config, out)
    seconds = time.perf_counter() - began
    metrics = read_metrics(out / "metrics.jsonl")
    curve = [(m["examples_seen"], m["curve_first_call_accuracy"]) for m in metrics
             if "curve_first_call_accuracy" in m]
    losses = [m["loss"] for m in metrics if "loss" in m]
    gain = curve[-1][1] - curve[0][1] if curve else float("nan")
    return {"learning_rate": lr, "schedule": schedule, "trainable": trainable,
            "curve": curve, "final_accuracy": curve[-1][1] if curve else None,
            "best_accuracy": max(a for _, a in curve) if curve else None,
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None, "seconds": round(seconds, 1),
            "accuracy_gain_per_cpu_minute": round(gain / (seconds / 60), 4)}


def plot(results: list[dict], path: Path) -> None:
    """All learning curves on one figure."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        xs, ys = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
        ax.plot(xs, ys, marker="o", label=f"{r['learning_rate']:g} {r['schedule']} "
                f"{r['trainable']}")
    ax.set_xlabel("training rows seen")
    ax.set_ylabel("teacher-forced first-call accuracy (validation)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stage", default="sft_joint")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--curve-every", type=int, default=10)
    parser.add_argument("--curve-rows", type=int, default=48)
    parser.add_argument("--grid", default="1e-5:cosine:full,5e-5:constant:full,1e-4:cosine:full")
    args = parser.parse_args()
    data = load_from_disk(str(args.data))
    base = {"stage": args.stage, "max_steps": args.steps, "per_device_train_batch_size":
            args.batch, "save_steps": 10_000, "max_length": 1024, "warmup_steps": 2,
            "curve_every_steps": args.curve_every, "curve_rows": args.curve_rows}
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for lr, schedule, trainable in parse_grid(args.grid):
        name = f"lr{lr:g}-{schedule}-{trainable}"
        results.append(run_point(args.model, data, args.out / name, base, lr, schedule,
                                 trainable))
        r = results[-1]
        print(f"{name:32s} acc {r['curve'][0][1]:.3f} -> {r['final_accuracy']:.3f} "
              f"(best {r['best_accuracy']:.3f}, n={args.curve_rows})  loss "
              f"{r['first_loss']:.3f} -> {r['final_loss']:.3f}  {r['seconds']:.0f} s  "
              f"gain/CPU-min {r['accuracy_gain_per_cpu_minute']:+.4f}", flush=True)
        (args.out / "sweep.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "sweep.png")
    print(f"wrote {args.out / 'sweep.json'} and {args.out / 'sweep.png'}")


if __name__ == "__main__":
    main()
