"""Verification of a generated example before it is kept (APIGen's three stages).

1. format: the rendered target parses (`calls.parse_output`), gives back exactly the expected
   calls, and each call validates against its tool's schema (`calls.check_call`);
2. execution: each call runs against the mock executor without error;
3. semantic: every leaf argument value is grounded: some surface form of it appears in the
   query, or it appears in an earlier tool result (chains), or it equals the parameter's
   default, or the request states it in words (`[in Fahrenheit](units=imperial)` in a template,
   `including air quality` in schema phrasing: the draft's `stated` pairs, see
   `toolmodal.datagen.user_requests`); slot values are always checked.

Each function returns None when the stage passes, else a "stage:code" rejection reason that the
dataset card counts.

Deliberately left out: judging whether the query is *sensible* (no LLM judge); the teacher step
re-runs stage 3 on paraphrases.
"""

from __future__ import annotations

from typing import Any

from toolmodal.calls import ToolCall, check_call, parse_output
from toolmodal.datagen.executor import ExecutionError, execute
from toolmodal.datagen.values import item_param, property_of, surface_forms
from toolmodal.schema import Param, Tool


def check_format(completion: str, expected: list[ToolCall], tools: list[Tool]) -> str | None:
    """Stage 1: the completion parses to the expected calls and each validates."""
    parsed = parse_output(completion)
    if parsed.errors:
        return "format:" + parsed.errors[0].split(":")[0]
    if parsed.calls != expected:
        return "format:calls_differ"
    for call in parsed.calls:
        problems = check_call(call, tools)
        if problems:
            return "format:" + problems[0].split(":")[0]
    return None


def check_execution(calls: list[ToolCall], tools: list[Tool]) -> str | None:
    """Stage 2: every call runs against the mock executor."""
    for call in calls:
        try:
            execute(call, tools)
        except ExecutionError:
            return "execution:rejected_call"
    return None


def check_grounding(calls: list[ToolCall], tools: list[Tool], query: str,
                    history_text: str = "",
                    stated: frozenset[tuple[int, str]] = frozenset()) -> str | None:
    """Stage 3: each argument value is in the query, in an earlier result, or a default.

    Args:
        stated: (call index, parameter) pairs the query states in words; not matched.
    """
    text = " ".join(query.lower().split())
    history = history_text.lower()
    for index, call in enumerate(calls):
        tool = next(t for t in tools if t.name == call.name)
        for key, value in call.arguments.items():
            if (index, key) in stated:
                continue
            if not _grounded(value, tool.param(key), text, history):
                return "semantic:ungrounded_value"
    return None


def _grounded(value: Any, param: Param, text: str, history: str) -> bool:
    if param.has_default and value == param.default:
        return True
    if isinstance(value, list):
        item = item_param(param)
        return all(_grounded(v, item, text, history) for v in value)
    if isinstance(value, dict):
        return all(_grounded(v, property_of(param, k), text, history) for k, v in value.items())
    if value is None:
        return False
    if history and _contains(history, str(value).lower()):
        return True
    return any(_contains(text, form.lower()) for form in surface_forms(value, param))


def _contains(text: str, form: str) -> bool:
    """Substring match that does not let `5` match inside `2025` or `cat` inside `catalog`."""
    if not form:
        return False
    start = text.find(form)
    while start >= 0:
        end = start + len(form)
        left_ok = not form[0].isalnum() or start == 0 or not _word_char(text[start - 1], True)
        right_ok = not form[-1].isalnum() or end == len(text) or not _word_char(text[end], False)
        if left_ok and right_ok:
            return True
        start = text.find(form, start + 1)
    return False


def _word_char(char: str, left: bool) -> bool:
    """Characters that glue onto a word; a '.' on the left glues too (`.5` is not `5`)."""
    return char.isalnum() or char == "_" or (left and char == ".")


def verify(completion: str, calls: list[ToolCall], tools: list[Tool], query: str,
           history_text: str = "",
           unmasked: tuple[list[ToolCall], list[Tool]] | None = None,
           stated: frozenset[tuple[int, str]] = frozenset()) -> str | None:
    """Run the three stages in order; return the first rejection reason or None.

    Args:
        unmasked: For a function-masked example, the calls and tools before renaming: the
            query was written from the real names (a boolean reads "include views off"), and
            masking changes names, not values, so grounding is checked on them.
        stated: (call index, parameter) pairs the query states in words (see
            `check_grounding`).
    """
    ground_calls, ground_tools = unmasked or (calls, tools)
    return (check_format(completion, calls, tools) or check_execution(calls, tools)
            or check_grounding(ground_calls, ground_tools, query, history_text, stated))
