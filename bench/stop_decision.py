"""Does a trained model decide between stopping and a second call? (issue 14)

    .venv/bin/python bench/stop_decision.py --data DATASET_DIR MODEL_DIR [MODEL_DIR ...]
        [--split test_seen] [--rows 100]

For each of the first ROWS rows of SPLIT that expect one or two calls, the prompt and the gold
first call (up to its `</tool_call>`) are fed teacher-forced; the next-token probabilities of
`<end_of_turn>` (stop) and `<tool_call>` (a second call) are read. Prints, per model and per
group (rows expecting one call / two calls), the mean of both and how many rows the larger of the
two gets right. A model that has learned the decision stops on one-call rows and calls on
two-call rows; one that stops (or calls) on every row has learned a prior, not the decision.
DATASET_DIR is a saved DatasetDict (the `generate_data` artifact); MODEL_DIR a saved stage
(`.cache/work/sft_joint/<id>/stage`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

CLOSE = "</tool_call>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test_seen")
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    rows = load_from_disk(str(args.data))[args.split]
    rows = rows.select(range(min(args.rows, len(rows))))
    for path in args.models:
        for n_calls, pairs in next_token_choices(path, rows).items():
            right = sum((stop > call) == (n_calls == 1) for stop, call in pairs)
            print(f"{path}: {len(pairs)} rows expecting {n_calls} call(s): mean P(stop) "
                  f"{statistics.mean(p for p, _ in pairs):.3f}, P(second call) "
                  f"{statistics.mean(c for _, c in pairs):.3f}; right choice {right}/{len(pairs)}")


def next_token_choices(path: Path, rows) -> dict[int, list[tuple[float, float]]]:
    """(P(<end_of_turn>), P(<tool_call>)) after the gold first call, by expected call count."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    stop, call = (tokenizer.convert_tokens_to_ids(t) for t in ("<end_of_turn>", "<tool_call>"))
    found: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for row in rows:
        n_calls = len(json.loads(row["expected_calls"]))
        if n_calls not in found:
            continue
        ids = tokenizer(after_first_call(tokenizer, row), add_special_tokens=False,
                        return_tensors="pt").input_ids
        with torch.no_grad():
            probs = torch.softmax(model(ids).logits[0, -1], -1)
        found[n_calls].append((probs[stop].item(), probs[call].item()))
    return found


def after_first_call(tokenizer, row: dict) -> str:
    """The prompt (chat template, generation prompt) and the gold answer up to its first call's
    end."""
    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True,
                                           tokenize=False)
    gold = row["completion"][0]["content"]
    return prompt + gold[:gold.index(CLOSE) + len(CLOSE)]


if __name__ == "__main__":
    main()
