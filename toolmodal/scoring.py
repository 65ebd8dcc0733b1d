"""Pure scorers: one per-example scoring function and TRL-style reward functions built on it.

Every reward has TRL's signature `(completions, **columns) -> list[float]`: `completions` are
strings or lists of chat messages (GRPO passes `[{"role": "assistant", "content": ...}]`), and
the dataset columns `tools` (JSON list of `Tool.model_dump(mode="json")`) and `expected_calls`
(JSON list of `{"name", "arguments"}`, `[]` when no tool fits) arrive as lists aligned with
`completions`. Other columns TRL passes (prompts, trainer_state, ...) are ignored. The offline
evaluator calls `score_example` directly, so what GRPO optimises is what evaluation measures.

Matching rules: calls are matched order-free (each expected call to the unused predicted call
of the same name with most matching arguments); argument values are equal when they are equal
JSON (1 == 1.0, but True is not 1). An empty expected list is a "no tool fits" example: it is
right only when the output makes no call. All rewards are in [0, 1], higher is better.

Deliberately left out: BFCL's looser rules (string normalisation, accepted-value lists), which
live in `toolmodal.bfcl`, and any weighting of rewards, which is the GRPO config's job.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from toolmodal.calls import CALL_END, ToolCall, check_call, parse_output
from toolmodal.schema import Tool


@dataclass(frozen=True)
class ExampleScore:
    """Everything the evaluator aggregates for one example.

    Attributes:
        format_ok: Every call block parsed and nothing but whitespace follows the last call.
        tool_correct: Predicted tool names equal the expected ones as a multiset.
        args_fraction: Mean `argument_credit` over the aligned calls, divided by the larger
            of the expected and predicted call counts; 1.0 for a correct "no call" (no
            call block at all: a broken call attempt is not a "no call").
        args_correct: tool_correct and every expected call matched with exactly its arguments.
        exact: args_correct and no predicted call left over or ill-formed.
        args_matched: Expected arguments reproduced with their exact value (aligned calls).
        args_total: Number of expected arguments (0 on a "no call" example).
        stopped: The output makes at least one call, nothing follows the last call, no call
            block repeats an earlier one, and generation ended at end-of-turn (`ended`).
        hallucinated: Some call names a tool that was not offered.
        schema_ok: Every predicted call passes `check_call` against the offered tools.
        predicted: Names of the parsed calls, in output order.
        expected: Names of the expected calls.
    """

    format_ok: bool
    tool_correct: bool
    args_fraction: float
    args_correct: bool
    exact: bool
    args_matched: int
    args_total: int
    stopped: bool
    hallucinated: bool
    schema_ok: bool
    predicted: tuple[str, ...]
    expected: tuple[str, ...]


def completion_text(completion: str | list[dict]) -> str:
    """The assistant text of a completion given as a string or as chat messages."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message["content"]) for message in completion)


def same_value(a: Any, b: Any) -> bool:
    """JSON equality where an int equals the same float but a bool never equals a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def argument_credit(predicted: ToolCall, expected: ToolCall) -> float:
    """Share of the union of argument names whose values agree (1.0 when neither has any)."""
    keys = set(predicted.arguments) | set(expected.arguments)
    if not keys:
        return 1.0
    matching = sum(1 for k in expected.arguments
                   if k in predicted.arguments
                   and same_value(predicted.arguments[k], expected.arguments[k]))
    return matching / len(keys)


def align_calls(predicted: list[ToolCall], expected: list[ToolCall]) -> list[tuple[int, int]]:
    """Order-free alignment: (expected index, predicted index) pairs of same-name calls.

    Each expected call takes the unused predicted call of its name with the highest
    `argument_credit` (earliest on ties).
    """
    used: set[int] = set()
    pairs = []
    for e_index, want in enumerate(expected):
        candidates = [(argument_credit(call, want), -p_index)
                      for p_index, call in enumerate(predicted)
                      if p_index not in used and call.name == want.name]
        if candidates:
            p_index = -max(candidates)[1]
            used.add(p_index)
            pairs.append((e_index, p_index))
    return pairs


def matched_arguments(predicted: ToolCall, expected: ToolCall) -> int:
    """Number of the expected call's arguments the predicted call reproduces exactly."""
    return sum(1 for k, v in expected.arguments.items()
               if k in predicted.arguments and same_value(predicted.arguments[k], v))


