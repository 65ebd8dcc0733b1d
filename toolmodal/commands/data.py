"""`toolmodal data generate` and `toolmodal data validate`.

generate: ingest `--schemas` (and `--mcp` servers, `--python` functions), generate with a
`GenerationConfig` (YAML `--config`, then `--examples`/`--seed` override it), write the
DatasetDict (`save_to_disk`), `card.json` and `distributions.png` into `--out`, which must not
exist or be empty.
validate: load a folder written by generate, run the validation suite, write `report.html` and
`report.json` beside the data, print the report path, exit 1 when an expectation fails.
Both take `--tokenizer MODEL_DIR` to count tokens exactly (the pipeline passes its tokenizer);
without it the documented estimate of `toolmodal.datagen.rows` is used.

Deliberately left out: the generation and validation logic (`toolmodal.datagen`,
`toolmodal.validation`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CARD = "card.json"
PLOT = "distributions.png"


def generate(args: argparse.Namespace) -> int:
    """Generate the dataset; returns the exit code (2 when --out is not empty)."""
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"error: --out {out} already exists and is not empty; choose a new folder",
              file=sys.stderr)
        return 2
    from toolmodal.datagen import GenerationConfig, generate_dataset
    from toolmodal.datagen.card import plot_distributions
    from toolmodal.ingest import load_catalogue

    base = GenerationConfig.from_yaml(Path(args.config)) if args.config else GenerationConfig()
    overrides = {k: v for k, v in (("examples", args.examples), ("seed", args.seed))
                 if v is not None}
    config = GenerationConfig(**(base.model_dump() | overrides))
    catalogue = load_catalogue([Path(p) for p in args.schemas], args.lenient, args.mcp,
                               args.python, args.mcp_timeout)
    dataset, card = generate_dataset(catalogue, config, _tokenizer(args.tokenizer))
    dataset.save_to_disk(str(out))
    (out / CARD).write_text(json.dumps(card, indent=1, ensure_ascii=False), encoding="utf-8")
    plot_distributions(card, out / PLOT)
    print(f"wrote {card['rows']} rows ({card['rejected']} candidates rejected) to {out}")
    print(json.dumps({"splits": card["splits"], "rejections": card["rejections"]}))
    return 0


def _tokenizer(path: str | None):
    """The tokenizer of a model folder (it carries the chat template), or None."""
    if path is None:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def validate(args: argparse.Namespace) -> int:
    """Validate a generated folder; returns 0 when every expectation passes, else 1."""
    from datasets import load_from_disk

    from toolmodal.validation import ValidationConfig, validate_dataset, write_report

    folder = Path(args.dir)
    card_path = folder / CARD
    if not card_path.is_file():
        print(f"error: {card_path} not found; is {folder} a folder written by "
              f"`toolmodal data generate`?", file=sys.stderr)
        return 2
    card = json.loads(card_path.read_text(encoding="utf-8"))
    tokenizer = _tokenizer(args.tokenizer)
    if tokenizer is None and card["length_check"] == "tokenizer":
        print("warning: the data was length-checked with a tokenizer; pass --tokenizer to "
              "validate with the same one (using the estimate)", file=sys.stderr)
    config = ValidationConfig(max_tokens=args.max_tokens or card["config"]["max_tokens"])
    model = Path(args.naturalness_model) if args.naturalness_model else None
    outcome = validate_dataset(load_from_disk(str(folder)), card, config, tokenizer, model)
    html_path, _ = write_report(outcome, folder)
    failed = [c.name for c in outcome.checks if not c.success]
    print(f"{'PASSED' if outcome.success else 'FAILED'}: {len(outcome.checks)} checks, "
          f"{len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    print(html_path)
    return 0 if outcome.success else 1
