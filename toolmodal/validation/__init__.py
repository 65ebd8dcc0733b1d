"""The validation gate over generated data: great-expectations 1.x used directly.

`validate_dataset(dataset, card, config, tokenizer)` builds the per-row check frame
(`checks.py`), runs the named expectation suite (`suite.py`) and returns a `ValidationOutcome`;
`naturalness_check` bounds how natural the requests read to the base model, when one is
given; `write_report` writes the self-contained HTML page and the JSON summary (`report.py`).

Deliberately left out: loading from disk and exit codes (`toolmodal.commands.data`).
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

from datasets import DatasetDict

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
        model_dir: Base model folder for the naturalness bound (`config.max_request_nll`);
            None skips that check.
    """
    pool = card.get("real_world_pool") or {}
    frame = check_frame(dataset, card["held_out_tools"], tokenizer,
                        frozenset(pool.get("providers", ())))
    method = "tokenizer + chat template" if tokenizer is not None else \
        "estimate (tool tokens 1 each, other text chars / 3.5)"
    outcome = run_suite(frame, card["config"], config, method)
    if model_dir is not None and config.max_request_nll is not None:
        queries = list(frame.loc[frame["training"].astype(bool), "query"])
        check = naturalness_check(queries, model_dir, config)
        outcome.checks.append(check)
        outcome.success = outcome.success and check.success
    return outcome


def naturalness_check(queries: list[str], model_dir: Path,
                      config: ValidationConfig) -> CheckResult:
    """Median per-token NLL of `config.naturalness_sample` queries (fixed seed) against the
    bound; the details list the five least natural requests."""
    from toolmodal.datagen.naturalness import request_nll  # torch only when a model is given

    queries = [q for q in queries if q]
    sample = random.Random(0).sample(queries, min(len(queries), config.naturalness_sample))
    scores = request_nll(Path(model_dir), sample)
    median = statistics.median(scores)
    worst = sorted(zip(scores, sample, strict=True), reverse=True)[:5]
    return CheckResult(
        name="request_naturalness", expectation="median_request_nll_at_most",
        success=median <= config.max_request_nll, observed=round(median, 3),
        details={"bounds": {"max_value": config.max_request_nll}, "sample": len(sample),
                 "least_natural": [f"{s:.2f} {q}" for s, q in worst]},
        description=DESCRIPTIONS["request_naturalness"])


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
