"""Schema ingestion: read tool definitions in any supported format into a `Catalogue`.

Formats (detected per file by content): OpenAI tools / bare function objects (`openai`), BFCL
JSON Lines (`bfcl`), MCP tools/list results (`mcp`), OpenAPI 3 (`openapi`); all share the JSON
Schema converter in `jsonschema`. Left out: writing anything (ingestion only reads) and
converting back to a source format.
"""

from __future__ import annotations

import logging
from pathlib import Path

from toolmodal.ingest.bfcl import tools_from_bfcl_record
from toolmodal.ingest.errors import SchemaError
from toolmodal.ingest.loader import Ingested, ingest_paths, read_text
from toolmodal.schema import Catalogue

__all__ = ["Ingested", "SchemaError", "ingest_paths", "load_catalogue", "read_text",
           "tools_from_bfcl_record"]

logger = logging.getLogger(__name__)


def load_catalogue(paths: list[Path]) -> Catalogue:
    """Read files and folders of tool schemas into one catalogue.

    Args:
        paths: Schema files and/or folders (searched recursively).

    Returns:
        The catalogue, tools in a deterministic order with categories set. A BFCL name redefined
        in a later record keeps its first definition; each such note is logged as a warning.

    Raises:
        SchemaError: listing every problem found in every file (file, tool and field each).
    """
    tools, errors, notes = ingest_paths([Path(p) for p in paths])
    if errors:
        raise SchemaError(errors)
    for note in notes:
        logger.warning(note)
    return Catalogue(tools=tuple(tools))
