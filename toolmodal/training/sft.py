"""Our supervised fine-tuning loop, built for the CPU: shared prefixes once, logits where needed.

Each step runs the decoder body and applies the 262k-token output layer only at supervised
positions (`toolmodal.training.loss`). With `packing` (the default), the rows of an optimizer
step that share their system prompt and tools are trained as one sequence per group, the shared
prefix computed once (`toolmodal.training.packing`); the plan then keeps each group's rows
adjacent. Without it, rows are bucketed by length to cut padding. Packing changes the compute,
never the result: the same rows make the same step. No per-step full-vocabulary metric (entropy,
token accuracy) is computed. The loss is the weighted sum of token cross-entropies over the step's
supervised tokens divided by the sum of their weights (1.0 everywhere at 0.5/0.5, which is TRL
SFTTrainer's completion-only loss); the unweighted mean NLL is logged beside it as `nll`.
Checkpoints (trainable weights, optimizer, scheduler, RNG, step) are written atomically every
`save_steps`; rerunning with the same output folder resumes from the last one. With
`curve_every_steps`, a learning-curve point (`toolmodal.training.curve`) is recorded at step 0,
every N steps and at the end.

Data-parallel under `accelerate launch` (`num_processes` > 1): every process builds the same plan
of micro-batches and takes its own slice of each optimizer step's (process i the i-th), the
loss goes through DDP (prepared by `accelerate.Accelerator`), and each token's loss is divided by
the token weight of the whole step over all processes, so an update equals that of one process
on the union of the batches. Only the main process writes checkpoints and metrics. In a single
process the Accelerator adds nothing (no wrapper, no collective), so the loop is unchanged.

`train_sft` is one long loop on purpose: the steps of an optimizer update read best in order.
Deliberately left out: model loading and trainable-parameter choice (`backend`), datasets on disk
(the command), starting the processes (`launch`), fp16 (it needs a grad scaler) and sharded
models (FSDP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import get_scheduler

from toolmodal.training.config import SFTStageConfig
from toolmodal.training.curve import eval_batches, first_call_accuracy, write_curve
from toolmodal.training.loss import LossParts, SupervisedLoss, batch_weight, supervised_loss
from toolmodal.training.masks import EncodedExample, encode_example
from toolmodal.training.metrics import MetricsLogger
from toolmodal.training.packing import (
    collate,
    collate_packed,
    group_batches,
    group_keys,
    pack_batch,
)

log = logging.getLogger(__name__)
DONE_FILE = "training_done.json"


def encode_rows(tokenizer, rows: Sequence[dict],
                max_length: int) -> tuple[list[EncodedExample], int]:
    """Encode prompt-completion rows (with their packing group, see `packing.group_keys`);
    drop (and count) those longer than `max_length`."""
    kept, dropped = [], 0
    for row, group in zip(rows, group_keys(rows), strict=True):
        example = encode_example(tokenizer, row["prompt"], row["completion"])
        if len(example.input_ids) > max_length:
            dropped += 1
            continue
        kept.append(dataclasses.replace(example, group=group))
    if dropped:
        log.warning("dropped %d of %d examples longer than max_length=%d",
                    dropped, len(rows), max_length)
    return kept, dropped


def length_batches(lengths: list[int], batch_size: int, bucket_size: int,
                   seed: int) -> list[list[int]]:
    """Shuffled batches of indices; within each bucket of `bucket_size` batches, similar lengths."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * bucket_size
    batches = []
    for i in range(0, len(order), chunk):
        bucket = sorted(order[i:i + chunk], key=lengths.__getitem__)
        batches += [bucket[j:j + batch_size] for j in range(0, len(bucket), batch_size)]
    rng.shuffle(batches)
    return batches


def micro_batches(examples: list[EncodedExample], pad_id: int,
                  config: SFTStageConfig) -> list[dict[str, torch.Tensor]]:
    """The forward passes of one micro-batch: with `packing`, its packed sequences (one per
    group) padded into one batch, or each on its own with `split_packed` (no padding to the
    longest; the loss is normalised over the whole step, so the gradients are the same);
    without packing, the padded rows."""
    if not config.packing:
        return [collate(examples, pad_id)]
    sequences = pack_batch(examples, [e.group for e in examples])
    if config.split_packed:
        return [collate_packed([sequence], pad_id) for sequence in sequences]
    return [collate_packed(sequences, pad_id)]


def make_accelerator(config: SFTStageConfig) -> Accelerator:
    """This process's Accelerator (CPU without CUDA: a gloo group under `accelerate launch`).

    Raises:
        ValueError: If the launch's process count differs from `config.num_processes`.
    """
    accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                              mixed_precision=config.mixed_precision)
    if accelerator.num_processes != config.num_processes:
        raise ValueError(f"stage {config.stage}: num_processes={config.num_processes} in the "
                         f"config, but {accelerator.num_processes} process(es) were launched")
    return accelerator


