"""Step: the data validation gate (great-expectations suite); its HTML report is an artifact.

On failure the step raises naming the failed checks, so nothing downstream trains on bad data;
the report of a failed run is written to the step's work folder (named in the error), because a
failed ZenML step stores no artifacts.
"""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.integrations.huggingface.materializers import HFDatasetMaterializer
from zenml.types import HTMLString

from materializers.model_dir import ModelDir
from toolmodal.paths import code_files
from toolmodal.stack import work_dir
from toolmodal.validation import (
    ValidationConfig,
    raise_on_failure,
    summary,
    validate_dataset,
    write_report,
)


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      output_materializers={"validated_dataset": HFDatasetMaterializer})
def validate_data(dataset: DatasetDict, card: dict, config: ValidationConfig,
                  base_model: ModelDir | None = None) -> tuple[
        Annotated[DatasetDict, "validated_dataset"], Annotated[dict, "validation_summary"],
        Annotated[HTMLString, "validation_report"]]:
    """Pass `dataset` on unchanged if every expectation holds; raise otherwise. With
    `base_model`, the requests' naturalness under it is bounded too."""
    model_dir = None if base_model is None else base_model.path
    outcome = validate_dataset(dataset, card, config, model_dir=model_dir)
    result = summary(outcome)
    log_metadata({"success": outcome.success, "failed": result["failed"], "rows": outcome.rows})
    html_path, _ = write_report(outcome, work_dir())
    raise_on_failure(outcome, str(html_path))
    return dataset, result, HTMLString(html_path.read_text(encoding="utf-8"))
