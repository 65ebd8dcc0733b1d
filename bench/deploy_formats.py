"""What quantisation costs the trained model: the pipeline's final evaluation per GGUF format.

    .venv/bin/python bench/deploy_formats.py --export EXPORT_FOLDER --dataset DATASET_FOLDER \\
        --out /tmp/formats [--formats gguf-f16 gguf-q8_0 gguf-q4_k_m+lora] [--config cpu] \\
        [--limit N] [--modes none hard]

EXPORT_FOLDER is a pipeline run's `export_model` output (`model-f16.gguf`, `model-q4_k_m.gguf`
and its correction `model-q4_k_m.lora.gguf`); Q8_0 is quantised here from the f16 file into
`--out` when the folder has none. DATASET_FOLDER is the same run's validated dataset. Every format
runs the overlay's `final_evaluation` (the `make run` deployed model's evaluation: llama.cpp,
greedy, its token budget, rows per set and mask modes) on the same rows, one after the other in
one process, so their speeds compare.

Prints, per format: file size, wall time and rows/min over the whole evaluation, the summary
table (each metric with its row count and 95% Wilson interval), and the share of rows whose
output text equals the first format's (fidelity to the least-quantised file). Writes each
report to `--out/<format>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datasets import load_from_disk  # noqa: E402

from toolmodal.engines import MASK_MODES, load_engine  # noqa: E402
from toolmodal.evaluate import EvalConfig, evaluate  # noqa: E402
from toolmodal.export.gguf import quantize_gguf  # noqa: E402
from toolmodal.reports import eval_rows, interval_cells, markdown_table  # noqa: E402
from toolmodal.runconfig import build_run_config  # noqa: E402

FORMATS = ("gguf-f16", "gguf-q8_0", "gguf-q4_k_m", "gguf-q4_k_m+lora")


def format_files(name: str, export: Path, out: Path) -> tuple[Path, Path | None]:
    """The GGUF file and correction adapter (or None) of format `name`."""
    if name == "gguf-q8_0":
        q8 = export / "model-q8_0.gguf"
        if not q8.is_file():
            q8 = out / "model-q8_0.gguf"
            if not q8.is_file():
                quantize_gguf(export / "model-f16.gguf", q8, "q8_0")
        return q8, None
    files = {"gguf-f16": ("model-f16.gguf", None),
             "gguf-q4_k_m": ("model-q4_k_m.gguf", None),
             "gguf-q4_k_m+lora": ("model-q4_k_m.gguf", "model-q4_k_m.lora.gguf")}
    model, lora = files[name]
    return export / model, (export / lora if lora else None)


def final_evaluation(overlay: str) -> EvalConfig:
    """The overlay's `final_evaluation` (what `make run` measures the deployed model with)."""
    config = build_run_config("full", [overlay], {"final_evaluation"})
    return EvalConfig.model_validate(config["parameters"]["final_evaluation"])


def outputs(report: dict) -> dict[str, str]:
    """Row id -> raw output, over every test set and mode."""
    return {f"{mode}:{ex['id']}": ex["raw"] for test in report["test_sets"].values()
            for mode, result in test["modes"].items() for ex in result.get("examples", [])}


def run_format(name: str, export: Path, out: Path, config: EvalConfig,
               splits: dict[str, list[dict]]) -> tuple[dict, float, float]:
    """Evaluate one format; return its report, wall seconds and size in MB."""
    model, lora = format_files(name, export, out)
    engine_config = config.engine_config.model_copy(update={"lora": lora})
    started = time.perf_counter()
    engine = load_engine("llamacpp", model, engine_config)
    report = evaluate(engine, config, splits)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in (model, lora) if p) / 1e6
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    return report, seconds, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--formats", nargs="+", choices=FORMATS,
                        default=["gguf-f16", "gguf-q8_0", "gguf-q4_k_m+lora"])
    parser.add_argument("--config", default="cpu", help="overlay whose final_evaluation runs")
    parser.add_argument("--limit", type=int, default=None,
                        help="rows per set instead of the overlay's (a quick check)")
    parser.add_argument("--modes", nargs="+", choices=MASK_MODES, default=None,
                        help="mask modes instead of the overlay's")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = final_evaluation(args.config)
    if args.limit:
        config = config.model_copy(update={"limit": args.limit})
    if args.modes:
        config = config.model_copy(update={"mask_modes": args.modes})
    dataset = load_from_disk(str(args.dataset))
    splits = {s: [dict(r) for r in dataset[s]] for s in config.test_splits}
    rows, reference = [], None
    for name in args.formats:
        report, seconds, size = run_format(name, args.export, args.out, config, splits)
        texts = outputs(report)
        reference = reference or texts
        same = sum(texts[k] == reference[k] for k in texts)
        scored = sum(1 for test in report["test_sets"].values()
                     for result in test["modes"].values() for _ in result.get("examples", []))
        print(f"{name}: {size:.1f} MB, {seconds:.0f} s, {scored} rows scored "
              f"({scored / seconds * 60:.1f} rows/min); output equal to {args.formats[0]}'s on "
              f"{same}/{len(texts)} rows", flush=True)
        rows += eval_rows(name, report)
    print(markdown_table(interval_cells(rows)))


if __name__ == "__main__":
    main()
