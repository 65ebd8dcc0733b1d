"""MCP `tools/list` results: `{"tools": [{"name", "description", "inputSchema", "outputSchema"}]}`.

Also accepts the JSON-RPC response around it (`{"jsonrpc": "2.0", "id": .., "result": {...}}`).
`inputSchema` must be a JSON Schema of type object; `outputSchema`, when present, becomes the return
type. Left out: `title`, `annotations`, `_meta` and pagination (`nextCursor`) are ignored.
"""

from __future__ import annotations

from typing import Any

from toolmodal.ingest.common import collect, object_of, returns, text, tool_name
from toolmodal.ingest.errors import FieldError, tool_label
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Tool


def looks_like(doc: Any) -> bool:
    """Whether `doc` is a tools/list result or a JSON-RPC envelope holding one."""
    return isinstance(doc, dict) and ("tools" in doc or ("jsonrpc" in doc and "result" in doc))


def read(doc: dict, file: str) -> tuple[list[Tool], list[str]]:
    """All tools of an MCP tools/list result; errors name file, tool and field."""
    field, result = ("", doc) if "tools" in doc else ("result", doc["result"])
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        where = f"{field}.tools" if field else "tools"
        return [], [f"{file}: {where}: expected a list of tools under {where!r}"]
    entries = result["tools"]
    return collect(file, ((tool_label(e.get("name") if isinstance(e, dict) else None, f"#{i + 1}"),
                           lambda e=e: _tool(e, file)) for i, e in enumerate(entries)))


def _tool(entry: Any, file: str) -> Tool:
    entry = object_of(entry, "tool")
    if "inputSchema" not in entry:
        raise FieldError("inputSchema", "missing inputSchema")
    schema = object_of(entry["inputSchema"], "inputSchema")
    return Tool(name=tool_name(entry.get("name")),
                description=text(entry.get("description"), "description"),
                parameters=Converter(root=schema).object_params(schema, "inputSchema"),
                returns=returns(entry.get("outputSchema"), "outputSchema"),
                source=file)
