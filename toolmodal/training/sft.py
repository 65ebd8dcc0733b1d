"""Our supervised fine-tuning loop, built for the CPU: logits only where the loss needs them.

With a 262k-token vocabulary the output layer costs more than the whole decoder body, yet only
the assistant completion (a few dozen tokens per example) is supervised. So each step runs the
decoder body, gathers the hidden states at positions whose next token is supervised, and applies
the output layer there only. Examples are bucketed by length to cut padding, and no per-step
full-vocabulary metric (entropy, token accuracy) is computed. The loss equals TRL SFTTrainer's
completion-only loss (sum of token cross-entropies over the supervised tokens of the optimizer
step, divided by their count), times the optional tool/argument token weights (1.0 everywhere at
0.5/0.5). Checkpoints (trainable weights, optimizer, scheduler, RNG, step) are written atomically
every `save_steps`; rerunning with the same output folder resumes from the last one.

Data-parallel under `accelerate launch` (`num_processes` > 1): every process builds the same plan
of micro-batches and takes its own slice of each optimizer step's (process i the i-th), the
loss goes through DDP (prepared by `accelerate.Accelerator`), and each token's loss is divided by
the supervised-token count of the whole step over all processes, so an update equals that of one
process on the union of the batches. Only the main process writes checkpoints and metrics. In a
single process the Accelerator adds nothing (no wrapper, no collective), so the loop is unchanged.

`train_sft` is one long loop on purpose: the steps of an optimizer update read best in order.
Deliberately left out: model loading and LoRA wrapping (`backend`), datasets on disk (the command),
starting the processes (`launch`), fp16 (it needs a grad scaler) and sharded models (FSDP).
"""

from __future__ import annotations

import contextlib
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
import torch.nn.functional as F
from accelerate import Accelerator
from peft import PeftModel
from transformers import get_scheduler

from toolmodal.training.config import SFTStageConfig
from toolmodal.training.masks import ARGS, IGNORE, NAME, NONE, TEXT, EncodedExample, encode_example
from toolmodal.training.metrics import MetricsLogger

log = logging.getLogger(__name__)
DONE_FILE = "training_done.json"


def encode_rows(tokenizer, rows: Sequence[dict],
                max_length: int) -> tuple[list[EncodedExample], int]:
    """Encode prompt-completion rows; drop (and count) those longer than `max_length`."""
    kept, dropped = [], 0
    for row in rows:
        example = encode_example(tokenizer, row["prompt"], row["completion"])
        if len(example.input_ids) > max_length:
            dropped += 1
            continue
        kept.append(example)
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


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding), kinds."""
    width = max(len(e.input_ids) for e in examples)

    def pad(seq: list[int], value: int) -> list[int]:
        return seq + [value] * (width - len(seq))

    return {
        "input_ids": torch.tensor([pad(e.input_ids, pad_id) for e in examples]),
        "attention_mask": torch.tensor([pad([1] * len(e.input_ids), 0) for e in examples]),
        "labels": torch.tensor([pad(e.labels, IGNORE) for e in examples]),
        "kinds": torch.tensor([pad(e.kinds, NONE) for e in examples]),
    }


def supervised_loss(model, batch: dict[str, torch.Tensor], tool_weight: float = 0.5,
                    argument_weight: float = 0.5) -> tuple[torch.Tensor, int]:
    """Weighted sum of token cross-entropies over supervised tokens, and their count.

    The output layer (and Gemma's final logit soft-capping) is applied only at positions whose
    next token is supervised.
    """
    causal_lm = model.get_base_model() if isinstance(model, PeftModel) else model
    device = causal_lm.lm_head.weight.device
    hidden = causal_lm.model(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device)).last_hidden_state
    targets = batch["labels"][:, 1:].to(device)
    selected = targets != IGNORE
    logits = causal_lm.lm_head(hidden[:, :-1][selected]).float()
    cap = causal_lm.config.final_logit_softcapping
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    token_loss = F.cross_entropy(logits, targets[selected], reduction="none")
    table = torch.zeros(ARGS + 1, device=device)
    table[TEXT], table[NAME], table[ARGS] = 1.0, 2.0 * tool_weight, 2.0 * argument_weight
    weights = table[batch["kinds"][:, 1:].to(device)[selected]]
    return (token_loss * weights).sum(), int(selected.sum())


class SupervisedLoss(torch.nn.Module):
    """`supervised_loss` as a module, so DDP's forward (and its gradient hooks) wraps it."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], tool_weight: float,
                argument_weight: float) -> tuple[torch.Tensor, int]:
        return supervised_loss(self.model, batch, tool_weight, argument_weight)


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


