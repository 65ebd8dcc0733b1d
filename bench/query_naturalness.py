"""How natural our generated requests read, next to real users' questions (issue 13).

    nice .venv/bin/python bench/query_naturalness.py [--model DIR] [--n N] [--schemas DIR]
        [--kinds KIND ...] [--save FILE] [--texts FILE]

Generates a dataset with the `GenerationConfig` defaults (seed 0) twice: with the request
templates beside the schemas, and with templates disabled (every request phrased from the schema,
as for a user's tools without templates). From each it samples N user requests of the rows that
call tools (single, parallel, multiple, chain; each chain once; `--kinds chain`: chain requests
only), only calls to tools that have templates, so both groups ask for the same tools. Under the
prepared base model it prints the median per-token negative log-likelihood
(`toolmodal.datagen.naturalness.request_nll`, the text scored as a user turn) of each group and
of the BFCL sample's questions (reported, never used for training), and each group's ratio to
BFCL. Goal (issue 13): <= 1.15 templated, <= 1.4 template-less.

`--save FILE` writes the sampled requests as JSON ({group: [text, ...]}); `--texts FILE` scores
such a file instead of generating (e.g. requests saved by an older checkout of the generator).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BFCL = REPO.parent / "shared" / "bfcl-sample"
TOOL_KINDS = ("single", "parallel", "multiple", "chain")
GOALS = {"templated": 1.15, "template-less": 1.4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("/work/prepared-base"))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--schemas", type=Path, default=REPO / "data" / "tool_schemas")
    parser.add_argument("--kinds", nargs="+", choices=TOOL_KINDS, default=list(TOOL_KINDS),
                        help="row kinds whose requests are sampled (default: all call kinds)")
    parser.add_argument("--save", type=Path, help="write the sampled requests as JSON")
    parser.add_argument("--texts", type=Path, help="score this JSON instead of generating")
    args = parser.parse_args()
    groups = (json.loads(args.texts.read_text()) if args.texts
              else sample_requests(args.schemas, args.n, tuple(args.kinds)))
    if args.save:
        args.save.write_text(json.dumps(groups, indent=1, ensure_ascii=False))
    from toolmodal.datagen.naturalness import request_nll

    questions = bfcl_questions()
    bfcl = statistics.median(request_nll(args.model, questions))
    print(f"BFCL sample questions: median NLL/token {bfcl:.3f} ({len(questions)} texts)")
    for name, texts in groups.items():
        median = statistics.median(request_nll(args.model, texts))
        goal = GOALS.get(name)
        met = goal is not None and median / bfcl <= goal
        verdict = "" if goal is None else f" (goal <= {goal}: {'met' if met else 'NOT met'})"
        print(f"{name:>13} requests: median NLL/token {median:.3f} ({len(texts)} texts), "
              f"ratio to BFCL {median / bfcl:.3f}{verdict}")


def sample_requests(schemas: Path, n: int, kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """N requests per group: with templates, and with templates disabled, same tools."""
    from toolmodal.datagen import GenerationConfig, generate_dataset
    from toolmodal.datagen.templates import catalogue_templates
    from toolmodal.ingest import load_catalogue

    catalogue = load_catalogue([schemas])
    templates = catalogue_templates(catalogue)
    groups = {}
    for name, given in (("templated", templates), ("template-less", {})):
        dataset, _ = generate_dataset(catalogue, GenerationConfig(seed=0), templates=given)
        texts = tool_requests(dataset, set(templates), kinds)
        groups[name] = random.Random(0).sample(texts, min(n, len(texts)))
    return groups


def tool_requests(dataset, tools: set[str], kinds: tuple[str, ...]) -> list[str]:
    """The distinct user requests of rows of `kinds` that call only `tools`."""
    seen: dict[str, None] = {}
    for split in dataset:
        for row in dataset[split]:
            calls = {c["name"] for c in json.loads(row["expected_calls"])}
            if row["kind"] in kinds and calls and calls <= tools:
                user = next(m["content"] for m in row["prompt"] if m["role"] == "user")
                seen.setdefault(user, None)
    return list(seen)


def bfcl_questions() -> list[str]:
    """Every user turn of the BFCL sample's question files (README: JSON Lines)."""
    texts = []
    for path in sorted(BFCL.glob("BFCL_*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            for turn in json.loads(line)["question"]:
                texts += [m["content"] for m in turn if m["role"] == "user"]
    return texts


if __name__ == "__main__":
    main()
