"""Error types of schema ingestion.

`FieldError` is raised deep inside a converter and knows only the field at fault; the format
readers catch it and render it with the file and the tool into a line of a `SchemaError`.
Left out: warnings. Ingestion either accepts a definition or reports it; the one legal oddity,
a BFCL file redefining a name in a later record, is a note (`loader.Ingested.notes`), not an error.
"""

from __future__ import annotations


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

    def render(self, file: str, tool: str) -> str:
        """The full error line: `file: tool 'name': field: message` (see `tool_label`)."""
        return f"{file}: {tool}: {self}"


def tool_label(name: object, position: str) -> str:
    """How an error names a tool: `tool 'get_weather'`, or `tool #3` when it has no usable name."""
    if isinstance(name, str) and name:
        return f"tool {name!r}"
    return f"tool {position}"
