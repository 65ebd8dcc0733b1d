"""Which tokens of a chat example are supervised, and which of those are tool names or arguments.

An example is a TRL conversational prompt-completion pair. It is rendered with the tokenizer's
chat template the way TRL's SFTTrainer renders it (prompt with the generation prompt, then prompt
+ completion); the supervised tokens are those after the common prefix of the two, i.e. the
assistant completion including its end-of-turn. Inside the completion, each
`<tool_call>{"name": ..., "arguments": ...}</tool_call>` (or the Python form `name(...)`) is split
into the characters of the tool name and of the arguments, mapped to tokens through the fast
tokenizer's offset mapping.

Deliberately left out: batching and the loss itself (see `toolmodal.training.sft`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from toolmodal.calls import CALL_END, CALL_START

IGNORE = -100
# Token kinds: not supervised, supervised text (reasoning, delimiters, end of turn), name, args,
# and decision: the completion's first token and the token after each call (call or not; one
# more call or end of turn), where a model decides whether to call and when to stop.
NONE, TEXT, NAME, ARGS, DECISION = 0, 1, 2, 3, 4

_CALL_RE = re.compile(re.escape(CALL_START) + r"(.*?)" + re.escape(CALL_END), re.S)
_NAME_RE = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ARGS_RE = re.compile(r'"arguments"\s*:\s*')


@dataclass(frozen=True)
class EncodedExample:
    """Token ids with per-token labels (IGNORE when not supervised) and kinds (NONE..ARGS); rows
    of one `group` (same system prompt and tools) can be packed together."""

    input_ids: list[int]
    labels: list[int]
    kinds: list[int]
    group: str = ""


def call_spans(text: str) -> list[tuple[int, int, int]]:
    """Character spans (kind, start, end) of tool names and arguments in an assistant text.

    A JSON call's name span is the string value of "name" (without quotes) and its argument span
    the whole value of "arguments"; a Python-form call's name is the identifier before "(" and its
    arguments what lies between the parentheses. Unparsable bodies contribute no spans.
    """
    spans = []
    for match in _CALL_RE.finditer(text):
        body, base = match.group(1), match.start(1)
        spans += [(k, base + s, base + e) for k, s, e in _body_spans(body)]
    return spans


def _body_spans(body: str) -> list[tuple[int, int, int]]:
    stripped = body.lstrip()
    if stripped.startswith("{"):
        spans = []
        name = _NAME_RE.search(body)
        if name:
            spans.append((NAME, name.start(1), name.end(1)))
        args = _ARGS_RE.search(body)
        if args:
            try:
                _, end = json.JSONDecoder().raw_decode(body, args.end())
            except json.JSONDecodeError:
                return spans
            spans.append((ARGS, args.end(), end))
        return spans
    paren = body.find("(")
    if paren <= 0 or not body.rstrip().endswith(")"):
        return []
    start = len(body) - len(stripped)
    return [(NAME, start, paren), (ARGS, paren + 1, len(body.rstrip()) - 1)]


def render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    """The chat template's text for `messages` (schemas are inside the system message)."""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_example(tokenizer, prompt: list[dict], completion: list[dict]) -> EncodedExample:
    """Tokenize one prompt-completion pair and mark its supervised tokens and their kinds.

    Args:
        tokenizer: A fast tokenizer with the project's chat template.
        prompt: Chat messages before the answer (system with schemas, user, assistant, tool...).
        completion: The assistant message(s) to learn.

    Raises:
        ValueError: If the completion's content cannot be found in the rendered text.
    """
    prompt_text = render(tokenizer, prompt, add_generation_prompt=True)
    full_text = render(tokenizer, prompt + completion, add_generation_prompt=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = full["input_ids"], full["offset_mapping"]
    n_prompt = _common_prefix(prompt_ids, ids)
    kinds = [NONE] * n_prompt + [TEXT] * (len(ids) - n_prompt)
    cursor = len(prompt_text)
    for message in completion:
        start = full_text.find(message["content"], cursor)
        if start < 0:
            raise ValueError(f"completion content not found in the rendered chat: "
                             f"{message['content'][:80]!r}")
        for kind, s, e in call_spans(message["content"]):
            _mark(kinds, offsets, kind, start + s, start + e, n_prompt)
        _mark_decisions(kinds, offsets, message["content"], start, n_prompt)
        cursor = start + len(message["content"])
    labels = [tok if kind != NONE else IGNORE for tok, kind in zip(ids, kinds, strict=True)]
    return EncodedExample(input_ids=list(ids), labels=labels, kinds=kinds)


def _mark(kinds: list[int], offsets, kind: int, start: int, end: int, first: int) -> None:
    # A token overlapping a name span is a name token even if it also covers argument text.
    for i in range(first, len(kinds)):
        tok_start, tok_end = offsets[i]
        if tok_start < end and tok_end > start and kinds[i] != NAME:
            kinds[i] = kind


def _mark_decisions(kinds: list[int], offsets, content: str, start: int, first: int) -> None:
    """Mark as DECISION the message's first token and the first token after each call's end
    (the next call, text, or the end of turn that follows the message)."""
    points = [start] + [start + m.end() for m in re.finditer(re.escape(CALL_END), content)]
    for point in points:
        index = next((i for i in range(first, len(kinds)) if offsets[i][1] > point), None)
        if index is not None and kinds[index] == TEXT:
            kinds[index] = DECISION


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
