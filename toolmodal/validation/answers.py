"""Gold answers against the evaluation's generation budget.

A test row whose gold answer is longer than the evaluation's `max_new_tokens` cannot score,
however good the model: at 96 tokens 12 seen-tool and 17 unseen-tool gold answers of the first
100 did not fit (bench/results/2026-12-01.md, "Eleventh session"), and nothing said so. The
gate counts each test split's answers with the base model's tokenizer, plus the end-of-turn
token the model must also write, and fails when fewer than `answer_fit_share` of a split fit.
"""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from toolmodal.datagen.config import TEST_SPLITS
from toolmodal.scoring import completion_text
from toolmodal.validation.suite import DESCRIPTIONS, CheckResult

NAME = "answers_fit_generation_budget"


def answer_tokens(dataset: DatasetDict, tokenizer) -> dict[str, list[tuple[str, int]]]:
    """Per test split present: (row id, tokens of its gold answer + 1 for the end of turn)."""
    lengths = {}
    for split in (s for s in TEST_SPLITS if s in dataset):
        rows = dataset[split]
        texts = [completion_text(c) for c in rows["completion"]]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        lengths[split] = [(row_id, len(tokens) + 1)
                          for row_id, tokens in zip(rows["id"], ids, strict=True)]
    return lengths


def answer_budget_check(dataset: DatasetDict, model_dir: Path, budget: int,
                        share: float) -> CheckResult:
    """Fails when, in any test split, fewer than `share` of the gold answers fit in `budget`
    new tokens; observed is the lowest split's share, the details name the rows over."""
    from transformers import AutoTokenizer

    lengths = answer_tokens(dataset, AutoTokenizer.from_pretrained(str(model_dir)))
    per_split, over = {}, []
    for split, rows in lengths.items():
        long = [f"{split}/{row_id} ({n})" for row_id, n in rows if n > budget]
        fits = 1.0 - len(long) / len(rows) if rows else 1.0
        per_split[split] = {"rows": len(rows), "over": len(long), "fit_share": round(fits, 4),
                            "longest": max((n for _, n in rows), default=0)}
        over += long
    lowest = min((s["fit_share"] for s in per_split.values()), default=1.0)
    return CheckResult(
        name=NAME, expectation="answer_tokens_within_budget", success=lowest >= share,
        observed=lowest,
        details={"bounds": {"max_value": budget, "min_fit_share": share},
                 "splits": per_split, "rows": over[:20]},
        description=DESCRIPTIONS[NAME])
