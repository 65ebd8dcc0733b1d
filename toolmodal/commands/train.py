"""`toolmodal train`: run one training stage outside the pipeline (same core as the step)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def train(args: argparse.Namespace) -> int:
    """Train `--stage` from `--model` on `--data` into `--out`; 0 on success."""
    from datasets import load_from_disk

    from toolmodal.training.config import load_stage_config
    from toolmodal.training.run import run_stage

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_stage_config(args.stage, Path(args.config) if args.config else None)
    summary = run_stage(Path(args.model), load_from_disk(args.data), config, Path(args.out))
    print(json.dumps(summary, indent=2))
    return 0
