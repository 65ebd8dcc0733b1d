"""Step: one supervised stage of the curriculum (reused as sft_selection, sft_arguments,
sft_joint); the model goes in and out as `ModelDir` artifacts, curves go to MLflow and to an HTML
page. Name the output with a `stage` substitution (see pipelines/training.py)."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import ArtifactConfig, log_metadata, step
from zenml.config import CachePolicy
from zenml.types import HTMLString

from materializers.model_dir import ModelDir, ModelDirMaterializer
from toolmodal.paths import code_files
from toolmodal.stack import work_dir
from toolmodal.training.config import SFTStageConfig
from toolmodal.training.tracked import run_tracked_stage


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      experiment_tracker=True, output_materializers={"{stage}_model": ModelDirMaterializer})
def sft(model: ModelDir, dataset: DatasetDict, config: SFTStageConfig) -> tuple[
        Annotated[ModelDir, ArtifactConfig(name="{stage}_model")],
        Annotated[HTMLString, ArtifactConfig(name="{stage}_curves")]]:
    """Train `config.stage` from `model` on its splits of `dataset`.

    A retried run with the same inputs resumes from its checkpoints (see `work_dir`).
    """
    out = work_dir() / "stage"
    summary, logged_steps, curves = run_tracked_stage(model.path, dataset, config, out)
    log_metadata({"summary": summary, "logged_steps": logged_steps})
    return ModelDir(out), HTMLString(curves)