def _optimizer(model, config: SFTStageConfig, total_steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate, fused=True)
    scheduler = get_scheduler(config.lr_scheduler_type, optimizer,
                              num_warmup_steps=config.warmup_steps,
                              num_training_steps=total_steps)
    return optimizer, scheduler


def _plan(examples: list[EncodedExample], config: SFTStageConfig) -> list[list[int]]:
    """Micro-batches for the whole run (all processes), epoch after epoch, each epoch shuffled by
    seed + epoch (groups kept adjacent with `packing`, else length buckets); optimizer step s uses
    the `gradient_accumulation_steps * num_processes` batches from index s times that. An epoch
    is as many batches as the first epoch's plan holds (first-fit group batches may hold fewer
    rows than the batch size, so more than rows / batch size)."""
    per_step = config.gradient_accumulation_steps * config.num_processes
    lengths, keys = [len(e.input_ids) for e in examples], [e.group for e in examples]

    def epoch_batches(epoch: int) -> list[list[int]]:
        seed = config.seed + epoch
        if config.packing:
            return group_batches(keys, config.per_device_train_batch_size, seed)
        return length_batches(lengths, config.per_device_train_batch_size, config.bucket_size,
                              seed)

    micro = epoch_batches(0)
    total = (config.max_steps if config.max_steps > 0
             else math.ceil(config.num_train_epochs * math.ceil(len(micro) / per_step)))
    epoch = 1
    while len(micro) < total * per_step:
        micro += epoch_batches(epoch)
        epoch += 1
    return micro[:total * per_step]


def _all_processes_sum(accelerator: Accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor([value], dtype=torch.float64,
                                                 device=accelerator.device), "sum"))


