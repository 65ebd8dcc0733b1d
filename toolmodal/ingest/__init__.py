"""Schema ingestion: read tool definitions in any supported format into a `Catalogue`.

Formats (detected per file by content): OpenAI tools / bare function objects (`openai`), BFCL
JSON Lines (`bfcl`), MCP tools/list results (`mcp`), OpenAPI 3 (`openapi`); all share the JSON
Schema converter in `jsonschema`. Left out: writing anything (ingestion only reads) and
converting back to a source format.
"""

from __future__ import annotations

from pathlib import Path

from toolmodal.ingest.bfcl import tools_from_bfcl_record
from toolmodal.ingest.errors import SchemaError
from toolmodal.ingest.loader import ingest_paths, read_text
from toolmodal.schema import Catalogue

__all__ = ["SchemaError", "ingest_paths", "load_catalogue", "read_text", "tools_from_bfcl_record"]


def load_catalogue(paths: list[Path]) -> Catalogue:
    """Read files and folders of tool schemas into one catalogue.

    Args:
        paths: Schema files and/or folders (searched recursively).

    Returns:
        The catalogue, tools in a deterministic order with categories set.

    Raises:
        SchemaError: listing every problem found in every file (file, tool and field each).
    """
    tools, errors = ingest_paths([Path(p) for p in paths])
    if errors:
        raise SchemaError(errors)
    return Catalogue(tools=tuple(tools))
