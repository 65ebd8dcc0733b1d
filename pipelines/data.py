"""The `data` pipeline: tool schemas -> verified synthetic dataset -> validation gate."""

from __future__ import annotations

from zenml import pipeline

from steps.generate_data import generate_data
from steps.ingest_schemas import ingest_schemas
from steps.validate_data import validate_data
from toolmodal.datagen import GenerationConfig, data_files_digest
from toolmodal.validation import ValidationConfig


@pipeline
def data_pipeline(schemas: str | list[str], generation: GenerationConfig,
                  validation: ValidationConfig, base=None):
    """Ingest `schemas` (a folder or file, or a list), generate and validate; returns the
    validated dataset artifact.

    `base` (the prepared base model artifact, in the full pipeline) lets the gate bound the
    requests' naturalness under it; alone, the data pipeline skips that check."""
    catalogue = ingest_schemas(schemas)
    dataset, card, _ = generate_data(catalogue, generation, data_files_digest(generation, schemas))
    validated, _, _ = validate_data(dataset, card, validation, base)
    return validated
