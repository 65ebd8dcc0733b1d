"""Does a model read the request to choose among the offered tools, or pick by position? (issue 14)

    .venv/bin/python bench/selection_probe.py --data DATASET_DIR MODEL_DIR [MODEL_DIR ...]
        [--split test_seen] [--rows 100] [--decline-split test_irrelevance]

Two teacher-forced decisions, each one forward pass per row, so a model can be read in minutes
without generating:
- which tool: for the first ROWS rows of SPLIT that expect a call, the prompt and the gold
  completion up to the first tool name are fed; every offered tool's name, followed by the
  character that closes it (`"` in the JSON form, `(` in the Python form), is scored by its summed
  log-probability, and the best-scoring offered tool is the model's choice. Printed: ranked choice
  accuracy [95% Wilson], the chance level (mean of 1 / tools offered), and how often the choice
  falls on each position of the tool list beside how often the gold tool sits there (a model
  that picks by position shows a choice histogram far from the gold one, accuracy near chance);
- call or decline: whether the argmax first answer token is the gold one (`<tool_call>`, the
  first token of a reasoning line, or of a no-call answer), on those rows and on the first ROWS
  rows of DECLINE_SPLIT.
The free-generation evaluator scores more (every call, the count of calls, arguments); this reads
the first decisions only. DATASET_DIR is a saved DatasetDict (the `generate_data` artifact);
MODEL_DIR a model folder (the prepared base or a saved stage).
"""

from __future__ import annotations

import argparse
import copy
import json
from collections import Counter
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.calls import CALL_START
from toolmodal.scoring import wilson_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test_seen")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--decline-split", default="test_irrelevance")
    args = parser.parse_args()
    data = load_from_disk(str(args.data))
    rows = [r for r in data[args.split] if json.loads(r["expected_calls"])][:args.rows]
    declines = list(data[args.decline_split].select(range(args.rows)))
    chance = sum(1 / len(json.loads(r["tools"])) for r in rows) / len(rows)
    for path in args.models:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        picks = choices(model, tokenizer, rows)
        right = sum(p == g for p, g, _ in picks)
        low, high = wilson_interval(right, len(picks))
        print(f"{path}: ranked choice {right}/{len(picks)} [{100 * low:.0f}-{100 * high:.0f}%], "
              f"chance {100 * chance:.0f}%")
        for name, subset in ((args.split, rows), (args.decline_split, declines)):
            first = first_token_right(model, tokenizer, subset)
            low, high = wilson_interval(first, len(subset))
            print(f"  first token right (call or decline) on {name}: {first}/{len(subset)} "
                  f"[{100 * low:.0f}-{100 * high:.0f}%]")
        print(f"  chosen position: {dict(sorted(Counter(p for p, _, _ in picks).items()))}; "
              f"gold position: {dict(sorted(Counter(g for _, g, _ in picks).items()))}")


def choices(model, tokenizer, rows: list[dict]) -> list[tuple[int, int, int]]:
    """(chosen position, gold position, tools offered) per row."""
    picks = []
    for row in rows:
        names = [tool["name"] for tool in json.loads(row["tools"])]
        gold = json.loads(row["expected_calls"])[0]["name"]
        context, closer = name_context(tokenizer, row, gold)
        scores = name_logprobs(model, tokenizer, context, [name + closer for name in names])
        picks.append((scores.index(max(scores)), names.index(gold), len(names)))
    return picks


@torch.no_grad()
def first_token_right(model, tokenizer, rows: list[dict]) -> int:
    """Rows whose argmax first answer token is the gold one (`<tool_call>` or the first token
    of the no-call answer, or of the reasoning line): the decision to call or decline."""
    right = 0
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True,
                                               tokenize=False)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full = tokenizer(prompt + row["completion"][0]["content"],
                         add_special_tokens=False)["input_ids"]
        if full[:len(ids)] != ids:
            raise ValueError("the answer's first token merges with the prompt's last")
        logits = model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1]
        right += int(logits.argmax()) == full[len(ids)]
    return right


def name_context(tokenizer, row: dict, gold: str) -> tuple[str, str]:
    """Prompt + gold completion up to the first tool name, and the character closing a name."""
    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True,
                                           tokenize=False)
    completion = row["completion"][0]["content"]
    call = completion.index(CALL_START) + len(CALL_START)
    start = completion.index(gold, call)
    closer = '"' if completion[call:start].lstrip().startswith("{") else "("
    return prompt + completion[:start], closer


@torch.no_grad()
def name_logprobs(model, tokenizer, context: str, continuations: list[str]) -> list[float]:
    """Summed log-probability of each continuation's tokens after `context` (the context runs
    once; each continuation reads a copy of its key/value cache)."""
    prefix = tokenizer(context, add_special_tokens=False)["input_ids"]
    out = model(torch.tensor([prefix]), use_cache=True, logits_to_keep=1)
    scores = []
    for continuation in continuations:
        full = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
        if full[:len(prefix)] != prefix:
            raise ValueError(f"tokenization of {continuation!r} merges with its context")
        tail = full[len(prefix):]
        cache = copy.deepcopy(out.past_key_values)
        logits = model(torch.tensor([tail[:-1]]), past_key_values=cache).logits[0] \
            if len(tail) > 1 else torch.empty(0, out.logits.shape[-1])
        logprobs = torch.cat([out.logits[0, -1:], logits]).log_softmax(-1)
        scores.append(float(logprobs.gather(1, torch.tensor(tail)[:, None]).sum()))
    return scores


if __name__ == "__main__":
    main()
