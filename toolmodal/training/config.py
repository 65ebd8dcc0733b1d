"""Typed settings of the training stages (SFT curriculum and GRPO).

Fields that TRL also has carry TRL's names and defaults of the seed recipe, so a YAML reads like
TRL's docs; our own additions (stage, LoRA switches, loss-weight schedule, data budget) are
documented per field; the launch fields (`num_processes`, `mixed_precision`) carry accelerate's
names. `trainable` picks full fine-tuning, a frozen embedding/output matrix with trainable
tool-token rows, or LoRA; `packing`, `curve_every_steps` and `curve_rows` are SFT-only. The
configs are plain pydantic models: YAML loading lives in the command and the ZenML step, not
here. Deliberately left out: anything device- or backend-specific (see
`toolmodal.training.backend`) and how processes are started (`toolmodal.training.launch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

SFTStage = Literal["sft_selection", "sft_arguments", "sft_joint"]
Trainable = Literal["full", "embeddings_frozen", "lora"]

# Dataset split prefix of each stage (splits <prefix>_train and <prefix>_validation).
STAGE_SPLITS: dict[str, str] = {
    "sft_selection": "selection",
    "sft_arguments": "arguments",
    "sft_joint": "joint",
    "grpo": "joint",
}


class LossWeightPhase(BaseModel):
    """Weights of tool-name vs argument tokens until a fraction of the stage's steps.

    The per-token weight is `2 * tool` for tool-name tokens and `2 * argument` for argument
    tokens (every other supervised token keeps 1.0), so 0.5/0.5 is exactly the unweighted loss.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    until: float = Field(gt=0.0, le=1.0, description="end of this phase as a fraction of steps")
    tool: float = Field(ge=0.0, le=1.0)
    argument: float = Field(ge=0.0, le=1.0)


# The seed's stage-1c schedule: selection-heavy early, argument-heavy late.
SEED_JOINT_SCHEDULE = [
    LossWeightPhase(until=1 / 3, tool=0.7, argument=0.3),
    LossWeightPhase(until=2 / 3, tool=0.5, argument=0.5),
    LossWeightPhase(until=1.0, tool=0.4, argument=0.6),
]


class _StageConfig(BaseModel):
    """Fields shared by SFT and GRPO (TRL names where TRL has the field)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = 2e-4
    num_train_epochs: float = 3.0
    max_steps: int = Field(-1, description="> 0 overrides num_train_epochs (TRL semantics)")
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    lr_scheduler_type: Literal["linear", "constant", "cosine"] = "linear"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    save_steps: int = Field(50, ge=1, description="checkpoint every N optimizer steps")
    logging_steps: int = Field(1, ge=1)
    seed: int = 42
    # Ours.
    trainable: Trainable = Field(
        "full", description="which parameters train: full (everything), embeddings_frozen "
        "(everything but the tied 262k-row embedding/output matrix, whose tool-token rows "
        "train as a small separate matrix merged back on save), lora (adapters; see "
        "train_tool_token_rows_only)")
    train_decision_rows: bool = Field(
        False, description="with trainable=embeddings_frozen: also train the rows of the tokens "
        "a decision is written with (end of turn, the no-call opener: backend.decision_token_ids), "
        "not only the tool-token rows")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = 0.0
    train_tool_token_rows_only: bool = Field(
        True, description="with trainable=lora: also train the tool-token embedding rows "
        "(peft trainable_token_indices)")
    max_train_samples: int | None = Field(None, ge=1, description="data budget: first N rows")
    max_eval_samples: int | None = Field(None, ge=1, description="validation budget: first N rows")
    # Launch (accelerate's names): > 1 process runs the stage under `accelerate launch`.
    num_processes: int = Field(
        1, ge=1, description="data-parallel processes, one per GPU (per_device_train_batch_size "
        "is per process); > 1 runs the stage under `accelerate launch` (training.launch)")
    mixed_precision: Literal["no", "bf16"] = Field(
        "no", description="accelerate's autocast; fp16 is left out (it needs a grad scaler)")

    @model_validator(mode="after")
    def _decision_rows_need_frozen_embedding(self):
        if self.train_decision_rows and self.trainable != "embeddings_frozen":
            raise ValueError("train_decision_rows needs trainable: embeddings_frozen (with "
                             f"trainable: {self.trainable} it would change nothing)")
        return self


class SFTStageConfig(_StageConfig):
    """One supervised stage of the curriculum (1a selection, 1b arguments, 1c joint)."""

    stage: SFTStage
    max_length: int = Field(2048, ge=16, description="longer examples are dropped (counted)")
    loss_weight_schedule: list[LossWeightPhase] | None = Field(
        None, description="tool/argument token weights; None = the seed schedule for sft_joint, "
        "uniform otherwise; [] = uniform")
    decision_weight: float = Field(
        1.0, ge=0.0, description="loss weight of decision tokens: a completion's first token "
        "(call or answer) and the token after each call (another call or end of turn); 1.0 = "
        "like other text")
    bucket_size: int = Field(64, ge=1, description="batches per length-sorting bucket "
                             "(packing: false only)")
    packing: bool = Field(
        True, description="rows sharing system prompt + tools train as one sequence (prefix "
        "once); same rows per step, same loss and gradients, less compute. Needs a model that "
        "takes a dict of 4D masks (Gemma 3 in transformers)")
    split_packed: bool = Field(
        False, description="packing: each packed sequence of a micro-batch runs its own forward "
        "and backward instead of all padded to the longest (same loss and gradients; on a CPU "
        "padding costs full compute, on a GPU one padded batch keeps the device busier)")
    curve_every_steps: int = Field(
        10, ge=0, description="learning-curve point every N optimizer steps (also at the "
        "start and the end); 0 = no curve")
    curve_rows: int = Field(32, ge=1, description="validation rows per learning-curve point")

    @model_validator(mode="after")
    def _schedule(self) -> SFTStageConfig:
        if self.loss_weight_schedule is None:
            self.loss_weight_schedule = SEED_JOINT_SCHEDULE if self.stage == "sft_joint" else []
        ends = [p.until for p in self.loss_weight_schedule]
        if ends and (ends != sorted(ends) or ends[-1] != 1.0):
            raise ValueError(
                f"loss_weight_schedule: 'until' must increase and end at 1.0, got {ends}")
        return self

    def loss_weights(self, progress: float) -> tuple[float, float]:
        """(tool, argument) weights at `progress` in [0, 1] of the stage's steps."""
        for phase in self.loss_weight_schedule or []:
            if progress < phase.until:
                return phase.tool, phase.argument
        last = (self.loss_weight_schedule or [None])[-1]
        return (0.5, 0.5) if last is None else (last.tool, last.argument)


