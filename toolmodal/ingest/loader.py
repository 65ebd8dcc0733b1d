"""Find schema files, detect each file's format by content, and build one catalogue.

Categories: a tool's category is the name of the folder holding its file; a file passed directly,
or lying directly in a folder passed, gets its file stem. Tool names must be unique across the
whole catalogue (the one exception, a BFCL file redefining a name in a later record, gives a
note, see `toolmodal.ingest.bfcl`). Every problem in every file is collected before anything is
reported. Nothing is ever written. Left out: remote URLs and compressed files.

Strict mode (the default, for a user's own catalogue): any error fails ingestion. Lenient mode
(`lenient=True`, for catalogues written by others): the same lines list what was skipped, every
representable tool is kept, and `errors.reason_of` groups the lines by reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from toolmodal.ingest import bfcl, mcp, openai, openapi
from toolmodal.ingest.errors import Problem
from toolmodal.schema import Tool

SUFFIXES = (".json", ".jsonl", ".yaml", ".yml")
REQUESTS_FILE = "requests.yaml"  # request templates (toolmodal.datagen.templates)
FORMATS = ("an OpenAI tool list or function object, BFCL JSON Lines, "
           "an MCP tools/list result or an OpenAPI 3 document")


class Ingested(NamedTuple):
    """What reading schema files gives.

    Attributes:
        tools: The valid tools (first definition of each name).
        errors: One line per problem, naming file, tool and field; any error fails ingestion.
        notes: One line per BFCL redefinition across records (legal; the first is kept), and
            one per thing lenient OpenAPI reading dropped to keep a tool (see `openapi.read`).
    """

    tools: list[Tool]
    errors: list[str]
    notes: list[str]


def ingest_paths(paths: list[Path], lenient: bool = False) -> Ingested:
    """Read every schema file under `paths`.

    Args:
        paths: Files and/or folders (folders are searched recursively for *.json, *.jsonl,
            *.yaml and *.yml, hidden entries and request templates `requests.yaml` skipped).
        lenient: Read OpenAPI operationIds that are not tool names by rewriting them (see
            `toolmodal.ingest.openapi`); the error lines are then what was skipped.

    Returns:
        The valid tools in a deterministic order (paths as given, files sorted within a folder),
        each with its category set, one error line per problem found, and the notes.
    """
    tools: list[Tool] = []
    errors: list[str] = []
    notes: list[str] = []
    for file, category in discover(paths, errors):
        file_tools, file_errors, file_notes = read_file(file, lenient)
        tools += [t.model_copy(update={"category": category}) for t in file_tools]
        errors += file_errors
        notes += file_notes
    return Ingested(*unique(tools, errors), notes)


def read_file(path: Path, lenient: bool = False) -> Ingested:
    """Tools, error lines and notes of one file (category not yet set)."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _failed(f"{path}: cannot read file: {exc}")
    return read_text(content, str(path), is_yaml=path.suffix in (".yaml", ".yml"),
                     lenient=lenient)


def read_text(content: str, label: str, is_yaml: bool = False,
              lenient: bool = False) -> Ingested:
    """Tools, error lines and notes of a file's text; `label` names the file in messages."""
    if not content.strip():
        return _failed(f"{label}: file is empty")
    if is_yaml:
        return _read_yaml(content, label, lenient)
    try:
        doc = json.loads(content)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return _read_json_lines(content, label)
        return _failed(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                       f"{exc.msg}")
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        return _failed(f"{label}: invalid JSON: {exc or 'nested too deeply'}")
    return _read_guarded(doc, label, lenient)


def _failed(error: str) -> Ingested:
    return Ingested([], [error], [])


def _read_yaml(content: str, label: str, lenient: bool) -> Ingested:
    """YAML is read as the JSON it spells; dates, sets, binary and cycles are rejected."""
    try:
        doc = yaml.safe_load(content)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: bad timestamps
        return _failed(f"{label}: invalid YAML: {exc}")
    try:
        doc = json.loads(json.dumps(doc, allow_nan=True))
    except (TypeError, ValueError, RecursionError) as exc:
        return _failed(f"{label}: YAML holds a value JSON cannot represent: {exc}")
    return _read_guarded(doc, label, lenient)


def _read_guarded(doc: Any, label: str, lenient: bool) -> Ingested:
    try:
        return read_document(doc, label, lenient)
    except RecursionError:
        return _failed(f"{label}: document nested too deeply")


def read_document(doc: Any, label: str, lenient: bool = False) -> Ingested:
    """Detect the format of a parsed document and read its tools."""
    if openapi.looks_like(doc):
        return Ingested(*openapi.read(doc, label, lenient))
    if mcp.looks_like(doc):
        return Ingested(*mcp.read(doc, label), [])
    if bfcl.looks_like(doc):
        return Ingested(*bfcl.read_lines([(1, doc)], label))
    if openai.looks_like(doc):
        return Ingested(*openai.read(doc, label), [])
    return _failed(f"{label}: unknown format: expected {FORMATS}")


def _read_json_lines(content: str, label: str) -> Ingested:
    records, errors = [], []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            errors.append(f"{label}:{number}: line is not valid JSON (BFCL files hold one "
                          f"record per line): {exc.msg} at column {exc.colno}")
        except RecursionError:
            errors.append(f"{label}:{number}: line is not valid JSON: nested too deeply")
    tools, record_errors, notes = bfcl.read_lines(records, label)
    return Ingested(tools, errors + record_errors, notes)


def discover(paths: list[Path], errors: list[str]) -> list[tuple[Path, str]]:
    """The schema files under `paths` with their categories; problems appended to `errors`."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_file():
            found.append((path, path.stem))
        elif path.is_dir():
            files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                            and p.name != REQUESTS_FILE
                            and not any(part.startswith(".") for part in
                                        p.relative_to(path).parts)),
                           key=lambda p: p.relative_to(path).as_posix())
            if not files:
                errors.append(f"{path}: no schema files ({', '.join(SUFFIXES)}) in folder")
            found += [(p, p.stem if p.parent == path else p.parent.name) for p in files]
        else:
            errors.append(f"{path}: no such file or folder")
    return found


def unique(tools: list[Tool], errors: list[str]) -> tuple[list[Tool], list[str]]:
    """Keep the first tool of each name; every later one is an error naming both sources."""
    first: dict[str, Tool] = {}
    for tool in tools:
        if tool.name in first:
            errors.append(Problem(f"{tool.source}: tool {tool.name!r}: name: duplicate tool "
                                  f"name, also defined in {first[tool.name].source}",
                                  "duplicate tool name"))
        else:
            first[tool.name] = tool
    return list(first.values()), errors
