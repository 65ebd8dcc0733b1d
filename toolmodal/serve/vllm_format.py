"""The pure half of the vLLM tool-parser plugin: our output format in vLLM's terms, no vllm.

`toolmodal/serve/vllm_tool_parser.py` (loaded by `vllm serve --tool-parser-plugin`) only wraps
these functions in vLLM's classes, so the parsing is tested here without vllm installed:

- `extract(text)`: a whole output -> (content or None, calls as OpenAI dicts);
- `StreamSplitter.delta(text)`: the next piece of a streamed output -> (content, call deltas);
- `constraint(tools, tool_choice, parallel)`: the xgrammar EBNF that vLLM's structured outputs
  should enforce for tool_choice "required" or a named function (None otherwise), the same
  grammar `toolmodal serve` uses, so vLLM never falls back to its own JSON-list format;
- `chat_template(system_prompt)`: `vllm_chat_template.jinja` with the prompt filled in. vLLM
  renders the request's tools through the chat template, and the model's own template has no
  place for them, so `vllm serve` needs this one (`--chat-template`). Written out by
  `python -m toolmodal.serve.vllm_format --system-prompt configs/system_prompts/default.yaml`.

Deliberately left out: vLLM's request and response classes (the wrapper builds them from these
plain dicts; pydantic turns the dicts into vLLM's models).
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import yaml

from toolmodal.calls import ToolCall
from toolmodal.serve.callstream import Call, CallStream, Content, split_output
from toolmodal.serve.translate import ToolCache, output_grammar

_TOOLS = ToolCache()
TEMPLATE = Path(__file__).with_name("vllm_chat_template.jinja")
_PROMPT_SLOT = "{%- set default_prompt = DEFAULT_PROMPT -%}"


def call_dict(call: ToolCall) -> dict:
    """A call as an OpenAI `function` object, arguments as a JSON string."""
    return {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}


def extract(text: str) -> tuple[str | None, list[dict]]:
    """(content or None, [{"type": "function", "function": {...}}]) of a complete output."""
    content, calls = split_output(text)
    return content or None, [{"type": "function", "function": call_dict(c)} for c in calls]


class StreamSplitter:
    """Per-request streaming state: feed each new piece of text, get what to send."""

    def __init__(self) -> None:
        self._stream = CallStream()

    def delta(self, text: str) -> tuple[str | None, list[dict]]:
        """(new content or None, call deltas with index, id, type and the whole function)."""
        content, calls = [], []
        for event in self._stream.feed(text):
            if isinstance(event, Content):
                content.append(event.text)
            elif isinstance(event, Call):
                calls.append({"index": event.index, "id": f"call_{uuid.uuid4().hex[:24]}",
                              "type": "function", "function": call_dict(event.call)})
        return ("".join(content) or None), calls


def constraint(tools: list[dict], tool_choice: object, parallel: bool) -> str | None:
    """EBNF forcing a call for tool_choice "required" or a named function, else None.

    Args:
        tools: The request's tools as OpenAI dicts.
        tool_choice: "none", "auto", "required", or `{"type": "function", "function":
            {"name": ...}}`.
        parallel: `parallel_tool_calls`; False allows exactly one call.

    Raises:
        ValueError: A named function that is not among the tools.
    """
    if not tools or tool_choice in (None, "none", "auto"):
        return None
    offered = _TOOLS.tools(tools)
    if tool_choice != "required":
        name = tool_choice["function"]["name"]
        offered = [t for t in offered if t.name == name]
        if not offered:
            raise ValueError(f"tool_choice names {name!r}, which is not among the tools")
    return output_grammar(offered, "none", False, 1, None if parallel else 1)


def chat_template(system_prompt: str) -> str:
    """The vLLM chat template with `system_prompt` as the default system slot."""
    text = TEMPLATE.read_text(encoding="utf-8")
    literal = json.dumps(system_prompt, ensure_ascii=True)  # also a valid Jinja string literal
    return text.replace(_PROMPT_SLOT, "{%- set default_prompt = " + literal + " -%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print the chat template for `vllm serve`.")
    parser.add_argument("--system-prompt", default="configs/system_prompts/default.yaml",
                        help="YAML prompt variant whose `text` fills the system slot")
    prompt = yaml.safe_load(Path(parser.parse_args().system_prompt).read_text("utf-8"))["text"]
    print(chat_template(prompt), end="")
