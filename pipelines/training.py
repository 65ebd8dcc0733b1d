"""The `training` pipeline: base model + validated dataset -> SFT curriculum -> GRPO.

`training_stages` is the sub-DAG that `full_pipeline` reuses; the standalone pipeline takes
the dataset as the latest version of a named artifact (`validated_dataset` of the data pipeline).
"""

from __future__ import annotations

from zenml import pipeline
from zenml.client import Client

from steps.grpo import grpo
from steps.prepare_base_model import prepare_base_model
from steps.sft import sft
from toolmodal.training.config import GRPOStageConfig, SFTStageConfig


def training_stages(base, dataset, sft_selection: SFTStageConfig, sft_arguments: SFTStageConfig,
                    sft_joint: SFTStageConfig, grpo_config: GRPOStageConfig):
    """Selection -> arguments -> joint SFT, then GRPO; returns the GRPO model artifact."""
    model, _ = sft.with_options(substitutions={"stage": "sft_selection"})(
        base, dataset, sft_selection, id="sft_selection")
    model, _ = sft.with_options(substitutions={"stage": "sft_arguments"})(
        model, dataset, sft_arguments, id="sft_arguments")
    sft_model, _ = sft.with_options(substitutions={"stage": "sft_joint"})(
        model, dataset, sft_joint, id="sft_joint")
    grpo_model, _ = grpo(sft_model, dataset, grpo_config)
    return sft_model, grpo_model


@pipeline
def training_pipeline(base_model: str | None, vocab_corpus: list[str] | None,
                      sft_selection: SFTStageConfig,
                      sft_arguments: SFTStageConfig, sft_joint: SFTStageConfig,
                      grpo: GRPOStageConfig, dataset: str = "validated_dataset"):
    """Train from `base_model` on the latest version of the `dataset` artifact."""
    base = prepare_base_model(base_model, vocab_corpus)
    data = Client().get_artifact_version(dataset)
    return training_stages(base, data, sft_selection, sft_arguments, sft_joint, grpo)
