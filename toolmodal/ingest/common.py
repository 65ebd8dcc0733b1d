"""Pieces every format reader shares: tool-name and description checks, error collection.

Left out: format detection and categories (see `toolmodal.ingest.loader`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from toolmodal.ingest.errors import FieldError
from toolmodal.ingest.jsonschema import Converter
from toolmodal.schema import Param, Tool

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def tool_name(value: Any, field: str = "name") -> str:
    """Return `value` if it is a usable tool name, else raise FieldError naming `field`."""
    if value is None:
        raise FieldError(field, "missing tool name")
    if not isinstance(value, str):
        raise FieldError(field, f"name must be a string, got {value!r}")
    if not NAME_RE.fullmatch(value):
        raise FieldError(field, f"invalid tool name {value!r}: must match {NAME_RE.pattern}")
    return value


def text(value: Any, field: str) -> str:
    """An optional free-text field: absent/None gives "", anything but a string fails."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(field, f"{field.rsplit('.', 1)[-1]} must be a string, got {value!r}")
    return value


def object_of(value: Any, field: str) -> dict:
    """`value` if it is a JSON object, else FieldError ("parameters must be an object")."""
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else repr(value)
        raise FieldError(field, f"{field.rsplit('.', 1)[-1]} must be an object, got {kind}")
    return value


def returns(schema: Any, field: str) -> Param | None:
    """The return schema at `field` ("#/..." refs inside it point into it), or None if absent."""
    return None if schema is None else Converter(root=schema).param(schema, field)


def collect(file: str, entries: Iterable[tuple[str, Callable[[], Tool]]]
            ) -> tuple[list[Tool], list[str]]:
    """Build each tool, turning a FieldError into an error line that names file and tool.

    Args:
        file: File label for messages.
        entries: (tool label as made by `errors.tool_label`, function building the Tool).
    """
    tools: list[Tool] = []
    errors: list[str] = []
    for label, build in entries:
        try:
            tools.append(build())
        except FieldError as exc:
            errors.append(exc.render(file, label))
    return tools, errors
