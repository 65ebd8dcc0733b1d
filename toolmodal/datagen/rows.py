"""Helpers over dataset rows shared by generation and the validation suite.

Both sides must agree on what "the query", "a duplicate" and "the length of a row" mean, so they
live here once: the query is the first user message; two rows are duplicates when their user and
later turns and their set of offered tools are equal; length is counted with the tokenizer and
chat template when one is given (the pipeline's path), else estimated: each tool token
(`<param>`...) counts 1, other text characters / 3.5, plus 4 per message. Measured against the
Gemma tokenizer on generated rows the estimate is ~1.0x the real count on average, 0.85x at worst
(plain chars / 4 overestimated by 1.24x because of the schema tokens).

Deliberately left out: anything about how rows are generated.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from toolmodal.tool_tokens import TOOL_TOKENS

CHARS_PER_TOKEN = 3.5
TOKENS_PER_MESSAGE = 4
_TOOL_TOKEN_RE = re.compile("|".join(re.escape(t) for t in TOOL_TOKENS))


def query_of(prompt: list[dict]) -> str:
    """The user's request: content of the first user message ("" when there is none)."""
    return next((m["content"] for m in prompt if m["role"] == "user"), "")


def pair_key(prompt: list[dict], tool_keys: list[str]) -> str:
    """Identity of the (query, tools) pair, ignoring the system prompt text and tool order.

    Args:
        prompt: The row's chat messages.
        tool_keys: `tool_key` of each offered tool.
    """
    turns = [(m["role"], m["content"]) for m in prompt if m["role"] != "system"]
    payload = json.dumps([turns, sorted(tool_keys)], ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def tool_key(name: str, description: str) -> str:
    """What identifies a tool across rows: its description, which function masking keeps (a
    masked copy has a random name), else its name."""
    return description or name


def estimate_tokens(messages: list[dict]) -> int:
    """Length estimate without a tokenizer (see the module docstring)."""
    total = TOKENS_PER_MESSAGE * len(messages)
    for message in messages:
        text = message["content"]
        plain, specials = _TOOL_TOKEN_RE.subn("", text)
        total += specials + int(len(plain) / CHARS_PER_TOKEN)
    return total


def count_tokens(conversations: list[list[dict]], tokenizer: Any | None = None) -> list[int]:
    """Token counts of whole conversations (prompt + completion).

    Args:
        conversations: Message lists.
        tokenizer: A Hugging Face tokenizer with the project's chat template, or None for the
            documented characters / 4 estimate.
    """
    if tokenizer is None:
        return [estimate_tokens(c) for c in conversations]
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]
