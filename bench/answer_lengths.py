"""Gold answers longer than the evaluation's generation budget, per test set.

A gold answer the budget cannot hold cannot score, however good the model: this counts, on
the first ROWS rows of each test split (what the final evaluation reads), the answers whose
token count under the run's tokenizer exceeds each budget, whole and from the first call on
(a reasoning line before the calls is optional for the model). Tokenizes only.

    .venv/bin/python bench/answer_lengths.py --data DATASET_DIR --model PREPARED_BASE \
        [--rows 100] [--budgets 96,128,160,192]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datasets import load_from_disk
from transformers import AutoTokenizer

from toolmodal.calls import CALL_START
from toolmodal.evaluate import TEST_SPLITS
from toolmodal.scoring import completion_text


def from_first_call(text: str) -> str:
    """The answer from its first call on (the whole text when it has none)."""
    start = text.find(CALL_START)
    return text if start < 0 else text[start:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="dataset from `data generate`")
    parser.add_argument("--model", required=True, type=Path, help="the run's prepared base")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--budgets", default="96,128,160,192")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dataset = load_from_disk(str(args.data))

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    print("| split (rows) | longest | " + " | ".join(f"> {b} (whole / from call)" for b in budgets)
          + " |")
    print("|---|---|" + "---|" * len(budgets))
    for split in TEST_SPLITS:
        rows = dataset[split].select(range(min(args.rows, len(dataset[split]))))
        answers = [completion_text(r["completion"]) for r in rows]
        whole = [count(a) for a in answers]
        calls = [count(from_first_call(a)) for a in answers]
        cells = [f"{sum(n > b for n in whole)} / {sum(n > b for n in calls)}" for b in budgets]
        print(f"| {split} ({len(rows)}) | {max(whole)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
