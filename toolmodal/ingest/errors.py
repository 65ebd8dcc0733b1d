"""Error types of schema ingestion.

`FieldError` is raised deep inside a converter and knows only the field at fault; the format
readers catch it and render it with the file and the tool into a line of a `SchemaError`.
Left out: warnings. Ingestion either accepts a definition or reports it; the one legal oddity,
a BFCL file redefining a name in a later record, is a note (`loader.Ingested.notes`), not an error.
"""

from __future__ import annotations

import re

_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\[[^\]]*\]|\{[^}]*\}|\b\d+\b")


class SchemaError(ValueError):
    """One or more problems in tool schema files, one line each naming file, tool and field.

    Attributes:
        errors: The individual messages, e.g. "data/x/y.json: tool 'get_weather':
            parameters.properties.unit.enum: enum values must be strings for type 'string', got 3".
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class FieldError(Exception):
    """A problem at one field of one tool definition (file and tool are added by the caller)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def render(self, file: str, tool: str) -> Problem:
        """The full error line: `file: tool 'name': field: message` (see `tool_label`)."""
        return Problem(f"{file}: {tool}: {self}", reason(self.message))


class Problem(str):
    """An error line that also knows its reason, the message with its values blanked.

    Lenient ingestion counts skipped operations by reason ("unknown type …; expected one of …").

    Attributes:
        reason: The message with quoted values, lists and numbers replaced by "…".
    """

    reason: str

    def __new__(cls, line: str, reason_: str) -> Problem:
        out = super().__new__(cls, line)
        out.reason = reason_
        return out


def reason(message: str) -> str:
    """`message` with its values blanked, so equal problems share one reason."""
    return _VALUES.sub("…", message)


def reason_of(line: str) -> str:
    """The reason of an error line (a line not made by `FieldError.render` names a file)."""
    return line.reason if isinstance(line, Problem) else "file not read"


def tool_label(name: object, position: str) -> str:
    """How an error names a tool: `tool 'get_weather'`, or `tool #3` when it has no usable name."""
    if isinstance(name, str) and name:
        return f"tool {name!r}"
    return f"tool {position}"
