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
def ingest_schemas(schemas: str, extra_schemas: list[str] | None = None, lenient: bool = False,
                   mcp: list[str] | None = None) -> Annotated[Catalogue, "catalogue"]:
    """Ingest every schema file under `schemas` (relative to the project root, or absolute).

    Args:
        extra_schemas: More schema files/folders (e.g. an imported OpenAPI set), set in the
            config as `steps.ingest_schemas.parameters.extra_schemas`.
        lenient: Keep every representable tool and log the skipped ones (strict by default).
        mcp: MCP server command lines whose tools are read live (see toolmodal.ingest.sources).

    Raises:
        toolmodal.ingest.SchemaError: naming each file, tool and field at fault.
    """
    paths = [project_path(p) for p in [schemas, *(extra_schemas or [])]]
    catalogue = load_catalogue(paths, lenient, mcp or [])
    log_metadata({"n_tools": len(catalogue.tools), "categories": catalogue.categories,
                  "catalogue_hash": catalogue.content_hash()})
    return catalogue
