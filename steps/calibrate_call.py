"""Step: choose the deployed model's call threshold on the validation splits
(`toolmodal.call_calibration`); the exported model's evaluation then decodes with it."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import log_metadata, step
from zenml.config import CachePolicy

from materializers.model_dir import ModelDir
from toolmodal import tracking
from toolmodal.call_calibration import CallCalibrationConfig, CallDecision, calibrate
from toolmodal.engines import EngineConfig
from toolmodal.engines.llamacpp import LlamaCppEngine
from toolmodal.paths import code_files


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      experiment_tracker=True)
def calibrate_call(model: ModelDir, dataset: DatasetDict, config: CallCalibrationConfig,
                   model_file: str, lora_file: str | None = None,
                   ) -> Annotated[CallDecision, "call_decision"]:
    """Probe the deployed GGUF `model_file` of `model` (llama.cpp, with `lora_file` if set) on
    the validation rows and choose `call_threshold`."""
    lora = None if lora_file is None else model.path / lora_file
    engine = LlamaCppEngine(model.path / model_file, EngineConfig(lora=lora))
    splits = {name: dataset[name].to_list() for name in config.splits if name in dataset}
    decision = calibrate(engine, splits, config)
    table = [score.model_dump() for score in decision.scores]
    tracking.log_table(table, "call_decision.json")
    tracking.log_params({"call_threshold": decision.threshold})
    log_metadata({"call_decision": decision.model_dump(mode="json")})
    return decision