def _plan(n_examples: int, lengths: list[int], config: SFTStageConfig) -> list[list[int]]:
    """Micro-batches for the whole run (all processes), epoch after epoch, each epoch shuffled by
    seed + epoch; optimizer step s uses the `gradient_accumulation_steps * num_processes` batches
    from index s times that."""
    per_step = config.gradient_accumulation_steps * config.num_processes
    per_epoch = math.ceil(n_examples / config.per_device_train_batch_size)
    total = (config.max_steps if config.max_steps > 0
             else math.ceil(config.num_train_epochs * math.ceil(per_epoch / per_step)))
    micro, epoch = [], 0
    while len(micro) < total * per_step:
        micro += length_batches(lengths, config.per_device_train_batch_size,
                                config.bucket_size, config.seed + epoch)
        epoch += 1
    return micro[:total * per_step]


def _all_processes_sum(accelerator: Accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor([value], dtype=torch.float64,
                                                 device=accelerator.device), "sum"))


def accumulate(accelerator: Accelerator, loss_module, micro: list[dict[str, torch.Tensor]],
               tool_weight: float, argument_weight: float) -> tuple[float, int]:
    """Forward and backward over this process's micro-batches of one optimizer step.

    Each loss is divided by the step's supervised tokens over all processes and multiplied by the
    process count, because DDP averages gradients (synchronised at the last micro-batch only).

    Returns:
        The step's loss and supervised-token count, both over all processes.
    """
    local = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in micro)
    n_tokens = int(_all_processes_sum(accelerator, local))
    step_loss = 0.0
    for i, batch in enumerate(micro):
        last = i == len(micro) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(loss_module):
            loss_sum, _ = loss_module(batch, tool_weight, argument_weight)
            loss = loss_sum / max(n_tokens, 1)
            accelerator.backward(loss * accelerator.num_processes)
        step_loss += float(loss.detach())
    return _all_processes_sum(accelerator, step_loss), n_tokens


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
def evaluate_loss(model, examples: list[EncodedExample], pad_id: int, batch_size: int) -> float:
    """Unweighted mean token cross-entropy over the supervised tokens of `examples`."""
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    for i in range(0, len(order), batch_size):
        loss, n = supervised_loss(model, collate([examples[j] for j in order[i:i + batch_size]],
                                                 pad_id))
        total, count = total + float(loss), count + n
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
    plan = _plan(len(train), [len(e.input_ids) for e in train], config)
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
    summary = {"global_step": start, "resumed_from": start, "total_steps": total_steps}
    for step in range(start, total_steps):
        began = time.perf_counter()
        tool_w, arg_w = config.loss_weights(step / total_steps)
        first = (step * config.num_processes + rank) * accum  # this process's share
        micro = [collate([train[i] for i in ids], pad_id) for ids in plan[first:first + accum]]
        step_loss, n_tokens = accumulate(accelerator, loss_module, micro, tool_w, arg_w)
        grad_norm = accelerator.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], config.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        summary.update(global_step=step + 1, loss=step_loss)
        logged = (step + 1) % config.logging_steps == 0 or step + 1 == total_steps
        if logged and accelerator.is_main_process:
            logger.log(step + 1, {"loss": step_loss, "learning_rate": lr,
                                  "grad_norm": float(grad_norm), "tool_weight": tool_w,
                                  "argument_weight": arg_w, "supervised_tokens": n_tokens,
                                  "step_seconds": seconds,
                                  "supervised_tokens_per_second": n_tokens / seconds})
        if (step + 1) % config.save_steps == 0 or step + 1 == total_steps:
            if accelerator.is_main_process:
                save_checkpoint(ckpt_root, step + 1, model, optimizer, scheduler)
            accelerator.wait_for_everyone()
        if stop_after is not None and step + 1 >= stop_after:
            return summary
    if validation and accelerator.is_main_process:  # the other processes wait in run_stage
        summary["eval_loss"] = evaluate_loss(model, validation, pad_id,
                                             config.per_device_train_batch_size)
        logger.log(summary["global_step"], {"eval_loss": summary["eval_loss"]})
    return summary


def write_done(out: Path, summary: dict) -> None:
    """Mark the stage complete (written last, atomically)."""
    tmp = Path(out) / f".{DONE_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, Path(out) / DONE_FILE)
