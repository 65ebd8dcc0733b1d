"""The validation gate over generated data: great-expectations 1.x used directly.

`validate_dataset(dataset, card, config, tokenizer)` builds the per-row check frame
(`checks.py`), runs the named expectation suite (`suite.py`) and returns a `ValidationOutcome`;
`naturalness_check` bounds how natural the requests read to the base model, when one is
given, and `answers.answer_budget_check` how many test answers fit the evaluation's budget;
`write_report` writes the self-contained HTML page and the JSON summary (`report.py`).

Deliberately left out: loading from disk and exit codes (`toolmodal.commands.data`).
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
from datasets import DatasetDict

from toolmodal.validation.answers import answer_budget_check
from toolmodal.validation.checks import check_frame
from toolmodal.validation.report import summary, write_report
from toolmodal.validation.suite import (
    DESCRIPTIONS,
    CheckResult,
    ValidationConfig,
    ValidationOutcome,
    run_suite,
)

__all__ = ["CheckResult", "DataValidationError", "ValidationConfig", "ValidationOutcome",
           "naturalness_check", "raise_on_failure", "summary", "validate_dataset", "write_report"]


class DataValidationError(RuntimeError):
    """The generated data failed the gate; the message names the failed checks and the report."""


def validate_dataset(dataset: DatasetDict, card: dict, config: ValidationConfig,
                     tokenizer: Any | None = None,
                     model_dir: Path | None = None) -> ValidationOutcome:
    """Run the expectation suite over a generated dataset.

    Args:
        dataset: Splits written by `generate_dataset`.
        card: Its card (held-out tools and the generation config give the bounds).
        config: Bounds of the gate.
        tokenizer: Tokenizer with the project's chat template (what the pipeline passes); None
            uses the estimate in `toolmodal.datagen.rows`.
        model_dir: Base model folder for the naturalness bounds (`config.max_request_nll`,
            and `max_pool_request_nll` for a real-world pool's rows) and the answers' budget
            (`config.max_answer_tokens`, with its tokenizer); None skips them.
    """
    pool = card["real_world_pool"]
    providers = frozenset(pool["providers"] if pool else ())
    frame = check_frame(dataset, card["held_out_tools"], tokenizer, providers)
    method = "tokenizer + chat template" if tokenizer is not None else \
        "estimate (tool tokens 1 each, other text chars / 3.5)"
    outcome = run_suite(frame, card["config"], config, method)
    if model_dir is not None:
        with_model = _naturalness_checks(frame, providers, Path(model_dir), config)
        if config.max_answer_tokens is not None:
            with_model.append(answer_budget_check(dataset, Path(model_dir),
                                                  config.max_answer_tokens,
                                                  config.answer_fit_share))
        outcome.checks += with_model
        outcome.success = outcome.success and all(c.success for c in with_model)
    return outcome


def _naturalness_checks(frame: pd.DataFrame, providers: frozenset[str], model_dir: Path,
                        config: ValidationConfig) -> list[CheckResult]:
    """The bundled catalogue's training requests against `max_request_nll`; the real-world
    pool's (rows of a pool provider or calling a pool tool: `pool_request`) against
    `max_pool_request_nll`."""
    training = frame[frame["training"].astype(bool)]
    pool = training["pool_request"]
    sources = []
    if config.max_request_nll is not None:
        sources.append(("request_naturalness", list(training.loc[~pool, "query"]),
                        config.max_request_nll))
    if providers and config.max_pool_request_nll is not None:
        sources.append(("pool_request_naturalness", list(training.loc[pool, "query"]),
                        config.max_pool_request_nll))
    return naturalness_checks(sources, model_dir, config.naturalness_sample) if sources else []


def naturalness_check(queries: list[str], model_dir: Path, bound: float, sample_size: int,
                      name: str = "request_naturalness") -> CheckResult:
    """Median per-token NLL of `sample_size` of `queries` (fixed seed) against `bound`; the
    details list the five least natural requests."""
    return naturalness_checks([(name, queries, bound)], model_dir, sample_size)[0]


def naturalness_checks(sources: list[tuple[str, list[str], float]], model_dir: Path,
                       sample_size: int) -> list[CheckResult]:
    """`naturalness_check` for each (check name, queries, bound), the base model loaded once
    for all the samples."""
    from toolmodal.datagen.naturalness import request_nll  # torch only when a model is given

    samples = []
    for _, queries, _ in sources:
        texts = [q for q in queries if q]
        samples.append(random.Random(0).sample(texts, min(len(texts), sample_size)))
    scores = request_nll(Path(model_dir), [text for sample in samples for text in sample])
    results, start = [], 0
    for (name, _, bound), sample in zip(sources, samples, strict=True):
        own, start = scores[start:start + len(sample)], start + len(sample)
        results.append(_naturalness_result(name, bound, sample, own))
    return results


def _naturalness_result(name: str, bound: float, sample: list[str],
                        scores: list[float]) -> CheckResult:
    median = statistics.median(scores)
    worst = sorted(zip(scores, sample, strict=True), reverse=True)[:5]
    return CheckResult(
        name=name, expectation="median_request_nll_at_most",
        success=median <= bound, observed=round(median, 3),
        details={"bounds": {"max_value": bound}, "sample": len(sample),
                 "least_natural": [f"{s:.2f} {q}" for s, q in worst]},
        description=DESCRIPTIONS[name])


def raise_on_failure(outcome: ValidationOutcome, report: str) -> None:
    """Stop the run when any expectation failed (what the pipeline does before training).

    Args:
        outcome: Result of `validate_dataset`.
        report: Where the HTML report was written, for the message.

    Raises:
        DataValidationError: Naming each failed check with its observed value.
    """
    failed = [f"{c.name} (observed {c.observed})" for c in outcome.checks if not c.success]
    if failed:
        raise DataValidationError(f"data validation failed: {'; '.join(failed)}; see {report}")
