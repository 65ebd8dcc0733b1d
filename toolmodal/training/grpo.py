"""GRPO with TRL's GRPOTrainer, rewarded by the evaluator's scorers (`toolmodal.scoring`).

Reward modes (config `reward_mode`):
- call (default): `scoring.call_reward` alone, graded so that a wrong tool (negative) differs
  from a refusal (0), from the right tool with partly right arguments (in between) and from an
  exact call (1); on no-call rows, no call is 1 and any call negative.
- weighted: tool selection x0.6 + argument match x0.4 + format validity x0.1 + no hallucination
  x0.5. `no_hallucination_reward` is 1 unless a call names an unoffered tool, so its +0.5 weight
  is the seed's -0.5 hallucination penalty shifted by a constant, which group-normalised
  advantages ignore (logged rewards are 0.5 higher than with a literal penalty).
- exact_match: the binary exact-match reward alone (Tool-N1).
TRL logs each reward function's mean per step (`rewards/<name>/mean`) and the share of groups
whose rewards all tie (`frac_reward_zero_std`). TRL 1.16 has no option to drop tied groups from
the loss (their advantage is zero, but they still count in the token normaliser and the KL term),
so `DropTiedGroupsGRPOTrainer` masks them out of the loss when `drop_tied_groups` is set, and,
when every group of a step's generation batch ties, samples that batch again (`resample_tied`
times at most) so the step is not wasted. Several prompts per step come from TRL's own batch
arithmetic (`GRPOStageConfig.prompts_per_step`).
Deliberately left out: scoring itself (never re-implemented here) and vLLM generation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer

from toolmodal import scoring
from toolmodal.training.config import GRPOStageConfig
from toolmodal.training.metrics import MetricsCallback, MetricsLogger

WEIGHTED_REWARDS = [
    (scoring.tool_selection_reward, 0.6),
    (scoring.argument_match_reward, 0.4),
    (scoring.format_reward, 0.1),
    (scoring.no_hallucination_reward, 0.5),
]
EXACT_REWARDS = [(scoring.exact_match_reward, 1.0)]
CALL_REWARDS = [(scoring.call_reward, 1.0)]


def rewards_for(mode: str) -> tuple[list, list[float]]:
    """(reward functions, weights) for a reward mode: "call", "weighted" or "exact_match"."""
    table = {"call": CALL_REWARDS, "weighted": WEIGHTED_REWARDS, "exact_match": EXACT_REWARDS}
    if mode not in table:
        raise ValueError(f"reward_mode {mode!r}: expected one of {sorted(table)}")
    return [f for f, _ in table[mode]], [w for _, w in table[mode]]


def tied_groups(advantages: torch.Tensor, group: int) -> torch.Tensor:
    """Per-completion flag: True when every completion of its group got the same reward."""
    flat = advantages.view(-1, group).abs().amax(dim=1) < 1e-6
    return flat.repeat_interleave(group)


class DropTiedGroupsGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that masks groups with all-equal rewards out of the loss.

    Each process holds whole groups (`GRPOStageConfig` makes its generation batch a multiple of
    `num_generations`), and the loss normaliser counts the kept tokens of all processes, as
    TRL's own `num_items_in_batch` does. When every group ties (over all processes), the
    same prompts are sampled again, at most `resample_tied` times.
    """

    def __init__(self, *args, resample_tied: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resample_tied = resample_tied

    def _tied_share(self, output) -> float:
        tied = tied_groups(output["advantages"], self.num_generations)
        return self.accelerator.gather(tied.float()).mean().item()

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return output
        resampled = 0
        while resampled < self.resample_tied and self._tied_share(output) == 1.0:
            output = super()._generate_and_score_completions(inputs)
            resampled += 1
        self._metrics["train"]["tied_groups/resampled"].append(resampled)
        tied = tied_groups(output["advantages"], self.num_generations)
        keep = (~tied).int().unsqueeze(1).expand_as(output["completion_mask"])
        if "tool_mask" in output:
            keep = keep * output["tool_mask"]
        output["tool_mask"] = keep
        kept_tokens = (output["completion_mask"] * keep).sum()
        output["num_items_in_batch"] = self.accelerator.gather(kept_tokens).sum()
        dropped = self.accelerator.gather(tied.float()).mean().item()
        self._metrics["train"]["tied_groups/dropped_share"].append(dropped)
        return output


def grpo_args(config: GRPOStageConfig, out: Path) -> GRPOConfig:
    """TRL's GRPOConfig from ours (CPU without CUDA, checkpoints under out/checkpoints)."""
    _, weights = rewards_for(config.reward_mode)
    return GRPOConfig(
        output_dir=str(out / "checkpoints"), learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        lr_scheduler_type=config.lr_scheduler_type, warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        save_steps=config.save_steps, save_total_limit=1, logging_steps=config.logging_steps,
        seed=config.seed, num_generations=config.num_generations,
        temperature=config.temperature, beta=config.beta,
        max_completion_length=config.max_completion_length, loss_type=config.loss_type,
        scale_rewards=config.scale_rewards, reward_weights=weights,
        use_cpu=not torch.cuda.is_available(), bf16=config.mixed_precision == "bf16", fp16=False,
        gradient_checkpointing=False, ddp_find_unused_parameters=False, report_to=[],
        disable_tqdm=True, remove_unused_columns=False)


def train_grpo(model, tokenizer, train: Dataset, config: GRPOStageConfig, out: Path,
               logger: MetricsLogger) -> dict:
    """Run (or resume) GRPO on `train` (prompt, tools, expected_calls columns).

    Returns:
        Summary: global_step, resumed_from, prompts_per_step and the first and last logged
        mean rewards.
    """
    funcs, _ = rewards_for(config.reward_mode)
    args = grpo_args(config, Path(out))
    # Trainer calls on_log in every process; only the main one writes the metrics file.
    callbacks = [MetricsCallback(logger)] if args.process_index == 0 else []
    common = {"model": model, "reward_funcs": funcs, "args": args, "processing_class": tokenizer,
              "train_dataset": train.select_columns(["prompt", "tools", "expected_calls"]),
              "callbacks": callbacks}
    trainer = (DropTiedGroupsGRPOTrainer(**common, resample_tied=config.resample_tied)
               if config.drop_tied_groups else GRPOTrainer(**common))
    ckpt_dir = Path(out) / "checkpoints"
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    resumed = int(Path(last).name.split("-")[1]) if last else 0
    return {"global_step": trainer.state.global_step, "resumed_from": resumed,
            "prompts_per_step": config.prompts_per_step,
            "first_reward": rewards[0] if rewards else None,
            "last_reward": rewards[-1] if rewards else None}
