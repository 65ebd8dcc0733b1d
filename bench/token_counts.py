"""Prompt tokens of the bundled catalogue: tool-token form vs compact OpenAI-style JSON.

For each tool, counts the ids the prepared 270M tokenizer needs for `serialize_tool(tool)` and
for `json.dumps(openai_tool(tool), separators=(",", ":"))`, then the whole catalogue both ways.
The JSON carries the same information as the token form (descriptions, enums, defaults, bounds,
nested properties and items; the return schema under a non-standard "returns" key when declared);
the token form also carries the category. Leaves out any model forward pass: it only tokenizes.

    .venv/bin/python bench/token_counts.py [--model DIR] [PATH ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from toolmodal.ingest import load_catalogue
from toolmodal.model import PREPARED_MODEL, load_tokenizer
from toolmodal.schema import Param, Tool
from toolmodal.tool_tokens import serialize_tool, serialize_tools

REPO_ROOT = Path(__file__).resolve().parent.parent


def json_schema(param: Param) -> dict[str, Any]:
    """JSON Schema of one parameter, with the prompt-relevant keywords."""
    schema: dict[str, Any] = {} if param.type == "any" else {"type": param.type}
    if param.description:
        schema["description"] = param.description
    if param.enum is not None:
        schema["enum"] = list(param.enum)
    if param.has_default:
        schema["default"] = param.default
    keywords = {"minimum": param.minimum, "maximum": param.maximum, "minLength": param.min_length,
                "maxLength": param.max_length, "pattern": param.pattern}
    schema |= {k: v for k, v in keywords.items() if v is not None}
    if param.items is not None:
        schema["items"] = json_schema(param.items)
    if param.type == "object":
        schema |= object_schema(param.properties)
    return schema


def object_schema(properties: tuple[Param, ...]) -> dict[str, Any]:
    """`properties` and `required` of an object schema."""
    schema: dict[str, Any] = {"type": "object",
                              "properties": {p.name: json_schema(p) for p in properties}}
    required = [p.name for p in properties if p.required]
    return schema | {"required": required} if required else schema


def openai_tool(tool: Tool) -> dict[str, Any]:
    """The tool as an OpenAI `{"type": "function", "function": {...}}` entry."""
    function: dict[str, Any] = {"name": tool.name, "description": tool.description,
                                "parameters": object_schema(tool.parameters)}
    if tool.returns is not None:
        function["returns"] = json_schema(tool.returns)
    return {"type": "function", "function": function}


def compact(value: Any) -> str:
    """Compact JSON as it would be pasted into a prompt."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PREPARED_MODEL, help="tokenizer folder")
    parser.add_argument("paths", nargs="*", type=Path,
                        default=[REPO_ROOT / "data" / "tool_schemas"])
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.model)
    tools = list(load_catalogue(args.paths).tools)

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    print(f"{'tool':<34} {'category':<14} {'tokens':>6} {'json':>6} {'ratio':>6}")
    for tool in tools:
        ours, theirs = count(serialize_tool(tool)), count(compact(openai_tool(tool)))
        print(f"{tool.name:<34} {tool.category:<14} {ours:>6} {theirs:>6} {ours / theirs:>6.2f}")
    ours = count(serialize_tools(tools))
    theirs = count(compact([openai_tool(t) for t in tools]))
    print(f"\n{len(tools)} tools: tool-token form {ours} tokens, compact JSON {theirs} tokens "
          f"({ours / theirs:.2f}x, {100 * (1 - ours / theirs):.0f}% fewer); "
          f"mean per tool {ours / len(tools):.0f} vs {theirs / len(tools):.0f}")


if __name__ == "__main__":
    main()
