"""Supervised tokens per second: TRL SFTTrainer (defaults) vs our trainer, in one process.

Both train the same model (reloaded from disk for each), on the same rows, with the same
completion-only loss, for the same number of optimizer steps. (a) is TRL 1.16's SFTTrainer with
its default settings (prompt-completion data, so completion-only loss; gradient checkpointing on;
its per-step entropy/accuracy metrics) except `bf16=False`: both train in fp32, as this CPU has
no bf16 (TRL's default bf16 autocast would be emulated, slower, and flatter its baseline),
(b) is `toolmodal.training.sft.train_sft`. Before
training, both losses are computed on one identical batch to show they agree. Step time excludes
model loading and tokenisation; peak RSS is sampled per phase from /proc.

    nice -n 10 .venv/bin/python bench/train_throughput.py --steps 3

Deliberately left out: LoRA and GRPO (the output layer costs the same there), GPU timing.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset, load_from_disk  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402

from toolmodal.training.config import SFTStageConfig  # noqa: E402
from toolmodal.training.masks import NONE  # noqa: E402
from toolmodal.training.metrics import MetricsLogger, read_metrics  # noqa: E402
from toolmodal.training.sft import collate, encode_rows, supervised_loss, train_sft  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples this process's resident set size every 50 ms while active."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/statm") as fh:
                self.peak = max(self.peak, int(fh.read().split()[1]) * PAGE)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class StepTimer(TrainerCallback):
    """Sums the wall time between on_step_begin and on_step_end."""

    def __init__(self) -> None:
        self.seconds, self._began = [], 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._began)


def bench_rows(args) -> Dataset:
    """steps * batch rows of the chosen split (generated on the fly when --data is not given)."""
    if args.data:
        split = load_from_disk(args.data)[args.split]
    else:
        from toolmodal.datagen import generate_dataset
        from toolmodal.datagen.config import GenerationConfig
        from toolmodal.ingest import load_catalogue

        catalogue = load_catalogue([Path("data/tool_schemas")])
        split = generate_dataset(catalogue, GenerationConfig(examples=200, seed=0))[0][args.split]
    rows = split.select(range(args.steps * args.batch_size))
    return rows.select_columns(["prompt", "completion"])


def load(model_dir: str):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)


def run_trl(args, rows: Dataset, tokenizer, out: Path) -> tuple[float, float, int]:
    """(loss on the first batch, summed step seconds, peak RSS) for TRL's SFTTrainer."""
    timer = StepTimer()
    config = SFTConfig(output_dir=str(out / "trl"), max_steps=args.steps,
                       per_device_train_batch_size=args.batch_size, learning_rate=2e-4,
                       max_length=args.max_length, logging_steps=1, save_strategy="no",
                       report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
                       bf16=False)  # TRL defaults to bf16 autocast: emulated on this CPU
    with PeakRSS() as rss:
        trainer = SFTTrainer(model=load(args.model), args=config, train_dataset=rows,
                             processing_class=tokenizer, callbacks=[timer])
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(args.batch_size)])
        with torch.no_grad():
            first_loss = float(trainer.compute_loss(trainer.model, batch))
        trainer.train()
    del trainer
    gc.collect()
    return first_loss, sum(timer.seconds), rss.peak


def run_ours(args, rows: Dataset, tokenizer, out: Path) -> tuple[float, float, int]:
    """(loss on the first batch, summed step seconds, peak RSS) for our trainer."""
    config = SFTStageConfig(stage="sft_selection", max_steps=args.steps,
                            per_device_train_batch_size=args.batch_size,
                            max_length=args.max_length, save_steps=10**6, seed=0)
    examples, _ = encode_rows(tokenizer, rows, args.max_length)
    with PeakRSS() as rss:
        model = load(args.model)
        with torch.no_grad():
            parts = supervised_loss(model, collate(examples[:args.batch_size],
                                                   tokenizer.pad_token_id))
        logger = MetricsLogger(out / "ours" / "metrics.jsonl")
        train_sft(model, tokenizer, examples, config, out / "ours", logger)
    seconds = sum(m["step_seconds"] for m in read_metrics(out / "ours" / "metrics.jsonl"))
    return parts.plain / parts.tokens, seconds, rss.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=".cache/models/gemma3-270m-toolmodal")
    parser.add_argument("--data", default=None, help="dataset folder (default: generate 200)")
    parser.add_argument("--split", default="joint_train")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=4096)
    args = parser.parse_args()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = bench_rows(args)
    examples, dropped = encode_rows(tokenizer, rows, args.max_length)
    if dropped:
        raise SystemExit(f"{dropped} rows exceed --max-length {args.max_length}; raise it")
    tokens = sum(sum(k != NONE for k in e.kinds[1:]) for e in examples)  # labels after shift
    total = sum(len(e.input_ids) for e in examples)
    print(f"rows={len(rows)} steps={args.steps} batch={args.batch_size} tokens={total} "
          f"supervised={tokens} threads={torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        trl_loss, trl_s, trl_rss = run_trl(args, rows, tokenizer, Path(tmp))
        print(f"(a) TRL SFTTrainer: {trl_s:.1f} s, {tokens / trl_s:.1f} supervised tok/s, "
              f"first-batch loss {trl_loss:.4f}, peak RSS {trl_rss / 2**30:.2f} GiB", flush=True)
        our_loss, our_s, our_rss = run_ours(args, rows, tokenizer, Path(tmp))
        print(f"(b) ours:           {our_s:.1f} s, {tokens / our_s:.1f} supervised tok/s, "
              f"first-batch loss {our_loss:.4f}, peak RSS {our_rss / 2**30:.2f} GiB", flush=True)
    print(f"ratio (b)/(a) = {trl_s / our_s:.2f}")


if __name__ == "__main__":
    main()
