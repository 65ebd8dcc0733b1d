"""The `full` pipeline (`make run`): schemas -> data -> training -> export -> the deployed
model's call threshold (chosen on validation rows) -> evaluation of every model, masked and
unmasked -> MLflow registration and promotion."""

from __future__ import annotations

from zenml import pipeline

from pipelines.data import data_pipeline
from pipelines.training import training_stages
from steps.calibrate_call import calibrate_call
from steps.evaluate import evaluate
from steps.export_model import export_model
from steps.prepare_base_model import prepare_base_model
from steps.promote_model import promote_model
from toolmodal.call_calibration import CallCalibrationConfig
from toolmodal.datagen import GenerationConfig
from toolmodal.engines import EngineName
from toolmodal.evaluate import EvalConfig
from toolmodal.export import ExportConfig
from toolmodal.tracking import PromotionConfig
from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.validation import ValidationConfig


@pipeline
def full_pipeline(schemas: str | list[str], generation: GenerationConfig,
                  validation: ValidationConfig, base_model: str | None,
                  vocab_corpus: list[str] | None, sft_selection: SFTStageConfig,
                  sft_arguments: SFTStageConfig, sft_joint: SFTStageConfig,
                  grpo: GRPOStageConfig, export: ExportConfig, evaluation: EvalConfig,
                  final_evaluation: EvalConfig, exported_engine: EngineName,
                  exported_file: str, exported_lora: str | None,
                  call_calibration: CallCalibrationConfig, promotion: PromotionConfig):
    """Everything, in order; each stage's settings come from configs/ (see configs/full.yaml).

    The deployed (exported) model is measured with `final_evaluation` (every test row by
    default) at the call threshold `calibrate_call` chose on the validation splits; the base,
    SFT and GRPO models with `evaluation` (a budget may cut their rows), greedy."""
    base = prepare_base_model(base_model, vocab_corpus)
    dataset = data_pipeline(schemas, generation, validation, base)
    sft_model, grpo_model = training_stages(base, dataset, sft_selection, sft_arguments,
                                            sft_joint, grpo)
    exported = export_model(grpo_model, dataset, export)
    call_decision = calibrate_call(exported, dataset, call_calibration, exported_file,
                                   exported_engine, exported_lora)
    base_eval = evaluate.with_options(substitutions={"label": "base"})(
        base, dataset, evaluation, "base", id="evaluate_base")
    sft_eval = evaluate.with_options(substitutions={"label": "sft"})(
        sft_model, dataset, evaluation, "sft", id="evaluate_sft")
    grpo_eval = evaluate.with_options(substitutions={"label": "grpo"})(
        grpo_model, dataset, evaluation, "grpo", id="evaluate_grpo")
    exported_eval = evaluate.with_options(substitutions={"label": "exported"})(
        exported, dataset, final_evaluation, "exported", exported_file, exported_engine,
        exported_lora, call_decision, id="evaluate_exported")
    promote_model(base_eval, sft_eval, grpo_eval, exported_eval, call_decision, promotion)
