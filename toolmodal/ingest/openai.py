"""OpenAI-style tool definitions: `{"type": "function", "function": {...}}` or bare functions.

A function object is `{"name", "description", "parameters": <JSON Schema of type object>}`, given
singly or as a list (wrapped and bare entries may be mixed). The return type, which OpenAI's format
lacks, is read from an optional `"returns"` JSON Schema on the function object (our convention).
Left out: `strict` (ignored) and any non-function tool types (rejected).
"""

from __future__ import annotations

from typing import Any

from toolmodal.ingest.common import collect, object_of, returns, text, tool_name
from toolmodal.ingest.errors import FieldError, tool_label
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Tool


def looks_like(doc: Any) -> bool:
    """Whether `doc` is a function object (wrapped or bare) or a non-empty list of objects."""
    if isinstance(doc, list):
        return bool(doc) and all(isinstance(e, dict) for e in doc)
    return isinstance(doc, dict) and any(k in doc for k in ("function", "name", "parameters"))


def read(doc: Any, file: str) -> tuple[list[Tool], list[str]]:
    """All tools of an OpenAI document; errors name file, tool and field."""
    entries = doc if isinstance(doc, list) else [doc]
    return collect(file, ((tool_label(_name_of(e), f"#{i + 1}"),
                           lambda e=e: _tool(e, file)) for i, e in enumerate(entries)))


def _name_of(entry: Any) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("function"), dict):
        return entry["function"].get("name")
    return entry.get("name") if isinstance(entry, dict) else None


def _tool(entry: Any, file: str) -> Tool:
    entry = object_of(entry, "tool")
    if "function" in entry:
        if entry.get("type") != "function":
            raise FieldError("type", f"tool type must be 'function', got {entry.get('type')!r}")
        entry = object_of(entry["function"], "function")
    params = entry.get("parameters", {"type": "object", "properties": {}})
    return Tool(name=tool_name(entry.get("name")),
                description=text(entry.get("description"), "description"),
                parameters=Converter(root=params).object_params(params, "parameters"),
                returns=returns(entry.get("returns"), "returns"),
                source=file)
