"""One training stage with its tracking: MLflow params and per-step metrics, then the curves page
and (SFT stages) the learning-curve JSON + PNG as MLflow artifacts.

Shared by the `sft` and `grpo` steps so both log the same way; ZenML metadata stays in the steps.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow
from datasets import DatasetDict

from toolmodal import reports, tracking
from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.training.curve import CURVE_JSON, CURVE_PNG
from toolmodal.training.metrics import read_metrics
from toolmodal.training.run import run_stage


def run_tracked_stage(model_dir: Path, data: DatasetDict, config: SFTStageConfig | GRPOStageConfig,
                      out: Path) -> tuple[dict[str, Any], int, str]:
    """Run `config.stage` into `out`, logging to the active MLflow run.

    Args:
        model_dir: Model folder to start from.
        data: The validated dataset.
        config: The stage's config.
        out: Work folder; a rerun resumes from its checkpoints.

    Returns:
        The stage summary, the number of logged steps and the curves HTML page.
    """
    tracking.log_params(config.model_dump(mode="json"), prefix=f"{config.stage}.")
    summary = run_stage(model_dir, data, config, out,
                        hooks=[tracking.metrics_hook(f"{config.stage}/")])
    # The stage is complete (training_done.json): its checkpoints are no longer needed.
    if (out / "checkpoints").is_dir():
        shutil.rmtree(out / "checkpoints")
    history = read_metrics(out / "metrics.jsonl")
    curves = reports.curves_page(f"{config.stage} training curves", history)
    tracking.log_html(curves, f"{config.stage}_curves.html")
    for name in (CURVE_JSON, CURVE_PNG):
        if tracking.tracking() and (out / name).is_file():
            mlflow.log_artifact(str(out / name), artifact_path=f"{config.stage}_learning_curve")
    return summary, len(history), curves
