"""From an OpenAI request to what the model is asked: chat messages, tools, mask and grammar.

Prompt layout (`toolmodal.chat.build_prompt`): the server's system prompt (the trained prompt
variant), then the tool block, then the conversation. The client's own system or developer
messages are not put in the system slot: they are prefixed to the first user message, so the
tokens up to the end of the tool block depend only on the tools, and llama.cpp reuses their
KV cache across requests that carry the same tools.

Tools go through the pipeline's ingester (`toolmodal.ingest.openai`), one at a time so an error
names `tools[i]` and the field. Assistant turns with `tool_calls` are written back in our call
format (`toolmodal.calls.format_output`); tool results become `tool` turns, in order.

`tool_choice`:
- "auto" (default with tools): the server's mask mode over all offered tools;
- "none" (default without tools): hard mask with no tools, so no call can be written;
- "required" / a named function: hard mask that needs at least one call (to that function),
  with no text before it.
`parallel_tool_calls: false` allows at most one call (exactly one when a call is required).

Deliberately left out: generation (`toolmodal.serve.backends`) and HTTP (`toolmodal.serve.app`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from toolmodal.calls import CALL_END, CALL_START, ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.engines import MaskMode
from toolmodal.ingest import openai as openai_tools
from toolmodal.masking import grammar
from toolmodal.schema import Tool
from toolmodal.serve.protocol import ChatCompletionRequest, ChatMessage, RequestError
from toolmodal.tool_tokens import serialize_tools

_CALLS_RULE = f"calls ::= ({json.dumps(CALL_START)} call_json {json.dumps(CALL_END)})"
_QUANTIFIERS = {(0, None): "*", (1, None): "+", (0, 1): "?", (1, 1): ""}
GRAMMAR_CACHE = 256  # EBNF texts kept (xgrammar's schema conversion takes ms per tool set)
_GRAMMARS: OrderedDict[tuple, str] = OrderedDict()


class ServeConfig(BaseModel):
    """Server settings that shape every request.

    Attributes:
        system_prompt: Text of the system slot (the trained prompt variant).
        mask: Mask mode for tool_choice "auto": "none", "soft" or "hard".
        hard_reasoning: Text allowed before calls under the hard mask with "auto".
        any_order: Whether the hard mask lets arguments come in any order.
        default_max_tokens: Generation budget when the request sets none.
        max_tokens_limit: Largest budget a request may ask for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str
    mask: MaskMode = "none"
    hard_reasoning: grammar.Reasoning = "line"
    any_order: bool = False
    default_max_tokens: int = 256
    max_tokens_limit: int = 2048


@dataclass(frozen=True)
class Plan:
    """One generation: the prompt and how to constrain and stop it.

    Attributes:
        messages: Chat messages for the chat template (system slot first).
        tools: Tools offered in the prompt.
        mask: "none", "soft" (bias towards `allowed` names) or "hard" (`grammar`).
        allowed: Tools the mask favours or allows.
        grammar: xgrammar EBNF of the allowed output (hard mask only).
        max_calls: Stop after this many calls (None: no limit).
        max_tokens: Generation budget.
        temperature: 0 for greedy decoding.
        top_p: Nucleus sampling mass (used when temperature > 0).
        call_decision: tool_choice "auto" with tools: the engine's call decision
            (`EngineConfig.call_threshold`) may withhold a call at the first token.
    """

    messages: list[dict]
    tools: list[Tool]
    mask: MaskMode
    allowed: list[Tool]
    grammar: str | None
    max_calls: int | None
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    call_decision: bool = False


