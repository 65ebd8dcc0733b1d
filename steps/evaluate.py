"""Step: evaluate one model on the test splits, unmasked and masked (reused for the base, SFT,
GRPO and exported models). Name the artifact with a `label` substitution, e.g.
`evaluate.with_options(substitutions={"label": "sft"})` gives `eval_sft`."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy

from materializers.eval_report import EvalReport, EvalReportMaterializer
from materializers.model_dir import ModelDir
from toolmodal import reports, tracking
from toolmodal.call_calibration import CallDecision
from toolmodal.engines import EngineName
from toolmodal.evaluate import EvalConfig, run_evaluation
from toolmodal.paths import code_files
from toolmodal.stack import work_dir


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      experiment_tracker=True, output_materializers={"eval_{label}": EvalReportMaterializer})
def evaluate(model: ModelDir, dataset: DatasetDict, config: EvalConfig, label: str,
             model_file: str | None = None, engine: EngineName | None = None,
             lora_file: str | None = None, call_decision: CallDecision | None = None,
             ) -> Annotated[EvalReport, ArtifactConfig(name="eval_{label}")]:
    """Evaluate `model` (or the file `model_file` inside it, e.g. a .gguf for llama.cpp).

    Args:
        label: base, sft, grpo or exported: names the MLflow metrics and the summary rows.
        model_file: Path inside the model folder to load instead of the folder.
        engine: Overrides `config.engine` (the exported GGUF runs on llama.cpp with otherwise
            the same settings).
        lora_file: Path inside the model folder of a LoRA GGUF applied by llama.cpp (the
            Q4_K_M correction adapter).
        call_decision: The call threshold chosen on validation rows (`calibrate_call`); it
            replaces `config.engine_config.call_threshold`.
    """
    path = model.path if model_file is None else model.path / model_file
    if engine is not None:
        config = config.model_copy(update={"engine": engine})
    settings = ({} if lora_file is None else {"lora": model.path / lora_file}) | (
        {} if call_decision is None else {"call_threshold": call_decision.threshold})
    engine_config = config.engine_config.model_copy(update=settings)
    config = config.model_copy(update={"engine_config": engine_config})
    splits = {name: dataset[name].to_list() for name in config.test_splits}
    out = work_dir()
    report = run_evaluation(path, config, splits, out)
    plots = {p.name: p.read_bytes() for p in out.glob("*.png")}
    model_uri = get_step_context().inputs["model"][0].uri
    result = EvalReport(label, model_uri, report, plots)
    rows = result.rows()
    for row in rows:
        tracking.log_metrics({k: v for k, v in row.items() if k not in ("model", "mask", "set")},
                             prefix=f"eval/{label}/{row['mask']}/{row['set']}/")
    tracking.log_table(reports.interval_cells(rows), f"eval_{label}.json")
    log_metadata({"headline": report["headline"]})
    return result