def score_example(text: str, tools: list[Tool], expected: list[ToolCall],
                  ended: bool = True) -> ExampleScore:
    """Score one model output against the offered tools and the expected calls.

    A refusal (no call) on an example that expects calls is wrong on every call metric.

    Args:
        text: Raw assistant text in the `toolmodal.calls` format.
        tools: Tools offered in the prompt.
        expected: Expected calls; empty when no tool fits.
        ended: Generation stopped at end-of-turn rather than at its token budget (GRPO
            completions are cut at end-of-turn by the trainer, hence the default).
    """
    parsed = parse_output(text)
    predicted = parsed.calls
    offered = {t.name for t in tools}
    tail = text[text.rfind(CALL_END) + len(CALL_END):] if CALL_END in text else ""
    format_ok = parsed.ok and not tail.strip()
    tool_correct = sorted(c.name for c in predicted) == sorted(c.name for c in expected)
    pairs = align_calls(predicted, expected)
    credits = [argument_credit(predicted[p], expected[e]) for e, p in pairs]
    blocks = [c.to_json() for c in predicted]
    all_args = tool_correct and all(c == 1.0 for c in credits)
    if expected:
        args_fraction = sum(credits) / max(len(expected), len(predicted))
    else:
        args_fraction = float(not predicted and parsed.ok)
    return ExampleScore(
        format_ok=format_ok,
        tool_correct=tool_correct,
        args_fraction=args_fraction,
        args_correct=all_args,
        exact=all_args and parsed.ok,
        args_matched=sum(matched_arguments(predicted[p], expected[e]) for e, p in pairs),
        args_total=sum(len(c.arguments) for c in expected),
        stopped=ended and format_ok and bool(predicted) and len(set(blocks)) == len(blocks),
        hallucinated=any(c.name not in offered for c in predicted),
        schema_ok=all(not check_call(c, tools) for c in predicted),
        predicted=tuple(c.name for c in predicted),
        expected=tuple(c.name for c in expected),
    )


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default).

    Args:
        successes: Number of successes k (0 <= k <= n).
        n: Number of trials; (0.0, 1.0) when n is 0 (nothing measured, nothing excluded).
        z: Standard normal quantile of the two-sided level.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: successes={successes} outside 0..n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@lru_cache(maxsize=4096)
def tools_from_json(text: str) -> tuple[Tool, ...]:
    """Parse a `tools` column value (cached: GRPO scores many completions per prompt)."""
    return tuple(Tool(**row) for row in json.loads(text))


@lru_cache(maxsize=4096)
def calls_from_json(text: str) -> tuple[ToolCall, ...]:
    """Parse an `expected_calls` column value."""
    return tuple(ToolCall(name=row["name"], arguments=row.get("arguments", {}))
                 for row in json.loads(text))


def score_rows(completions: list, tools: list[str],
               expected_calls: list[str]) -> list[ExampleScore]:
    """Score a batch given TRL-style columns."""
    if not len(completions) == len(tools) == len(expected_calls):
        raise ValueError(f"column lengths differ: {len(completions)} completions, "
                         f"{len(tools)} tools, {len(expected_calls)} expected_calls")
    return [score_example(completion_text(c), list(tools_from_json(t)),
                          list(calls_from_json(e)))
            for c, t, e in zip(completions, tools, expected_calls, strict=True)]


def tool_selection_reward(completions: list, tools: list[str], expected_calls: list[str],
                          **_: Any) -> list[float]:
    """1.0 when the called tool names equal the expected names (order-free), else 0.0."""
    return [float(s.tool_correct) for s in score_rows(completions, tools, expected_calls)]


def argument_match_reward(completions: list, tools: list[str], expected_calls: list[str],
                          **_: Any) -> list[float]:
    """Share of expected arguments reproduced exactly (partial credit for GRPO)."""
    return [s.args_fraction for s in score_rows(completions, tools, expected_calls)]


def format_reward(completions: list, tools: list[str], expected_calls: list[str],
                  **_: Any) -> list[float]:
    """1.0 when the output is well-formed calls.py text with nothing after the last call."""
    return [float(s.format_ok) for s in score_rows(completions, tools, expected_calls)]


def no_hallucination_reward(completions: list, tools: list[str], expected_calls: list[str],
                            **_: Any) -> list[float]:
    """1.0 unless a call names a tool that was not offered (hallucination rate = 1 - mean)."""
    return [float(not s.hallucinated) for s in score_rows(completions, tools, expected_calls)]


def exact_match_reward(completions: list, tools: list[str], expected_calls: list[str],
                       **_: Any) -> list[float]:
    """1.0 when the calls equal the expected calls exactly (order-free), else 0.0."""
    return [float(s.exact) for s in score_rows(completions, tools, expected_calls)]


REWARDS = {
    "tool_selection": tool_selection_reward,
    "argument_match": argument_match_reward,
    "format": format_reward,
    "no_hallucination": no_hallucination_reward,
    "exact_match": exact_match_reward,
}


def call_value(score: ExampleScore) -> float:
    """One graded value in [-1, 1] that orders outputs by how wrong they are.

    On a call-needing example: exact calls 1.0; the right tools with partly right arguments
    0.5 + 0.4 * args_fraction; a refusal (no call, well-formed) 0.0; the wrong offered tools
    -0.5; a broken format -0.5; a tool that was not offered -1.0. On a "no tool fits" example:
    no call 1.0, a broken format -0.5, any call -0.5, an unoffered tool -1.0.
    """
    if score.hallucinated:
        return -1.0
    if not score.format_ok:
        return -0.5
    if not score.expected:
        return 1.0 if not score.predicted else -0.5
    if not score.predicted:
        return 0.0
    if score.exact:
        return 1.0
    return 0.5 + 0.4 * score.args_fraction if score.tool_correct else -0.5


def call_reward(completions: list, tools: list[str], expected_calls: list[str],
                **_: Any) -> list[float]:
    """`call_value` per completion: tells a wrong tool (negative) from a refusal (0) from
    partly right arguments (in between) from exact calls (1); in [-1, 1], unlike the others."""
    return [call_value(s) for s in score_rows(completions, tools, expected_calls)]
