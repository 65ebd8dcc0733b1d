"""Where a trained model's stop-or-call-again decision comes from: body or output rows? (issue 14)

    .venv/bin/python bench/decision_logits.py --data DATASET_DIR BASE_DIR TRAINED_DIR
        [--split test_seen] [--rows 40]

For the rows among the first ROWS of SPLIT that expect one call, the prompt and the gold call (up
to its `</tool_call>`) are fed teacher-forced to both models, and the next-token logits of
`<tool_call>` (a second call) and `<end_of_turn>` (stop) are read from the last position's
hidden state. For the trained model the `<tool_call>` logit is also computed with the base
model's output row for it on the trained body: the difference is what training that one row
(as `trainable: embeddings_frozen` does with the tool-token rows) adds. Printed: the mean of each
logit, and how far each row moved. BASE_DIR and TRAINED_DIR must share a vocabulary (the
trained model is a stage trained from the base).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from datasets import load_from_disk
from stop_decision import after_first_call  # bench/ is the script's folder
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("trained", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test_seen")
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.trained)
    base, trained = (AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32).eval()
                     for p in (args.base, args.trained))
    call, stop = (tokenizer.convert_tokens_to_ids(t) for t in ("<tool_call>", "<end_of_turn>"))
    rows = load_from_disk(str(args.data))[args.split]
    texts = [after_first_call(tokenizer, row) for row in rows.select(range(args.rows))
             if len(json.loads(row["expected_calls"])) == 1]
    w_base, w_trained = base.lm_head.weight, trained.lm_head.weight
    columns: dict[str, list[float]] = {}
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            h_trained = trained.model(ids).last_hidden_state[0, -1]
            h_base = base.model(ids).last_hidden_state[0, -1]
        for name, value in [
                ("trained: <tool_call>", h_trained @ w_trained[call]),
                ("trained body, base <tool_call> row", h_trained @ w_base[call]),
                ("trained: <end_of_turn>", h_trained @ w_trained[stop]),
                ("base: <tool_call>", h_base @ w_base[call]),
                ("base: <end_of_turn>", h_base @ w_base[stop])]:
            columns.setdefault(name, []).append(value.item())
    print(f"{len(texts)} one-call rows of the first {args.rows} of {args.split}; mean logit after "
          "the gold call:")
    for name, values in columns.items():
        print(f"  {name}: {statistics.mean(values):.2f}")
    for name, token in (("<tool_call>", call), ("<end_of_turn>", stop)):
        moved = (w_trained[token] - w_base[token]).norm().item()
        print(f"  row {name}: moved {moved:.4f} (norm {w_base[token].norm().item():.3f})")


if __name__ == "__main__":
    main()
