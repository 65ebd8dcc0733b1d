"""Step: the verified synthetic dataset, its card, and the card as an HTML page with charts."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from datasets import DatasetDict
from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.integrations.huggingface.materializers import HFDatasetMaterializer
from zenml.types import HTMLString

from toolmodal import reports
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.card import plot_distributions
from toolmodal.paths import code_files
from toolmodal.schema import Catalogue


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      output_materializers={"dataset": HFDatasetMaterializer})
def generate_data(catalogue: Catalogue, config: GenerationConfig, data_digest: str) -> tuple[
        Annotated[DatasetDict, "dataset"], Annotated[dict, "dataset_card"],
        Annotated[HTMLString, "dataset_card_page"]]:
    """Generate the DatasetDict of the dataset contract from the catalogue. `data_digest`
    (`toolmodal.datagen.data_files_digest`) puts the contents of the files read during
    generation (the tools' request templates, label data, system prompts, value lists) into the
    step's cache key, and is logged with the run."""
    dataset, card = generate_dataset(catalogue, config)
    with tempfile.TemporaryDirectory() as tmp:
        chart = plot_distributions(card, Path(tmp) / "distributions.png").read_bytes()
    log_metadata({"rows": card["rows"], "splits": card["splits"],
                  "acceptance_rate": card["acceptance_rate"], "data_files_digest": data_digest})
    return dataset, card, HTMLString(reports.dataset_card_page(card, chart))
