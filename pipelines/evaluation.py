"""The `evaluation` pipeline: evaluate one model artifact (masked and unmasked) on the test sets.

`evaluation_pipeline` evaluates the latest version of a named model artifact (default: the
GRPO model) on the latest validated dataset; `full_pipeline` calls the `evaluate` step directly
for each of its models.
"""

from __future__ import annotations

from zenml import pipeline
from zenml.client import Client

from steps.evaluate import evaluate
from toolmodal.evaluate import EvalConfig


@pipeline
def evaluation_pipeline(evaluation: EvalConfig, model: str = "grpo_model",
                        dataset: str = "validated_dataset", model_file: str | None = None):
    """Evaluate the latest `model` artifact on the latest `dataset` artifact."""
    evaluate.with_options(substitutions={"label": model.removesuffix("_model")})(
        Client().get_artifact_version(model), Client().get_artifact_version(dataset),
        evaluation, model.removesuffix("_model"), model_file)
