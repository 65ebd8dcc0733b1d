"""Step: read the schema folder into a `Catalogue` (the run command adds the schema files as
cache dependencies, so editing one schema re-runs ingestion and everything after it)."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from materializers.catalogue import CatalogueMaterializer
from toolmodal.ingest import load_catalogue
from toolmodal.runconfig import project_path
from toolmodal.schema import Catalogue


@step(output_materializers=CatalogueMaterializer)
def ingest_schemas(schemas: str) -> Annotated[Catalogue, "catalogue"]:
    """Ingest every schema file under `schemas` (relative to the project root, or absolute).

    Raises:
        toolmodal.ingest.SchemaError: naming each file, tool and field at fault.
    """
    catalogue = load_catalogue([project_path(schemas)])
    log_metadata({"n_tools": len(catalogue.tools), "categories": catalogue.categories,
                  "catalogue_hash": catalogue.content_hash()})
    return catalogue
