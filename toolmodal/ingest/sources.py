"""Where tools come from, read into one list: schema files and folders, live MCP servers and
Python functions.

A live server's tools get the category of the server (`npx -y @modelcontextprotocol/server-memory`
-> `server-memory`) and the source `mcp:COMMAND`; Python functions (`MODULE[:FUNCTION]`, see
`toolmodal.ingest.python_functions`) the source `python:MODULE:NAME`. Tool names must be unique
across everything read (a function named like another tool is named `MODULE.NAME`). Left out:
starting servers over any transport but stdio (see `toolmodal.ingest.mcp`).
"""

from __future__ import annotations

from pathlib import Path

from toolmodal.ingest import mcp, python_functions
from toolmodal.ingest.loader import Ingested, ingest_paths, unique

LAUNCHERS = ("npx", "uvx", "node", "python", "python3", "pipx", "deno", "bunx")
DEFAULT_TIMEOUT = 60.0


def read_sources(paths: list[str], servers: list[str], lenient: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, modules: list[str] | tuple[str, ...] = ()
                 ) -> Ingested:
    """Tools of schema `paths`, MCP `servers` (command lines) and Python `modules`, errors, notes.

    `modules` are `MODULE[:FUNCTION]` specs; a module that cannot be imported is an error line.

    Raises:
        SchemaError: a server could not be started or read (see `mcp.list_live_tools`).
    """
    tools, errors, notes = ingest_paths([Path(p) for p in paths], lenient)
    for command in servers:
        result = mcp.list_live_tools(command, timeout)
        server_tools, server_errors = mcp.read(result, label(command))
        tools += [t.model_copy(update={"category": category(command), "source": label(command)})
                  for t in server_tools]
        errors += server_errors
    module_tools, module_errors, module_notes = python_functions.read_modules(
        list(modules), lenient, {t.name for t in tools})
    return Ingested(*unique(tools + module_tools, errors + module_errors), notes + module_notes)


def label(command: str) -> str:
    """How messages and summaries name a server: `mcp:COMMAND`."""
    return f"mcp:{command}"


def category(command: str) -> str:
    """The category of a server's tools: its package or program name, without scope or folder."""
    words = [w for w in command.split() if not w.startswith("-")]
    if len(words) > 1 and Path(words[0]).name in LAUNCHERS:
        words = words[1:]
    return Path(words[0]).name.split("@")[0] or Path(words[0]).name if words else "mcp"
