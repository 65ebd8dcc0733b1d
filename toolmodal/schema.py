"""The normalized, typed model of a tool schema that every stage of toolmodal works on.

Every source format (OpenAI, BFCL, MCP, OpenAPI) is ingested into these classes; nothing
downstream looks at a source format again. This module holds only the data model and its content
hashes: parsing lives in `toolmodal.ingest`, the token serialization in `toolmodal.tool_tokens`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ParamType = Literal["string", "integer", "number", "boolean", "array", "object", "null", "any"]
JSON_TYPES: tuple[str, ...] = ParamType.__args__  # type: ignore[attr-defined]


class Param(BaseModel):
    """One parameter (or nested property, array item, or return value) of a tool.

    Attributes:
        name: Parameter name; "" for array items and return values.
        type: JSON type of the value.
        description: Free text, "" when the source had none.
        required: Whether the caller must pass it.
        default: Default value when `has_default` is true (None is a legal default).
        has_default: Distinguishes "no default" from a default of null.
        enum: Allowed values, or None for no restriction.
        items: Schema of array elements (type "array" only).
        properties: Nested properties (type "object" only), in source order.
        minimum/maximum/min_length/max_length/pattern: Numeric and string constraints.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    type: ParamType
    description: str = ""
    required: bool = False
    default: Any = None
    has_default: bool = False
    enum: tuple[Any, ...] | None = None
    items: Param | None = None
    properties: tuple[Param, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    def __hash__(self) -> int:
        # Defaults and enum values may be lists or objects (JSON), which Python cannot hash;
        # equal parameters have equal JSON, so hashing it keeps hash and equality consistent.
        return hash(self.model_dump_json())

    def property(self, name: str) -> Param:
        """Return the nested property called `name` (KeyError names the parent and child)."""
        for prop in self.properties:
            if prop.name == name:
                return prop
        raise KeyError(f"{self.name or '<value>'} has no property {name!r}")


class Tool(BaseModel):
    """A callable tool: name, description, parameters and return type.

    Attributes:
        name: Function name as the model must emit it.
        description: What the tool does.
        parameters: Top-level parameters in source order.
        returns: Schema of the result, or None when the source did not declare one.
        category: Group the tool belongs to (e.g. "weather"); used for balance and held-out splits.
        source: Where the tool came from, "file.json" or "file.json#/paths/..." for reporting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    parameters: tuple[Param, ...] = ()
    returns: Param | None = None
    category: str = "uncategorized"
    source: str = Field(default="", exclude=True)

    def param(self, name: str) -> Param:
        """Return the top-level parameter called `name` (KeyError names the tool)."""
        for param in self.parameters:
            if param.name == name:
                return param
        raise KeyError(f"tool {self.name!r} has no parameter {name!r}")

    @property
    def required_names(self) -> list[str]:
        """Names of the required top-level parameters."""
        return [p.name for p in self.parameters if p.required]

    def content_hash(self) -> str:
        """Stable sha256 of the tool's content (source location excluded)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Catalogue(BaseModel):
    """An ordered set of tools with unique names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tools: tuple[Tool, ...]

    def tool(self, name: str) -> Tool:
        """Return the tool called `name` (KeyError lists nothing more: catalogues are large)."""
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(f"catalogue has no tool {name!r}")

    @property
    def categories(self) -> list[str]:
        """Sorted distinct categories."""
        return sorted({t.category for t in self.tools})

    def content_hash(self) -> str:
        """Stable sha256 over the sorted per-tool hashes: order of files does not matter."""
        joined = "\n".join(sorted(t.content_hash() for t in self.tools))
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """Serialize, keeping each tool's source for error messages."""
        rows = [t.model_dump(mode="json") | {"source": t.source} for t in self.tools]
        return json.dumps({"tools": rows}, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Catalogue:
        """Inverse of `to_json`."""
        return cls(tools=tuple(Tool(**row) for row in json.loads(text)["tools"]))