class ToolCache:
    """Ingested tools by their raw JSON, so a repeated tool list is converted once."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._tools: OrderedDict[str, Tool] = OrderedDict()

    def tools(self, raw: list[dict]) -> list[Tool]:
        """Ingest each raw OpenAI tool (errors name `tools[i]`, the tool and the field)."""
        tools = [self._tool(entry, i) for i, entry in enumerate(raw)]
        names = [t.name for t in tools]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise RequestError(f"tools[{i}]: tool name {name!r} is given twice",
                                   param=f"tools[{i}]")
        return tools

    def _tool(self, entry: dict, index: int) -> Tool:
        key = json.dumps(entry, sort_keys=True)
        if key not in self._tools:
            found, errors = openai_tools.read(entry, f"tools[{index}]")
            if errors:
                raise RequestError(errors[0], param=f"tools[{index}]")
            try:
                serialize_tools(found)
            except ValueError as exc:
                raise RequestError(f"tools[{index}]: {exc}", param=f"tools[{index}]") from None
            self._tools[key] = found[0]
            if len(self._tools) > self.size:
                self._tools.popitem(last=False)
        self._tools.move_to_end(key)
        return self._tools[key]


def output_grammar(tools: list[Tool], reasoning: grammar.Reasoning, any_order: bool,
                   min_calls: int, max_calls: int | None) -> str:
    """EBNF of `toolmodal.masking.grammar` with the number of calls bounded.

    Args:
        tools: Tools a call may name (none: text only).
        reasoning: Text allowed before the calls ("none", "line", "free").
        any_order: Whether arguments may come in any order.
        min_calls: 0 or 1.
        max_calls: 1 or None (no limit).
    """
    key = (grammar.tool_set_key(tools), reasoning, any_order, min_calls, max_calls)
    if key not in _GRAMMARS:
        text = grammar.ebnf(tools, reasoning, any_order)
        if tools and text.count(_CALLS_RULE + "*") != 1:
            raise RuntimeError(f"toolmodal.masking.grammar.ebnf no longer writes {_CALLS_RULE}*")
        quantifier = _QUANTIFIERS[(min_calls, max_calls)]
        _GRAMMARS[key] = text.replace(_CALLS_RULE + "*", _CALLS_RULE + quantifier)
        if len(_GRAMMARS) > GRAMMAR_CACHE:
            _GRAMMARS.popitem(last=False)
    return _GRAMMARS[key]


def conversation(messages: list[ChatMessage], system_prompt: str,
                 tools: list[Tool]) -> list[dict]:
    """Our chat messages for an OpenAI message list (see the module docstring)."""
    client_system = "\n\n".join(m.text() for m in messages if m.role in ("system", "developer"))
    turns = [(i, m) for i, m in enumerate(messages) if m.role not in ("system", "developer")]
    if not turns or turns[0][1].role != "user":
        where = f"messages[{turns[0][0]}]" if turns else "messages"
        raise RequestError(f"{where}: the conversation must start with a user message",
                           param=where)
    first = turns[0][1].text()
    query = f"{client_system}\n\n{first}" if client_system else first
    out = build_prompt(system_prompt, tools, query)
    out += [_turn(message, i) for i, message in turns[1:]]
    return out


def _turn(message: ChatMessage, index: int) -> dict:
    if message.role != "assistant":
        return {"role": message.role, "content": message.text()}
    calls = [_call(tc.function.name, tc.function.arguments,
                   f"messages[{index}].tool_calls[{j}].function.arguments")
             for j, tc in enumerate(message.tool_calls or [])]
    return {"role": "assistant", "content": format_output(calls, reasoning=message.text())}


def _call(name: str, arguments: str, where: str) -> ToolCall:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise RequestError(f"{where}: not JSON ({exc}): {arguments[:80]!r}", param=where) from None
    if not isinstance(parsed, dict):
        raise RequestError(f"{where}: must be a JSON object, got {arguments[:80]!r}", param=where)
    return ToolCall(name=name, arguments=parsed)


def plan_request(request: ChatCompletionRequest, config: ServeConfig,
                 tool_cache: ToolCache) -> Plan:
    """Translate a validated request into a Plan.

    Raises:
        RequestError: A tool the ingester rejects, a named tool_choice that is not offered, a
            tool_choice that needs tools when none are given, or a budget over the limit.
    """
    tools = tool_cache.tools(request.tools or [])
    max_tokens = request.max_completion_tokens or request.max_tokens or config.default_max_tokens
    if max_tokens > config.max_tokens_limit:
        raise RequestError(f"max_tokens: {max_tokens} is over this server's limit of "
                           f"{config.max_tokens_limit}", param="max_tokens")
    mask, allowed, gram, max_calls = _constraint(request, config, tools)
    return Plan(messages=conversation(request.messages, config.system_prompt, tools),
                tools=tools, mask=mask, allowed=allowed, grammar=gram, max_calls=max_calls,
                max_tokens=max_tokens, temperature=request.temperature or 0.0,
                top_p=request.top_p or 1.0,
                call_decision=bool(tools) and (request.tool_choice or "auto") == "auto")


def _constraint(request: ChatCompletionRequest, config: ServeConfig,
                tools: list[Tool]) -> tuple[MaskMode, list[Tool], str | None, int | None]:
    """(mask, allowed tools, grammar, max calls) for the request's tool_choice."""
    choice = request.tool_choice or ("auto" if tools else "none")
    max_calls = None if request.parallel_tool_calls else 1
    if choice == "none":
        return "hard", [], output_grammar([], "free", False, 0, None), None
    if not tools:
        raise RequestError(f"tool_choice: {choice!r} needs at least one tool in `tools`",
                           param="tool_choice")
    if choice == "auto":
        gram = (output_grammar(tools, config.hard_reasoning, config.any_order, 0, max_calls)
                if config.mask == "hard" else None)
        return config.mask, tools, gram, max_calls
    allowed = tools if choice == "required" else [_named(choice.function.name, tools)]
    return "hard", allowed, output_grammar(allowed, "none", config.any_order, 1,
                                           max_calls), max_calls


def _named(name: str, tools: list[Tool]) -> Tool:
    for tool in tools:
        if tool.name == name:
            return tool
    raise RequestError(f"tool_choice.function.name: {name!r} is not among the offered tools "
                       f"{[t.name for t in tools]}", param="tool_choice.function.name")
