"""Deployed models side by side on held-out tools: bundled ones, and real-world providers.

For issue 15's with/without comparison: each model (an export folder holding
`model-q4_k_m.gguf` and its `model-q4_k_m.lora.gguf` correction, run by llama.cpp unmasked as
the pipeline's final evaluation ran it until 2026-12-02) is scored on the same rows:

- `held-out bundled`: `test_unseen` of a dataset generated without the pool (bundled tools held
  out of training in both runs);
- `held-out providers`: the `test_unseen` rows of a dataset generated with the pool whose
  category is one of its card's `held_out_providers` (no operation of those providers is trained
  on).

    .venv/bin/python bench/heldout_compare.py --models without=EXPORT_A with=EXPORT_B \\
        --bundled /tmp/dcpu4 --pool /tmp/drw --limit 100

Prints the pipeline's summary table (`toolmodal.reports`: each metric with its 95% Wilson
interval, per model and set, and per row kind). `--sets "bundled seen" "bundled irrelevance"`
scores the bundled dataset's seen and irrelevance rows instead (the same rows for both models).
Left out: the chain set.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datasets import load_from_disk  # noqa: E402

from toolmodal.engines import EngineConfig, load_engine  # noqa: E402
from toolmodal.evaluate import evaluate_rows  # noqa: E402
from toolmodal.reports import eval_rows, interval_cells, markdown_table  # noqa: E402

SETS = ("held-out bundled", "held-out providers", "bundled seen", "bundled irrelevance")


def row_sets(bundled: Path, pool: Path, limit: int, names: list[str]) -> dict[str, list[dict]]:
    """The named row sets (`SETS`), first `limit` rows each: `held-out bundled` is the bundled
    dataset's `test_unseen`, `held-out providers` the pool dataset's `test_unseen` rows of a
    held-out provider, `bundled seen` / `bundled irrelevance` the bundled dataset's
    `test_seen` / `test_irrelevance` (what the pool does to the bundled tools)."""
    splits = load_from_disk(str(bundled))
    rows = {"held-out bundled": lambda: splits["test_unseen"],
            "held-out providers": lambda: _provider_rows(pool),
            "bundled seen": lambda: splits["test_seen"],
            "bundled irrelevance": lambda: splits["test_irrelevance"]}
    return {name: list(rows[name]())[:limit] for name in names}


def _provider_rows(pool: Path) -> list[dict]:
    providers = set(json.loads((pool / "card.json").read_text())["real_world_pool"]
                    ["held_out_providers"])
    return [r for r in load_from_disk(str(pool))["test_unseen"] if r["category"] in providers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="NAME=EXPORT_FOLDER")
    parser.add_argument("--bundled", type=Path, required=True)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS[:2]))
    parser.add_argument("--out", type=Path, default=None, help="write the reports (JSON) here")
    args = parser.parse_args()
    sets = row_sets(args.bundled, args.pool, args.limit, args.sets)
    reports, rows = {}, []
    for name, folder in (m.split("=", 1) for m in args.models):
        config = EngineConfig(max_new_tokens=96, batch_size=6,
                              lora=Path(folder) / "model-q4_k_m.lora.gguf")
        engine = load_engine("llamacpp", Path(folder) / "model-q4_k_m.gguf", config)
        results = {set_name: evaluate_rows(engine, r, "none") for set_name, r in sets.items()}
        reports[name] = {"test_sets": {k: {"modes": {"none": v}} for k, v in results.items()}}
        rows += eval_rows(name, reports[name])
    print(markdown_table(interval_cells(rows)))
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1, default=str))


if __name__ == "__main__":
    main()
