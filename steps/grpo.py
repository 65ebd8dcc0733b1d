"""Step: GRPO (TRL, rewards = the evaluator's scorers) after the SFT curriculum; the model goes
in and out as `ModelDir` artifacts, curves (rewards, KL, loss) go to MLflow and an HTML page."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.types import HTMLString

from materializers.model_dir import ModelDir, ModelDirMaterializer
from toolmodal.paths import code_files
from toolmodal.stack import work_dir
from toolmodal.training.config import GRPOStageConfig
from toolmodal.training.tracked import run_tracked_stage


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      experiment_tracker=True, output_materializers={"grpo_model": ModelDirMaterializer})
def grpo(model: ModelDir, dataset: DatasetDict, config: GRPOStageConfig) -> tuple[
        Annotated[ModelDir, "grpo_model"],
        Annotated[HTMLString, "grpo_curves"]]:
    """GRPO from `model` on the joint training split of `dataset`.

    A retried run with the same inputs resumes from its checkpoints (see `work_dir`).
    """
    out = work_dir() / "stage"
    summary, logged_steps, curves = run_tracked_stage(model.path, dataset, config, out)
    log_metadata({"summary": summary, "logged_steps": logged_steps})
    return ModelDir(out), HTMLString(curves)
