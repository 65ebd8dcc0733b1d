"""The call decision by probability mass on a deployed model: plain greedy vs thresholds.

Scores one export (its deployed `model-q8_0.gguf`, or `--file` with an optional `--lora`
correction, on llama.cpp with the answers' 160-token budget, as the pipeline's final evaluation
runs it) on the same test rows once per
`--thresholds` value (`none` is plain greedy; a number is `EngineConfig.call_threshold`, see
`toolmodal.masking.decision`), and prints the pipeline's summary table (each metric with its
95% Wilson interval), and with `--probe` the first-token call probability per set:

    .venv/bin/python bench/call_decision.py --export EXPORT --data DATASET \\
        --thresholds none 0.5 --limit 100 [--mask none hard] [--probe]

The call sets show what the decision costs (tool choice on seen and unseen tools), the
irrelevance set what it gains. Left out: the chain set.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from datasets import load_from_disk  # noqa: E402

from toolmodal.engines import EngineConfig, Request, load_engine  # noqa: E402
from toolmodal.evaluate import evaluate_rows  # noqa: E402
from toolmodal.reports import eval_rows, interval_cells, markdown_table  # noqa: E402
from toolmodal.scoring import tools_from_json  # noqa: E402

SPLITS = ("test_seen", "test_unseen", "test_irrelevance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--file", default="model-q8_0.gguf", help="the GGUF in the export")
    parser.add_argument("--lora", default=None, help="a correction GGUF in the export")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--thresholds", nargs="+", default=["none", "0.5"])
    parser.add_argument("--mask", nargs="+", default=["none"], choices=["none", "hard"])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    parser.add_argument("--probe", action="store_true",
                        help="also print the first-token call probability per set")
    parser.add_argument("--out", type=Path, default=None, help="write the reports (JSON) here")
    args = parser.parse_args()
    data = load_from_disk(str(args.data))
    sets = {split: list(data[split])[:args.limit] for split in args.splits}
    reports, table = {}, []
    for value in args.thresholds:
        threshold = None if value == "none" else float(value)
        lora = None if args.lora is None else args.export / args.lora
        config = EngineConfig(max_new_tokens=args.max_new_tokens, batch_size=6,
                              call_threshold=threshold, lora=lora)
        engine = load_engine("llamacpp", args.export / args.file, config)
        if args.probe and value == args.thresholds[0]:
            for split, rows in sets.items():
                p = np.array([p for p, _ in engine.first_token_calls(
                    [Request(row["prompt"], list(tools_from_json(row["tools"]))) for row in rows])])
                print(f"{split}: first-token P(call) mean {p.mean():.3f}, median "
                      f"{np.median(p):.3f}, below 0.5 on {(p < 0.5).sum()}/{len(p)}", flush=True)
        report = {"test_sets": {split: {"modes": {mode: evaluate_rows(engine, rows, mode)
                                                  for mode in args.mask}}
                                for split, rows in sets.items()}}
        reports[value] = report
        table += eval_rows(f"threshold {value}", report)
        print(markdown_table(interval_cells(table)), flush=True)
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1, default=str))


if __name__ == "__main__":
    main()
