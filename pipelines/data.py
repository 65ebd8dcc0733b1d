"""The `data` pipeline: tool schemas -> verified synthetic dataset -> validation gate."""

from __future__ import annotations

from zenml import pipeline

from steps.generate_data import generate_data
from steps.ingest_schemas import ingest_schemas
from toolmodal.datagen import GenerationConfig


@pipeline
def data_pipeline(schemas: str, generation: GenerationConfig):
    """Ingest `schemas`, generate the dataset; returns the dataset artifact."""
    catalogue = ingest_schemas(schemas)
    dataset, _, _ = generate_data(catalogue, generation)
    return dataset
