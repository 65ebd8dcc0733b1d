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
from toolmodal.engines import EngineConfig, EngineName, load_engine
from toolmodal.paths import code_files


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      experiment_tracker=True)
def calibrate_call(model: ModelDir, dataset: DatasetDict, config: CallCalibrationConfig,
                   model_file: str, engine: EngineName, lora_file: str | None = None,
                   ) -> Annotated[CallDecision, "call_decision"]:
    """Probe the deployed `model_file` of `model` on `engine` (the one its evaluation uses,
    with `lora_file` if set) on the validation rows and choose `call_threshold`.

    Raises:
        ValueError: `engine` is vllm (no first-token probe; llamacpp and transformers have one).
    """
    if engine == "vllm":
        raise ValueError("calibrate_call: the vllm engine has no first-token probe; set "
                         "exported_engine to llamacpp or transformers")
    lora = None if lora_file is None else model.path / lora_file
    probe = load_engine(engine, model.path / model_file, EngineConfig(lora=lora))
    splits = {name: dataset[name].to_list() for name in config.splits if name in dataset}
    decision = calibrate(probe, splits, config)
    table = [score.model_dump() for score in decision.scores]
    tracking.log_table(table, "call_decision.json")
    tracking.log_params({"call_threshold": decision.threshold})
    log_metadata({"call_decision": decision.model_dump(mode="json")})
    return decision
