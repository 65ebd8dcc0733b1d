"""One training stage end to end: dataset in, model folder out (the command and the step call it).

With `num_processes` > 1 the calling process launches the stage (`toolmodal.training.launch`)
and each launched process runs it here again; only the main one writes the outputs.
Deliberately left out: argument parsing (`toolmodal.commands.train`) and ZenML (`steps/`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from accelerate import PartialState
from datasets import Dataset, DatasetDict

from toolmodal.training.backend import load_for_training, save_model
from toolmodal.training.config import STAGE_SPLITS, GRPOStageConfig, SFTStageConfig
from toolmodal.training.launch import exit_with_launcher, launch_stage
from toolmodal.training.metrics import MetricsHook, MetricsLogger
from toolmodal.training.sft import DONE_FILE, encode_rows, train_sft, write_done

log = logging.getLogger(__name__)


def stage_splits(data: DatasetDict, stage: str) -> tuple[Dataset, Dataset]:
    """The (train, validation) splits a stage trains on; raises naming a missing split."""
    prefix = STAGE_SPLITS[stage]
    names = [f"{prefix}_train", f"{prefix}_validation"]
    missing = [n for n in names if n not in data]
    if missing:
        raise KeyError(f"dataset lacks split(s) {missing} needed by stage {stage}; "
                       f"has {sorted(data)}")
    return data[names[0]], data[names[1]]


def _budget(split: Dataset, n: int | None) -> Dataset:
    return split if n is None else split.select(range(min(n, len(split))))


def run_stage(model_dir: Path, data: DatasetDict, config: SFTStageConfig | GRPOStageConfig,
              out: Path, hooks: list[MetricsHook] | None = None) -> dict:
    """Train one stage from `model_dir` into `out` (resuming if `out` holds checkpoints).

    Called in a single process with `config.num_processes` > 1, it launches the stage on that
    many processes instead (each of which calls it again) and waits.

    Returns:
        The summary (also in `out/training_done.json`); a finished `out` is not retrained.
    """
    out = Path(out)
    done = out / DONE_FILE
    if done.is_file():
        log.info("%s already complete: %s", config.stage, done)
        return {"already_done": True}
    state = PartialState(cpu=not torch.cuda.is_available())
    train, validation = stage_splits(data, config.stage)
    if config.num_processes > 1 and state.num_processes == 1:
        splits = DatasetDict({f"{STAGE_SPLITS[config.stage]}_{name}": split for name, split
                              in (("train", train), ("validation", validation))})
        return launch_stage(model_dir, splits, config, out, hooks)
    if state.num_processes != config.num_processes:
        raise ValueError(f"stage {config.stage}: num_processes={config.num_processes} in the "
                         f"config, but {state.num_processes} process(es) were launched")
    if state.num_processes > 1:
        exit_with_launcher()
    summary = _train(model_dir, train, validation, config, out, hooks, state.is_main_process)
    state.wait_for_everyone()
    return summary


def _train(model_dir: Path, train: Dataset, validation: Dataset,
           config: SFTStageConfig | GRPOStageConfig, out: Path,
           hooks: list[MetricsHook] | None, main: bool) -> dict:
    """This process's part of the stage; only the `main` process writes files."""
    out.mkdir(parents=True, exist_ok=True)
    if main:
        (out / "stage_config.json").write_text(config.model_dump_json(indent=2))
    train = _budget(train, config.max_train_samples)
    validation = _budget(validation, config.max_eval_samples)
    logger = MetricsLogger(out / "metrics.jsonl", hooks)
    model, tokenizer = load_for_training(Path(model_dir), config)
    if isinstance(config, GRPOStageConfig):
        from toolmodal.training.grpo import train_grpo

        summary = train_grpo(model, tokenizer, train, config, out, logger)
    else:
        train_examples, dropped = encode_rows(tokenizer, train, config.max_length)
        val_examples, _ = encode_rows(tokenizer, validation, config.max_length)
        summary = train_sft(model, tokenizer, train_examples, config, out, logger, val_examples)
        summary["dropped_too_long"] = dropped
    if main:
        save_model(model, tokenizer, out)
        write_done(out, summary)
    return summary
