"""`toolmodal export`: merge, convert to GGUF and quantize one model folder (and, on a CUDA
machine, AWQ/GPTQ folders for vLLM calibrated on `--calibration-data`).

Deliberately left out: evaluating the exported files (`toolmodal predict --engine llamacpp`, or
`bench/export.py` for the full table).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from datasets import load_from_disk

from toolmodal.export import ExportConfig, export_model


def export(args: argparse.Namespace) -> int:
    """Write the requested formats of `--model` under `--out` and print one line per file."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    config = ExportConfig(formats=formats, correction_rank=args.correction_rank)
    calibration = load_from_disk(args.calibration_data) if args.calibration_data else None
    for fmt, path in export_model(Path(args.model), Path(args.out), config, calibration).items():
        size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else \
            path.stat().st_size
        print(f"{fmt:16s} {size / 2**20:9.1f} MiB  {path}")
    return 0
