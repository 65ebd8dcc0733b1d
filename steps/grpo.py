"""Step: GRPO (TRL, rewards = the evaluator's scorers) after the SFT curriculum; the model goes
in and out as `ModelDir` artifacts, curves (rewards, KL, loss) go to MLflow and an HTML page."""

from __future__ import annotations

import shutil
from typing import Annotated

from datasets import DatasetDict
from zenml import log_metadata, step
from zenml.types import HTMLString

from materializers.model_dir import ModelDir, ModelDirMaterializer
from toolmodal import reports, tracking
from toolmodal.stack import work_dir
from toolmodal.training.config import GRPOStageConfig
from toolmodal.training.metrics import read_metrics
from toolmodal.training.run import run_stage


@step(experiment_tracker=True, output_materializers={"grpo_model": ModelDirMaterializer})
def grpo(model: ModelDir, dataset: DatasetDict, config: GRPOStageConfig) -> tuple[
        Annotated[ModelDir, "grpo_model"],
        Annotated[HTMLString, "grpo_curves"]]:
    """GRPO from `model` on the joint training split of `dataset`.

    A retried run with the same inputs resumes from its checkpoints (see `work_dir`).
    """
    out = work_dir() / "stage"
    tracking.log_params(config.model_dump(mode="json"), prefix=f"{config.stage}.")
    summary = run_stage(model.path, dataset, config, out,
                        hooks=[tracking.metrics_hook(f"{config.stage}/")])
    # The stage is complete (training_done.json): its checkpoints are no longer needed.
    if (out / "checkpoints").is_dir():
        shutil.rmtree(out / "checkpoints")
    history = read_metrics(out / "metrics.jsonl")
    curves = reports.curves_page(f"{config.stage} training curves", history)
    tracking.log_html(curves, f"{config.stage}_curves.html")
    log_metadata({"summary": summary, "logged_steps": len(history)})
    return ModelDir(out), HTMLString(curves)
