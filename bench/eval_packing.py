"""The SFT stages' in-training evaluations with shared-prefix packing vs padded rows, same rows.

Each SFT stage measures its learning curve (teacher-forced first-call accuracy on `curve_rows`
validation rows, at every `curve_every_steps`-th step, the start and the end) and its
validation loss (`max_eval_samples` rows, at the end). Both were one padded forward over whole
rows, each repeating its group's tool block; packed, each group's rows run as one sequence with
the block once, as training does. This prints, for each arm on the same rows of one model:
seconds, the accuracy and the loss (equal up to fp32 rounding), and the speed-up.

    .venv/bin/python bench/eval_packing.py --model STAGE_FOLDER --data DATASET_FOLDER \\
        [--split joint_validation] [--rows 24] [--repeat 2]

STAGE_FOLDER is a trained stage's folder (model and tokenizer, e.g.
`.cache/work/sft_joint/*/stage`); DATASET_FOLDER the validated dataset (`hf_datasets`).
Deliberately left out: other stages' row counts (pass `--split`) and GPU timing.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import load_from_disk  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from toolmodal.training.curve import first_call_accuracy  # noqa: E402
from toolmodal.training.sft import encode_rows, evaluate_loss  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    """The value of `fn()` and its best wall time over `repeat` calls."""
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return value, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="joint_validation")
    parser.add_argument("--rows", type=int, default=24, help="curve_rows / max_eval_samples")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2, help="timed calls per arm (best kept)")
    args = parser.parse_args()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    rows = [dict(r) for r in load_from_disk(str(args.data))[args.split]][:args.rows]
    examples, _ = encode_rows(tokenizer, rows, 4096)
    groups = len({e.group for e in examples})
    print(f"{args.split}: {len(examples)} rows in {groups} groups, "
          f"{sum(len(e.input_ids) for e in examples)} tokens unpacked")
    pad = tokenizer.pad_token_id
    results = {}
    for packed in (False, True):
        accuracy, curve_s = timed(lambda p=packed: first_call_accuracy(
            model, examples, pad, args.batch_size, packed=p), args.repeat)
        loss, loss_s = timed(lambda p=packed: evaluate_loss(
            model, examples, pad, args.batch_size, packed=p), args.repeat)
        results[packed] = (curve_s, loss_s)
        print(f"{'packed' if packed else 'padded'}: curve point {curve_s:.1f} s "
              f"(first-call accuracy {accuracy:.4f}), validation loss {loss_s:.1f} s "
              f"({loss:.5f})", flush=True)
    (curve_ref, loss_ref), (curve, loss_s) = results[False], results[True]
    print(f"speed-up: curve point {curve_ref / curve:.2f}x, validation loss "
          f"{loss_ref / loss_s:.2f}x")


if __name__ == "__main__":
    main()
