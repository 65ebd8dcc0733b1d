"""`toolmodal schemas check`: validate tool schema files and folders, or a live MCP server.

Prints one line per note (a BFCL name redefined in a later record: legal, the first is kept) and
per problem (naming file, tool and field) to stderr, then the summary line `N tools, M categories`
to stdout, last. `--lenient` keeps every tool that can be represented: problems become `skipped:`
lines and the exit code is 0 unless no tool was read. `--json` prints instead
`{"files": {PATH: {"tools": N, "skipped": {REASON: N}}}, "totals": {"tools": N, "skipped": N}}`.
`--mcp "COMMAND ARGS"` (repeatable) reads the tools of MCP servers started over stdio; their
PATH in the summary is `mcp:COMMAND ARGS`. `--python MODULE[:FUNCTION]` (repeatable) reads Python
functions (`toolmodal.ingest.python_functions`); PATH `python:MODULE[:FUNCTION]`. Where notes
were given (e.g. a parameter left out in lenient mode) an entry also has `"notes": {REASON: N}`.
Left out: fixing or rewriting files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from toolmodal.ingest import Ingested, SchemaError, python_functions, sources
from toolmodal.ingest.errors import Problem, reason_of
from toolmodal.ingest.loader import discover


def check(args: argparse.Namespace) -> int:
    """Validate `args.paths` and `args.mcp`; 1 if a problem (strict) or no tool (lenient)."""
    if not args.paths and not args.mcp and not args.python:
        print("error: give schema files or folders, --mcp \"COMMAND ARGS\" or --python "
              "MODULE[:FUNCTION]", file=sys.stderr)
        return 2
    try:
        tools, errors, notes = sources.read_sources(args.paths, args.mcp, args.lenient,
                                                    args.mcp_timeout, args.python)
    except SchemaError as exc:  # a live server that could not be read
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = not tools if args.lenient else bool(errors)
    if args.json:
        print(json.dumps(summary(Ingested(tools, errors, notes), args.paths, args.mcp,
                                 args.python), indent=1))
        return 1 if failed else 0
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for error in errors:
        print(f"{'skipped' if args.lenient else 'error'}: {error}", file=sys.stderr)
    sys.stderr.flush()  # so the summary comes last when both streams go to one terminal
    print(f"{len(tools)} tools, {len({t.category for t in tools})} categories")
    if errors:
        print(f"{len(errors)} {'skipped' if args.lenient else 'error(s)'}", file=sys.stderr)
    return 1 if failed else 0


def summary(ingested: Ingested, paths: list[str], servers: list[str],
            modules: list[str] | tuple[str, ...] = ()) -> dict:
    """The `--json` summary: tools and skipped-by-reason per file, and totals.

    Args:
        ingested: What `sources.read_sources` gave.
        paths: The files and folders given (folders are expanded into their files).
        servers: The MCP server commands given.
        modules: The Python `MODULE[:FUNCTION]` specs given.
    """
    found = [str(f) for f, _ in discover([Path(p) for p in paths], [])]
    files = (found + list(paths) + [sources.label(s) for s in servers]
             + [python_functions.label(m) for m in modules])
    out: dict[str, dict] = {f: {"tools": 0, "skipped": Counter()} for f in found}

    def entry(text: str) -> dict:
        owner = max((f for f in files if text.startswith(f)), key=len, default=text)
        return out.setdefault(owner, {"tools": 0, "skipped": Counter()})

    for tool in ingested.tools:
        entry(tool.source)["tools"] += 1
    for line in ingested.errors:
        entry(line)["skipped"][reason_of(line)] += 1
    for note in ingested.notes:
        entry(note).setdefault("notes", Counter())[
            note.reason if isinstance(note, Problem) else "note"] += 1
    totals = {"tools": len(ingested.tools), "skipped": len(ingested.errors)}
    return {"files": {f: {"tools": e["tools"], "skipped": dict(e["skipped"])}
                      | ({"notes": dict(e["notes"])} if "notes" in e else {})
                      for f, e in out.items()}, "totals": totals}
