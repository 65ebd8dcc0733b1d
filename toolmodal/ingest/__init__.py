"""Schema ingestion: read tool definitions in any supported format into a `Catalogue`.

Formats (detected per file by content): OpenAI tools / bare function objects (`openai`), BFCL
JSON Lines (`bfcl`), MCP tools/list results (`mcp`, also read live from a server), OpenAPI 3
(`openapi`); all share the JSON Schema converter in `jsonschema`; `sources` joins files and live
servers. Left out: writing anything (ingestion only reads) and
converting back to a source format.
"""

from __future__ import annotations

import logging
from pathlib import Path

from toolmodal.ingest.bfcl import tools_from_bfcl_record
from toolmodal.ingest.errors import SchemaError
from toolmodal.ingest.loader import Ingested, ingest_paths, read_text
from toolmodal.ingest.sources import DEFAULT_TIMEOUT, read_sources
from toolmodal.schema import Catalogue

__all__ = ["Ingested", "SchemaError", "ingest_paths", "load_catalogue", "read_text",
           "tools_from_bfcl_record"]

logger = logging.getLogger(__name__)


def load_catalogue(paths: list[Path], lenient: bool = False,
                   servers: list[str] | tuple[str, ...] = (),
                   modules: list[str] | tuple[str, ...] = (),
                   timeout: float = DEFAULT_TIMEOUT) -> Catalogue:
    """Read files and folders of tool schemas, live MCP servers and Python functions, into one
    catalogue.

    Args:
        paths: Schema files and/or folders (searched recursively).
        lenient: Keep every tool that can be represented and log each skipped one (with its
            reason) as a warning, instead of failing on the first file with a problem.
        servers: MCP server command lines to start over stdio and read (`sources`).
        modules: Python `MODULE[:FUNCTION]` specs whose functions become tools
            (`toolmodal.ingest.python_functions`).
        timeout: Seconds allowed per MCP server.

    Returns:
        The catalogue, tools in a deterministic order with categories set. A BFCL name redefined
        in a later record keeps its first definition; each such note is logged as a warning.

    Raises:
        SchemaError: listing every problem found in every file (file, tool and field each);
            in lenient mode only when no tool at all could be read; or naming a server that
            could not be read.
    """
    tools, errors, notes = read_sources([str(p) for p in paths], list(servers), lenient,
                                        timeout, list(modules))
    if errors and (not lenient or not tools):
        raise SchemaError(errors)
    for line in errors:
        logger.warning("skipped: %s", line)
    for note in notes:
        logger.warning(note)
    return Catalogue(tools=tuple(tools))
