"""Live MCP servers over stdio: real servers from npm (installed by `make test` into .cache/npm),
and the ways a server command can fail (not found, garbage on stdout, exits, never answers)."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from toolmodal.cli import main
from toolmodal.ingest import SchemaError, load_catalogue
from toolmodal.ingest.mcp import list_live_tools
from toolmodal.ingest.sources import category

BIN = Path(__file__).resolve().parent.parent / ".cache" / "npm" / "node_modules" / ".bin"
SERVERS = {"memory": ("mcp-server-memory", "create_entities"),
           "everything": ("mcp-server-everything", "echo"),
           "filesystem": ("mcp-server-filesystem", "read_text_file")}


def _server(kind: str, *args: str) -> str:
    program = BIN / SERVERS[kind][0]
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the MCP servers come from npm (see the Makefile)")
    if not program.exists():
        pytest.skip(f"{program} missing: run `make test` (it npm-installs the MCP servers)")
    return shlex.join([str(program), *args])


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_real_server_tools_are_read(kind: str, tmp_path: Path) -> None:
    command = _server(kind, str(tmp_path)) if kind == "filesystem" else _server(kind)
    catalogue = load_catalogue([], servers=[command])
    tool = catalogue.tool(SERVERS[kind][1])
    assert tool.description and tool.source == f"mcp:{command}"
    assert {t.category for t in catalogue.tools} == {SERVERS[kind][0]}
    assert len(catalogue.tools) >= 5


def test_check_mcp_json_with_files(capsys: pytest.CaptureFixture) -> None:
    command = _server("memory")
    schemas = Path(__file__).parent / "fixtures" / "openapi" / "bodies.yaml"
    assert main(["schemas", "check", "--lenient", "--json", "--mcp", command,
                 str(schemas)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"][f"mcp:{command}"] == {"tools": 9, "skipped": {}}
    assert out["totals"] == {"tools": 13, "skipped": 0}


def test_command_not_found() -> None:
    with pytest.raises(SchemaError, match="mcp server 'no-such-mcp-server-x': cannot start it"):
        list_live_tools("no-such-mcp-server-x", timeout=10)


def test_command_printing_garbage_times_out_with_its_stderr() -> None:
    script = ("import sys, time; print('hello, not json'); sys.stderr.write('oops\\n'); "
              "time.sleep(60)")
    command = shlex.join([sys.executable, "-c", script])
    with pytest.raises(SchemaError) as info:
        list_live_tools(command, timeout=3)
    message = str(info.value)
    assert "no complete tools/list within 3 s" in message and "stderr ends: oops" in message


def test_command_that_exits_at_once() -> None:
    command = shlex.join([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(SchemaError, match="mcp server .*: .*Connection closed"):
        list_live_tools(command, timeout=10)


def test_check_reports_a_failing_server(capsys: pytest.CaptureFixture) -> None:
    assert main(["schemas", "check", "--mcp", "no-such-mcp-server-x"]) == 1
    assert "error: mcp server 'no-such-mcp-server-x': cannot start it" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "expected"), [
    ("npx -y @modelcontextprotocol/server-memory", "server-memory"),
    ("/usr/bin/mcp-server-git --repo .", "mcp-server-git"),
    ("uvx mcp-server-fetch@1.2", "mcp-server-fetch"),
])
def test_category_of_a_server(command: str, expected: str) -> None:
    assert category(command) == expected


def test_every_page_of_tools_list_is_read() -> None:
    server = Path(__file__).parent / "fixtures" / "mcp" / "paged_server.py"
    result = list_live_tools(shlex.join([sys.executable, str(server)]), timeout=30)
    assert [t["name"] for t in result["tools"]] == ["tool_first", "tool_second", "tool_third"]
    assert result["tools"][0]["inputSchema"]["properties"] == {"x": {"type": "string"}}
