"""Step: read schema folders/files, MCP servers and Python functions into a `Catalogue` (the run
command adds the schema files as cache dependencies, so editing one schema re-runs ingestion and
everything after it; with servers or functions the step always runs, see
`toolmodal.runconfig.with_ingest_cache`)."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.config import CachePolicy

from materializers.catalogue import CatalogueMaterializer
from toolmodal.ingest import load_catalogue
from toolmodal.ingest.sources import DEFAULT_TIMEOUT
from toolmodal.paths import code_files
from toolmodal.runconfig import project_path
from toolmodal.schema import Catalogue


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      output_materializers=CatalogueMaterializer)
def ingest_schemas(schemas: str | list[str], extra_schemas: list[str] | None = None,
                   lenient: bool = False, mcp: list[str] | None = None,
                   mcp_timeout: float = DEFAULT_TIMEOUT,
                   python: list[str] | None = None) -> Annotated[Catalogue, "catalogue"]:
    """Ingest every schema file under `schemas` (relative to the project root, or absolute).

    Args:
        schemas: A folder or file, or a list of them (`toolmodal run --schemas PATH...`).
        extra_schemas: More schema files/folders (e.g. an imported OpenAPI set), set in the
            config as `steps.ingest_schemas.parameters.extra_schemas`.
        lenient: Keep every representable tool and log the skipped ones (strict by default).
        mcp: MCP server command lines whose tools are read live (see toolmodal.ingest.sources).
        mcp_timeout: Seconds allowed per MCP server.
        python: `MODULE[:FUNCTION]` specs whose functions become tools (imported here).

    Raises:
        toolmodal.ingest.SchemaError: naming each file, tool and field at fault.
    """
    given = [schemas] if isinstance(schemas, str) else schemas
    paths = [project_path(p) for p in [*given, *(extra_schemas or [])]]
    catalogue = load_catalogue(paths, lenient, mcp or [], python or [], mcp_timeout)
    log_metadata({"n_tools": len(catalogue.tools), "categories": catalogue.categories,
                  "catalogue_hash": catalogue.content_hash()})
    return catalogue