def accumulate(accelerator: Accelerator, loss_module, micro: list[dict[str, torch.Tensor]],
               tool_weight: float, argument_weight: float,
               decision_weight: float = 1.0) -> LossParts:
    """Forward and backward over this process's micro-batches of one optimizer step.

    Each weighted loss is divided by the step's token weight over all processes and multiplied
    by the process count, because DDP averages gradients (synchronised at the last micro-batch).

    Returns:
        The step's sums over all processes; `weighted` holds the step's (normalised) loss.
    """
    local_weight = sum(batch_weight(b, tool_weight, argument_weight, decision_weight)
                       for b in micro)
    weight = _all_processes_sum(accelerator, local_weight)
    step_loss, plain, tokens = 0.0, 0.0, 0
    for i, batch in enumerate(micro):
        last = i == len(micro) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(loss_module):
            parts = loss_module(batch, tool_weight, argument_weight, decision_weight)
            loss = parts.weighted / max(weight, 1e-12)
            accelerator.backward(loss * accelerator.num_processes)
        step_loss += float(loss.detach())
        plain, tokens = plain + parts.plain, tokens + parts.tokens
    return LossParts(torch.tensor(_all_processes_sum(accelerator, step_loss)),
                     _all_processes_sum(accelerator, plain),
                     int(_all_processes_sum(accelerator, tokens)), weight)


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters that train (tied weights appear once)."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(root: Path, step: int, model, optimizer, scheduler) -> Path:
    """Write checkpoint-<step> atomically (temp folder, then rename) and drop older ones."""
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trainable_state(model), tmp / "model.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
                "step": step}, tmp / "trainer.pt")
    for path in tmp.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in root.glob("checkpoint-*"):
        if old != final:
            shutil.rmtree(old)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint with the highest step under `root` (temp folders are ignored)."""
    found = sorted(root.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def load_checkpoint(path: Path, model, optimizer, scheduler) -> int:
    """Restore weights, optimizer, scheduler and RNG from `path`; returns its step."""
    weights = torch.load(path / "model.pt", weights_only=True)
    expected = set(trainable_state(model))
    if set(weights) != expected:
        raise ValueError(f"{path}: checkpoint parameters do not match the model's trainable ones "
                         f"(missing {sorted(expected - set(weights))[:3]}, "
                         f"unexpected {sorted(set(weights) - expected)[:3]})")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in weights:
                param.copy_(weights[name])
    state = torch.load(path / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    return int(state["step"])


@torch.no_grad()
def evaluate_loss(model, examples: list[EncodedExample], pad_id: int, batch_size: int,
                  packed: bool = False) -> float:
    """Unweighted mean token cross-entropy over the supervised tokens of `examples` (padded
    batches of similar lengths, or with `packed` one packed sequence per group)."""
    model.eval()
    total, count = 0.0, 0
    ordered = sorted(examples, key=lambda e: len(e.input_ids))
    for batch in eval_batches(examples if packed else ordered, pad_id, batch_size, packed):
        parts = supervised_loss(model, batch)
        total, count = total + parts.plain, count + parts.tokens
    model.train()
    return total / max(count, 1)


def train_sft(model, tokenizer, train: list[EncodedExample], config: SFTStageConfig, out: Path,
              logger: MetricsLogger, validation: list[EncodedExample] | None = None,
              stop_after: int | None = None) -> dict:
    """Run (or resume) one SFT stage; checkpoints go to `out/checkpoints`.

    Args:
        model: A causal LM (optionally a PeftModel) whose trainable parameters require grad.
        tokenizer: Its tokenizer (for the pad id).
        train: Encoded training examples.
        config: The stage's settings.
        out: Output folder of the stage.
        logger: Receives loss, learning_rate, grad_norm, tokens/s per logged step.
        validation: Encoded validation examples; their loss is logged at the end.
        stop_after: Stop (as if killed) right after this optimizer step's checkpoint; for tests.

    Returns:
        Summary: global_step, resumed_from, final train loss and (main process) eval_loss.

    Raises:
        ValueError: If there are no examples, or the launch's process count is not the config's.
    """
    if not train:
        raise ValueError(f"stage {config.stage}: no training examples")
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    accelerator = make_accelerator(config)
    loss_module = accelerator.prepare(SupervisedLoss(model))  # DDP only with > 1 process
    plan = _plan(train, config)
    accum, rank = config.gradient_accumulation_steps, accelerator.process_index
    total_steps = len(plan) // (accum * config.num_processes)
    optimizer, scheduler = _optimizer(model, config, total_steps)
    ckpt_root = Path(out) / "checkpoints"
    last = latest_checkpoint(ckpt_root)
    start = load_checkpoint(last, model, optimizer, scheduler) if last else 0
    if last:
        log.info("resuming %s from %s (step %d of %d)", config.stage, last, start, total_steps)
    model.train()
    pad_id = tokenizer.pad_token_id
    curve = _CurvePoints(model, (validation or [])[:config.curve_rows], pad_id, config, logger,
                         accelerator.is_main_process, plan)
    if start == 0:
        curve.record(0, final=True)
    summary = {"global_step": start, "resumed_from": start, "total_steps": total_steps}
    for step in range(start, total_steps):
        began = time.perf_counter()
        tool_w, arg_w = config.loss_weights(step / total_steps)
        first = (step * config.num_processes + rank) * accum  # this process's share
        micro = [batch for ids in plan[first:first + accum]
                 for batch in micro_batches([train[i] for i in ids], pad_id, config)]
        parts = accumulate(accelerator, loss_module, micro, tool_w, arg_w, config.decision_weight)
        grad_norm = accelerator.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], config.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        summary.update(global_step=step + 1, loss=float(parts.weighted))
        logged = (step + 1) % config.logging_steps == 0 or step + 1 == total_steps
        if logged and accelerator.is_main_process:
            logger.log(step + 1, {"loss": float(parts.weighted),
                                  "nll": parts.plain / max(parts.tokens, 1),
                                  "learning_rate": lr, "grad_norm": float(grad_norm),
                                  "tool_weight": tool_w, "argument_weight": arg_w,
                                  "supervised_tokens": parts.tokens, "step_seconds": seconds,
                                  "supervised_tokens_per_second": parts.tokens / seconds})
        curve.record(step + 1, final=step + 1 == total_steps)
        if (step + 1) % config.save_steps == 0 or step + 1 == total_steps:
            if accelerator.is_main_process:
                save_checkpoint(ckpt_root, step + 1, model, optimizer, scheduler)
            accelerator.wait_for_everyone()
        if stop_after is not None and step + 1 >= stop_after:
            return summary
    if validation and accelerator.is_main_process:  # the other processes wait in run_stage
        summary["eval_loss"] = evaluate_loss(model, validation, pad_id,
                                             config.per_device_train_batch_size, config.packing)
        logger.log(summary["global_step"], {"eval_loss": summary["eval_loss"]})
        summary["learning_curve"] = write_curve(Path(out), logger.path, config.stage)
    return summary


class _CurvePoints:
    """Records learning-curve points (main process, with validation rows and a period set)."""

    def __init__(self, model, rows: list[EncodedExample], pad_id: int, config: SFTStageConfig,
                 logger: MetricsLogger, main: bool, plan: list[list[int]]) -> None:
        self.model, self.rows, self.pad_id, self.logger = model, rows, pad_id, logger
        self.on = main and bool(rows) and config.curve_every_steps > 0
        per_step = config.gradient_accumulation_steps * config.num_processes
        sizes = [sum(map(len, plan[i:i + per_step])) for i in range(0, len(plan), per_step)]
        self.seen = [0, *itertools.accumulate(sizes)]  # training rows before each step
        self.batch_size, self.every = config.per_device_train_batch_size, config.curve_every_steps
        self.packed = config.packing

    def record(self, step: int, final: bool) -> None:
        """A point at every `curve_every_steps`-th step and wherever `final` (start, end)."""
        if not self.on or not (final or step % self.every == 0):
            return
        accuracy = first_call_accuracy(self.model, self.rows, self.pad_id, self.batch_size,
                                       self.packed)
        self.logger.log(step, {"curve_first_call_accuracy": accuracy,
                               "curve_rows": len(self.rows),
                               "examples_seen": self.seen[step]})


def write_done(out: Path, summary: dict) -> None:
    """Mark the stage complete (written last, atomically)."""
    tmp = Path(out) / f".{DONE_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, Path(out) / DONE_FILE)
