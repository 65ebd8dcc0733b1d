"""The tool modality: tool schemas as a compact sequence of special tokens, and back.

A tool is written between `<tool_start>` and `<tool_end>`; each schema component is introduced by
its own token and each JSON type has a token of its own, so the model reads structure from single
ids instead of JSON punctuation:

    <tool_start><func_name>get_weather<description>Current weather for a city<category>weather
    <param>city<type_string><required><description>City name
    <param>unit<type_enum>["celsius","fahrenheit"]<optional><default>"celsius"<tool_end>

(shown on several lines for reading; the real form has no newlines between components). Grammar
of one parameter ("spec"), every part after the type optional and in this order:

    [name] TYPE [<required>|<optional>] [<description>text] [<default>json] [<enum>json]
    [<minimum>num] [<maximum>num] [<min_length>int] [<max_length>int] [<pattern>text]
    [<items>spec] [<param>spec ... <param_end>]      (properties: objects only, always closed)

`<type_enum>` is shorthand for a string with an enum: its JSON list follows the token directly.
Free text (names, descriptions, category, pattern) is written raw unless it contains something that
looks like a tag (`<...>`) or starts with a double quote; then it is written as a JSON string
literal with `<` escaped as `\\u003c`, so no text can ever forge a token. JSON values (defaults,
enums) get the same escaping. This makes `parse_tools(serialize_tools(t)) == t` for every tool
(the `source` field, which is reporting metadata, is not carried).

The seed design's separate `<type>` marker is folded into the per-type tokens (one id, not two).
The call delimiters `<tool_call>`/`</tool_call>` (from `toolmodal.calls`) and
`<tool_response>`/`</tool_response>` are added to the tokenizer as plain (non-special) added tokens,
like Qwen does, so `decode(..., skip_special_tokens=True)` keeps them; the schema tokens are
special tokens. Deliberately left out: the chat layout (see `toolmodal.chat`) and loading/saving
models (see `toolmodal.model`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import torch
from tokenizers import AddedToken

from toolmodal.calls import CALL_END, CALL_START
from toolmodal.schema import JSON_TYPES, Param, Tool

TOOL_START, TOOL_END = "<tool_start>", "<tool_end>"
FUNC_NAME, DESCRIPTION, CATEGORY = "<func_name>", "<description>", "<category>"
PARAM, PARAM_END, ITEMS, RETURN_TYPE = "<param>", "<param_end>", "<items>", "<return_type>"
REQUIRED, OPTIONAL, DEFAULT, ENUM = "<required>", "<optional>", "<default>", "<enum>"
MINIMUM, MAXIMUM, MIN_LENGTH, MAX_LENGTH = "<minimum>", "<maximum>", "<min_length>", "<max_length>"
PATTERN = "<pattern>"
TYPE_ENUM = "<type_enum>"
TYPE_TOKENS: dict[str, str] = {t: f"<type_{t}>" for t in JSON_TYPES}
RESPONSE_START, RESPONSE_END = "<tool_response>", "</tool_response>"

SCHEMA_TOKENS: list[str] = [
    TOOL_START, TOOL_END, FUNC_NAME, DESCRIPTION, CATEGORY, PARAM, PARAM_END, ITEMS, RETURN_TYPE,
    REQUIRED, OPTIONAL, DEFAULT, ENUM, MINIMUM, MAXIMUM, MIN_LENGTH, MAX_LENGTH, PATTERN,
    *TYPE_TOKENS.values(), TYPE_ENUM,
]
DELIMITER_TOKENS: list[str] = [CALL_START, CALL_END, RESPONSE_START, RESPONSE_END]
TOOL_TOKENS: list[str] = SCHEMA_TOKENS + DELIMITER_TOKENS

_TYPE_OF_TOKEN = {tok: name for name, tok in TYPE_TOKENS.items()}
_SPLIT_RE = re.compile("(" + "|".join(re.escape(t) for t in SCHEMA_TOKENS) + ")")
_TAG_LIKE_RE = re.compile(r"<[^<>\s]*>")
# Attribute tokens in their fixed order, with the Param field each one fills.
_VALUE_ATTRS = [(DEFAULT, "default"), (ENUM, "enum"), (MINIMUM, "minimum"), (MAXIMUM, "maximum"),
                (MIN_LENGTH, "min_length"), (MAX_LENGTH, "max_length")]


# ---------------------------------------------------------------------------------------------
# Serialization


def _text(value: str) -> str:
    """Free text as written: raw, or a JSON literal when it could be mistaken for a token."""
    if _TAG_LIKE_RE.search(value) or value.startswith('"'):
        return _json(value)
    return value


def _json(value: Any) -> str:
    """Compact JSON with `<` escaped, so a string value can never spell a token."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _number(value: float) -> str:
    """Shortest JSON for a numeric bound: 5.0 is written as 5 (it parses back as float 5.0)."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return _json(value)


def _spec(param: Param, named: bool) -> str:
    """Serialize one parameter; `named` is true inside an object (params and properties)."""
    if param.properties and param.type != "object":
        raise ValueError(f"parameter {param.name!r}: properties given for type {param.type!r}")
    if param.default is not None and not param.has_default:
        raise ValueError(f"parameter {param.name!r}: default {param.default!r} without has_default")
    string_enum = param.type == "string" and param.enum is not None
    parts = [_text(param.name), TYPE_ENUM + _json(list(param.enum)) if string_enum
             else TYPE_TOKENS[param.type]]
    if param.required or named:
        parts.append(REQUIRED if param.required else OPTIONAL)
    if param.description:
        parts.append(DESCRIPTION + _text(param.description))
    if param.has_default:
        parts.append(DEFAULT + _json(param.default))
    if param.enum is not None and not string_enum:
        parts.append(ENUM + _json(list(param.enum)))
    bounds = [(MINIMUM, param.minimum), (MAXIMUM, param.maximum)]
    parts.extend(token + _number(value) for token, value in bounds if value is not None)
    lengths = [(MIN_LENGTH, param.min_length), (MAX_LENGTH, param.max_length)]
    parts.extend(token + str(value) for token, value in lengths if value is not None)
    if param.pattern is not None:
        parts.append(PATTERN + _text(param.pattern))
    if param.items is not None:
        parts.append(ITEMS + _spec(param.items, named=False))
    if param.type == "object":
        parts.extend(PARAM + _spec(p, named=True) for p in param.properties)
        parts.append(PARAM_END)
    return "".join(parts)


def serialize_tool(tool: Tool) -> str:
    """Serialize one tool to its token form (see the module docstring for the grammar)."""
    parts = [TOOL_START, FUNC_NAME, _text(tool.name)]
    if tool.description:
        parts += [DESCRIPTION, _text(tool.description)]
    if tool.category != Tool.model_fields["category"].default:
        parts += [CATEGORY, _text(tool.category)]
    parts.extend(PARAM + _spec(p, named=True) for p in tool.parameters)
    if tool.returns is not None:
        parts.append(RETURN_TYPE + _spec(tool.returns, named=False))
    parts.append(TOOL_END)
    return "".join(parts)


def serialize_tools(tools: list[Tool]) -> str:
    """Serialize tools back to back; the inverse is `parse_tools`.

    Args:
        tools: Tools in the order they should appear in the prompt.

    Returns:
        The token form, e.g. `<tool_start><func_name>get_time...<tool_end><tool_start>...`.

    Raises:
        ValueError: A parameter has properties but is not an object, or a default without
            `has_default`, which the token form cannot express.
    """
    return "".join(serialize_tool(t) for t in tools)


# ---------------------------------------------------------------------------------------------
# Parsing


class _Reader:
    """Cursor over the alternating [text, token, text, token, ...] pieces of a serialized form."""

    def __init__(self, text: str):
        self.pieces = _SPLIT_RE.split(text)
        self.pos = 0  # index of the next piece; even = text, odd = token

    def raw(self) -> str:
        """Consume the text piece at the cursor (may be empty) as written."""
        if self.pos % 2:
            return ""
        self.pos += 1
        return self.pieces[self.pos - 1]

    def text(self) -> str:
        """Consume free text: raw, or a JSON string literal (see `_text`)."""
        raw = self.raw()
        return json.loads(raw) if raw.startswith('"') else raw

    def value(self) -> Any:
        """Consume a JSON value."""
        raw = self.raw()
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"tool token form: bad JSON value {raw[:80]!r}: {err}") from err

    def peek(self) -> str | None:
        """The next token, skipping an empty text piece; None at the end."""
        pos = self.pos + 1 if self.pos % 2 == 0 and self.pieces[self.pos] == "" else self.pos
        return self.pieces[pos] if pos < len(self.pieces) and pos % 2 else None

    def take(self, *expected: str) -> str:
        """Consume the next token, which must be one of `expected`."""
        token = self.peek()
        if token is None or (expected and token not in expected):
            context = "".join(self.pieces[self.pos:self.pos + 4])[:80]
            raise ValueError(f"tool token form: expected {' or '.join(expected) or 'a token'}, "
                             f"got {token!r} at {context!r}")
        self.pos += 1 if self.pos % 2 else 2
        return token


def _parse_spec(reader: _Reader) -> Param:
    """Parse one parameter spec starting at its (possibly empty) name."""
    fields: dict[str, Any] = {"name": reader.text()}
    type_token = reader.take(*TYPE_TOKENS.values(), TYPE_ENUM)
    if type_token == TYPE_ENUM:
        fields |= {"type": "string", "enum": reader.value()}
    else:
        fields["type"] = _TYPE_OF_TOKEN[type_token]
    if reader.peek() in (REQUIRED, OPTIONAL):
        fields["required"] = reader.take() == REQUIRED
    if reader.peek() == DESCRIPTION:
        reader.take()
        fields["description"] = reader.text()
    for token, field in _VALUE_ATTRS:
        if reader.peek() == token:
            reader.take()
            fields[field] = reader.value()
    fields["has_default"] = "default" in fields
    if reader.peek() == PATTERN:
        reader.take()
        fields["pattern"] = reader.text()
    if reader.peek() == ITEMS:
        reader.take()
        fields["items"] = _parse_spec(reader)
    if fields["type"] == "object":
        properties = []
        while reader.take(PARAM, PARAM_END) == PARAM:
            properties.append(_parse_spec(reader))
        fields["properties"] = tuple(properties)
    return Param(**fields)


def _parse_tool(reader: _Reader) -> Tool:
    """Parse one `<tool_start>...<tool_end>` block."""
    reader.take(TOOL_START)
    reader.take(FUNC_NAME)
    fields: dict[str, Any] = {"name": reader.text()}
    for token, field in ((DESCRIPTION, "description"), (CATEGORY, "category")):
        if reader.peek() == token:
            reader.take()
            fields[field] = reader.text()
    params = []
    while reader.peek() == PARAM:
        reader.take()
        params.append(_parse_spec(reader))
    if reader.peek() == RETURN_TYPE:
        reader.take()
        fields["returns"] = _parse_spec(reader)
    reader.take(TOOL_END)
    return Tool(parameters=tuple(params), **fields)


def parse_tools(text: str) -> list[Tool]:
    """Parse the output of `serialize_tools` back into tools.

    Args:
        text: A serialized tool list, nothing else (no surrounding prompt text).

    Returns:
        The tools, equal to the serialized ones (without `source`).

    Raises:
        ValueError: The text is not a well-formed token form; the message quotes where.
    """
    reader = _Reader(text)
    tools = []
    while reader.peek() is not None:
        tools.append(_parse_tool(reader))
    if reader.pos < len(reader.pieces) and reader.pieces[reader.pos]:
        raise ValueError(f"tool token form: trailing text {reader.pieces[reader.pos][:80]!r}")
    return tools


# ---------------------------------------------------------------------------------------------
# Tokenizer and model


def _subtoken_text(token: str) -> str:
    """The words a token is named after: "<type_string>" -> "type string", "</x>" -> "x end"."""
    words = token.strip("<>").replace("_", " ")
    return words[1:] + " end" if words.startswith("/") else words


def extend_tokenizer_and_model(tokenizer, model) -> list[int]:
    """Add the tool tokens to a tokenizer and model, initialising new rows ToolGen-style.

    Each new embedding row is the mean of the embeddings of the sub-tokens of the token's name
    (e.g. `<type_string>` starts as mean(emb("type"), emb(" string"))). The output layer stays
    tied to the input embeddings. Calling it again adds nothing.

    Args:
        tokenizer: A Hugging Face tokenizer (fast).
        model: The matching causal LM.

    Returns:
        Ids of the tokens that were newly registered as added tokens (empty on a second call).
    """
    added, vocab = tokenizer.get_added_vocab(), tokenizer.get_vocab()
    new_schema = [t for t in SCHEMA_TOKENS if t not in added]
    new_delims = [t for t in DELIMITER_TOKENS if t not in added]
    # A token the vocabulary already had (as ordinary text) keeps its trained row.
    fresh = [t for t in new_schema + new_delims if t not in vocab]
    if new_schema:
        tokenizer.add_special_tokens(
            {"extra_special_tokens": [AddedToken(t, special=True, normalized=False)
                                      for t in new_schema]},
            replace_extra_special_tokens=False)
    if new_delims:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in new_delims])
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for token in fresh:
            sub_ids = tokenizer.encode(_subtoken_text(token), add_special_tokens=False)
            weight[tokenizer.convert_tokens_to_ids(token)] = weight[sub_ids].mean(dim=0)
    model.tie_weights()
    return [tokenizer.convert_tokens_to_ids(t) for t in new_schema + new_delims]