class GRPOStageConfig(_StageConfig):
    """The GRPO stage: TRL GRPOTrainer with the evaluator's scorers as rewards.

    TRL counts completions: an optimizer step takes `per_device_train_batch_size *
    gradient_accumulation_steps * num_processes` completions, i.e. that divided by
    `num_generations` prompts (`prompts_per_step`; the defaults give 4).
    """

    stage: Literal["grpo"] = "grpo"
    learning_rate: float = 1e-6
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = Field(8, ge=1, description="completions per micro-batch")
    gradient_accumulation_steps: int = Field(2, ge=1)
    num_generations: int = Field(4, ge=2)
    temperature: float = Field(1.0, gt=0.0)
    beta: float = Field(0.05, ge=0.0, description="KL coefficient (seed 0.05; TRL default 0.0)")
    max_completion_length: int = Field(128, ge=1)
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    reward_mode: Literal["call", "weighted", "exact_match"] = Field(
        "call", description="call: scoring.call_reward, graded (exact 1, right tool with "
        "partial arguments in between, refusal 0, wrong tool / broken format / hallucination "
        "negative; on no-call rows any call is negative); weighted: 0.6 selection / 0.4 "
        "arguments / +0.1 format / -0.5 hallucination; exact_match: binary (Tool-N1)")
    drop_tied_groups: bool = Field(
        True, description="drop groups whose rewards all tie from the loss (no signal)")
    resample_tied: int = Field(
        1, ge=0, description="with drop_tied_groups: when every group of a generation batch "
        "ties, sample the batch again up to N times, so the step still has a signal")

    @property
    def prompts_per_step(self) -> int:
        """Prompts behind one optimizer step (all processes)."""
        completions = (self.per_device_train_batch_size * self.gradient_accumulation_steps
                       * self.num_processes)
        return completions // self.num_generations

    @model_validator(mode="after")
    def _lora_without_token_rows(self) -> GRPOStageConfig:
        # TRL's fused log-prob head reads lm_head.weight/.bias directly: peft's token wrapper
        # has no bias, and its trained rows would be ignored there.
        if self.trainable == "lora" and self.train_tool_token_rows_only:
            raise ValueError("grpo: trainable=lora with train_tool_token_rows_only=true fails in "
                             "TRL's fused LM head; set train_tool_token_rows_only: false, or use "
                             "trainable: embeddings_frozen to train the tool-token rows")
        return self

    @model_validator(mode="after")
    def _batch_fits_groups(self) -> GRPOStageConfig:
        generation_batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if generation_batch % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size * gradient_accumulation_steps = {generation_batch} "
                f"must be divisible by num_generations = {self.num_generations}")
        return self


def load_stage_config(stage: str, path: Path | None) -> SFTStageConfig | GRPOStageConfig:
    """The stage's config from a YAML file (its keys override the defaults), or the defaults.

    Args:
        stage: sft_selection, sft_arguments, sft_joint or grpo.
        path: YAML mapping of config fields; a `stage` key, if present, must match `stage`.
    """
    values = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(
                f"{path}: expected a mapping of config fields, got {type(values).__name__}")
        if values.get("stage", stage) != stage:
            raise ValueError(f"{path}: stage {values['stage']!r} does not match --stage {stage!r}")
    values = {**values, "stage": stage}
    return GRPOStageConfig(**values) if stage == "grpo" else SFTStageConfig(**values)
