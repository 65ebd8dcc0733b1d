"""MCP `tools/list` results: `{"tools": [{"name", "description", "inputSchema", "outputSchema"}]}`.

Read from a file (a saved result, or the JSON-RPC response around it: `{"jsonrpc": "2.0",
"id": .., "result": {...}}`) or live: `list_live_tools` starts a server over stdio with the
official `mcp` SDK, initializes, reads every page of `tools/list` and shuts it down, all within
a timeout. `inputSchema` must be a JSON Schema of type object; `outputSchema`, when present,
becomes the return type. Left out: `title`, `annotations`, `_meta`; transports other than stdio.
"""

from __future__ import annotations

import shlex
import tempfile
from typing import Any

from toolmodal.ingest.common import collect, object_of, returns, text, tool_name
from toolmodal.ingest.errors import FieldError, SchemaError, tool_label
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



def list_live_tools(command: str, timeout: float = 60.0) -> dict:
    """Start the MCP server `command` (a shell-style command line) and read its tools/list.

    Args:
        command: e.g. "npx -y @modelcontextprotocol/server-memory".
        timeout: Seconds allowed for start, initialize and every page of tools/list together.

    Returns:
        `{"tools": [...]}`, every page joined, each tool as the protocol spells it (for `read`).

    Raises:
        SchemaError: one line naming the command: it cannot be started, exits, does not answer
            within `timeout`, or answers something that is not MCP (with its stderr's tail).
    """
    import anyio

    argv = shlex.split(command)
    if not argv:
        raise SchemaError(["mcp: empty server command"])
    where = f"mcp server {command!r}"
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        try:
            return anyio.run(_list_tools, argv, errlog, timeout)
        except TimeoutError:  # before OSError, its base class
            raise SchemaError([f"{where}: no complete tools/list within {timeout:g} s (is it "
                               f"an MCP server speaking JSON-RPC on stdout?){_tail(errlog)}"]
                              ) from None
        except OSError as exc:
            raise SchemaError([f"{where}: cannot start it: {exc}"]) from None
        except Exception as exc:  # noqa: BLE001 - the SDK's errors vary; each is named below
            raise SchemaError([f"{where}: {_leaf(exc)}{_tail(errlog)}"]) from None


async def _list_tools(argv: list[str], errlog: Any, timeout: float) -> dict:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.types import PaginatedRequestParams

    server = StdioServerParameters(command=argv[0], args=argv[1:])
    tools: list[dict] = []
    with anyio.fail_after(timeout):
        async with stdio_client(server, errlog=errlog) as (read_stream, write_stream), \
                ClientSession(read_stream, write_stream) as session:
            await session.initialize()
            cursor = None
            while True:
                page = await session.list_tools(
                    params=PaginatedRequestParams(cursor=cursor) if cursor else None)
                tools += [t.model_dump(mode="json", by_alias=True, exclude_none=True)
                          for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    return {"tools": tools}


def _leaf(exc: BaseException) -> str:
    """The first real error inside anyio's exception groups, as `Type: message`."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _tail(errlog: Any, chars: int = 500) -> str:
    errlog.seek(0)
    text_ = errlog.read().strip()
    return f"; its stderr ends: {text_[-chars:]}" if text_ else ""
