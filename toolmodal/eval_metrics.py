"""Per-test-set metrics with their row counts and 95% Wilson intervals.

Every figure is a proportion `k / n` over the rows (or arguments) it is defined on, never a
mean across test sets of different meaning:

- call rows (some call expected): `tool_accuracy` (called names = expected names),
  `exact_match` (every call and argument right, nothing extra), `argument_accuracy` (expected
  arguments reproduced exactly, counted per argument), `hallucination_rate` (a call to a tool
  not offered), `stopped_after_calls` (end-of-turn right after the calls, no repeated block)
  and `schema_validity`; a refusal is wrong on all of them. `format_compliance` counts the call
  rows whose output attempted a call (a refusal is well-formed text, so it would inflate it).
- no-call rows (nothing fits): `irrelevance_accuracy`, the no-call rate: rows answered without
  any call block. A call attempt that does not parse (unterminated, not JSON) is a call, not a
  refusal: counted as one, until 2026-11-30, it made every run's irrelevance figure (8-32%) out
  of malformed calls only (the deployed models had never declined once).

Outcomes (`outcome`): each row falls in exactly one, the first that applies, so a set's
outcome shares add up to its rows and say where it fails. Call rows: `exact`, `declined`,
`broken` (a call block that does not parse, or text after the calls), `hallucinated`,
`wrong_arguments` (the right tools), `too_few_calls` / `too_many_calls` (the expected calls
plus or minus some), `wrong_tool`; no-call rows: `declined`, `broken`, `called`.

Speed is reported beside them: `latency_s` (mean per-request latency), `rows_per_min` and
`tokens_per_s` (throughput over the set's wall-clock time). `hit_token_limit` (every row) is the
share of outputs that ran out of the generation budget instead of ending their turn: when it is
high, the budget (not only the model) is cutting answers off.

Deliberately left out: scoring one output (`toolmodal.scoring`) and generation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from toolmodal.scoring import ExampleScore, wilson_interval

CALL_RATES: dict[str, Callable[[ExampleScore], bool]] = {
    "tool_accuracy": lambda s: s.tool_correct,
    "exact_match": lambda s: s.exact,
    "hallucination_rate": lambda s: s.hallucinated,
    "stopped_after_calls": lambda s: s.stopped,
    "schema_validity": lambda s: s.schema_ok,
}


def proportion(successes: int, n: int) -> dict[str, float | None]:
    """`{"value", "k", "n", "low", "high"}` of a proportion with its 95% Wilson interval."""
    low, high = wilson_interval(successes, n)
    return {"value": successes / n if n else None, "k": successes, "n": n,
            "low": low, "high": high}


def declined(score: ExampleScore) -> bool:
    """The output makes no call and attempts none (no call block, parsed or broken)."""
    return not score.predicted and score.format_ok


CALL_OUTCOMES = ("exact", "declined", "broken", "hallucinated", "wrong_arguments",
                 "too_few_calls", "too_many_calls", "wrong_tool")
NO_CALL_OUTCOMES = ("declined", "broken", "called")


def outcome(score: ExampleScore) -> str:
    """The row's outcome: the first of `CALL_OUTCOMES` (call rows) or `NO_CALL_OUTCOMES`
    (no-call rows) that applies."""
    if not score.expected:
        return "declined" if declined(score) else "broken" if not score.format_ok else "called"
    if score.exact:
        return "exact"
    if declined(score):
        return "declined"
    if not score.format_ok:
        return "broken"
    if score.hallucinated:
        return "hallucinated"
    if score.tool_correct:
        return "wrong_arguments"
    predicted, expected = Counter(score.predicted), Counter(score.expected)
    if predicted < expected:
        return "too_few_calls"
    return "too_many_calls" if expected < predicted else "wrong_tool"


def outcome_stats(scores: list[ExampleScore]) -> dict[str, dict[str, float | None]]:
    """The share of the rows with each outcome, zeros included: `outcome_<name>` over the call
    rows, `no_call_outcome_<name>` over the no-call rows (keys only for the kinds present)."""
    stats = {}
    for prefix, rows, names in (
            ("outcome_", [s for s in scores if s.expected], CALL_OUTCOMES),
            ("no_call_outcome_", [s for s in scores if not s.expected], NO_CALL_OUTCOMES)):
        counts = Counter(outcome(s) for s in rows)
        if rows:
            stats |= {prefix + name: proportion(counts[name], len(rows)) for name in names}
    return stats


def rate_stats(scores: list[ExampleScore]) -> dict[str, dict[str, float]]:
    """Stats of every metric defined on these rows (call metrics, irrelevance or both)."""
    calls = [s for s in scores if s.expected]
    no_call = [s for s in scores if not s.expected]
    stats: dict[str, dict[str, float]] = {}
    if calls:
        stats = {name: proportion(sum(rule(s) for s in calls), len(calls))
                 for name, rule in CALL_RATES.items()}
        stats["argument_accuracy"] = proportion(sum(s.args_matched for s in calls),
                                                sum(s.args_total for s in calls))
        tried = [s for s in calls if s.predicted or not s.format_ok]  # refusals cannot inflate
        stats["format_compliance"] = proportion(sum(s.format_ok for s in tried), len(tried))
    if no_call:
        stats["irrelevance_accuracy"] = proportion(sum(declined(s) for s in no_call),
                                                   len(no_call))
    return stats | outcome_stats(scores)


def set_metrics(scores: list[ExampleScore], seconds: list[float], tokens: list[int],
                ended: list[bool], wall_s: float
                ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Flat metrics (values, for charts and deltas) and their stats (k, n, interval).

    Args:
        scores: One score per row.
        seconds: Per-request latency of each row.
        tokens: Generated tokens of each row.
        ended: Whether each row's generation ended its turn (False: it hit the token budget).
        wall_s: Wall-clock seconds the whole set took (throughput).
    """
    stats = rate_stats(scores)
    stats["hit_token_limit"] = proportion(sum(not e for e in ended), len(ended))
    metrics: dict[str, float] = {"n": len(scores)}
    metrics |= {name: s["value"] for name, s in stats.items() if s["n"]}
    metrics["latency_s"] = sum(seconds) / len(seconds) if seconds else 0.0
    metrics["rows_per_min"] = 60 * len(scores) / wall_s if wall_s else 0.0
    metrics["tokens_per_s"] = sum(tokens) / wall_s if wall_s else 0.0
    return metrics, stats


def kind_stats(scores: list[ExampleScore], kinds: list[str]) -> dict[str, dict]:
    """Stats per row kind (single, parallel, multiple...) when a set mixes several kinds."""
    if len(set(kinds)) < 2:
        return {}
    return {kind: rate_stats([s for s, k in zip(scores, kinds, strict=True) if k == kind])
            for kind in sorted(set(kinds))}
