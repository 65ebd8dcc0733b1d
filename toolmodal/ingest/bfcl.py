"""BFCL question records: JSON Lines, one `{"id", "question", "function": [tool, ...]}` per line.

A BFCL tool is `{"name", "description", "parameters": {"type": "dict", "properties", "required"}}`
with Python-style types (string, integer, float, boolean, array, tuple, dict, any). BFCL scopes
tools per question, so a name may come back in a later record: an identical repeat is kept once;
a repeat that differs is still fully validated, then reported as a note (not an error) naming
both lines, and the catalogue keeps the first definition (it holds one per name). A name twice in
one record is an error. Left out: the questions themselves (the evaluator reads those) and BFCL's
`optional` key (`required` decides).
"""

from __future__ import annotations

from typing import Any

from toolmodal.ingest.common import collect, object_of, text, tool_name
from toolmodal.ingest.errors import SchemaError, tool_label
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Tool


def looks_like(doc: Any) -> bool:
    """Whether `doc` is one BFCL record."""
    return isinstance(doc, dict) and isinstance(doc.get("function"), list)


def tools_from_bfcl_record(record: dict, source: str) -> list[Tool]:
    """The tools offered by one BFCL question record.

    Args:
        record: A parsed line of a BFCL question file.
        source: Label for messages and `Tool.source`, e.g. "BFCL_v4_multiple.json:3".

    Raises:
        SchemaError: naming source, tool and field of every bad definition.
    """
    tools, errors = _record(record, source)
    if errors:
        raise SchemaError(errors)
    return tools


def read_lines(records: list[tuple[int, Any]], file: str
               ) -> tuple[list[Tool], list[str], list[str]]:
    """The tools of a BFCL file given as (line number, parsed record) pairs.

    Returns:
        The first definition of each name, one error line per malformation, and one note per
        record that redefines a name of an earlier record differently.
    """
    kept: dict[str, tuple[int, Tool]] = {}
    errors: list[str] = []
    notes: list[str] = []
    for line, record in records:
        tools, record_errors = _record(record, f"{file}:{line}")
        errors += record_errors
        for tool in tools:
            first_line, first = kept.setdefault(tool.name, (line, tool))
            if first_line != line and first.content_hash() != tool.content_hash():
                notes.append(f"{file}:{line}: tool {tool.name!r} redefined (differs from line "
                             f"{first_line}); BFCL scopes tools per question, the catalogue "
                             "keeps the first")
    return [tool for _, tool in kept.values()], errors, notes


def _record(record: Any, source: str) -> tuple[list[Tool], list[str]]:
    if not looks_like(record):
        return [], [f"{source}: not a BFCL record (expected an object with a 'function' list)"]
    functions = record["function"]
    tools, errors = collect(source, (
        (tool_label(f.get("name") if isinstance(f, dict) else None, f"#{i + 1}"),
         lambda f=f: _tool(f, source)) for i, f in enumerate(functions)))
    names = [t.name for t in tools]
    errors += [f"{source}: tool {n!r}: name: duplicate tool name in one record"
               for n in sorted({n for n in names if names.count(n) > 1})]
    return tools, errors


def _tool(entry: Any, source: str) -> Tool:
    entry = object_of(entry, "function")
    params = object_of(entry.get("parameters", {"type": "dict", "properties": {}}), "parameters")
    conv = Converter(root=params, dialect="bfcl")
    return Tool(name=tool_name(entry.get("name")),
                description=text(entry.get("description"), "description"),
                parameters=conv.object_params(params, "parameters"),
                source=source)
