"""The validation gate over generated data: great-expectations 1.x used directly.

`validate_dataset(dataset, card, config, tokenizer)` builds the per-row check frame
(`checks.py`), runs the named expectation suite (`suite.py`) and returns a `ValidationOutcome`;
`write_report` writes the self-contained HTML page and the JSON summary (`report.py`).

Deliberately left out: loading from disk and exit codes (`toolmodal.commands.data`).
"""

from __future__ import annotations

from typing import Any

from datasets import DatasetDict

from toolmodal.validation.checks import check_frame
from toolmodal.validation.report import summary, write_report
from toolmodal.validation.suite import CheckResult, ValidationConfig, ValidationOutcome, run_suite

__all__ = ["CheckResult", "DataValidationError", "ValidationConfig", "ValidationOutcome",
           "raise_on_failure", "summary", "validate_dataset", "write_report"]


class DataValidationError(RuntimeError):
    """The generated data failed the gate; the message names the failed checks and the report."""


def validate_dataset(dataset: DatasetDict, card: dict, config: ValidationConfig,
                     tokenizer: Any | None = None) -> ValidationOutcome:
    """Run the expectation suite over a generated dataset.

    Args:
        dataset: Splits written by `generate_dataset`.
        card: Its card (held-out tools and the generation config give the bounds).
        config: Bounds of the gate.
        tokenizer: Tokenizer with the project's chat template (what the pipeline passes); None
            uses the estimate in `toolmodal.datagen.rows`.
    """
    frame = check_frame(dataset, card["held_out_tools"], tokenizer)
    method = "tokenizer + chat template" if tokenizer is not None else \
        "estimate (tool tokens 1 each, other text chars / 3.5)"
    return run_suite(frame, card["config"], config, method)


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
