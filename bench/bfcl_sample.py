"""BFCL accuracy (AST checker) of a model on every BFCL file, unmasked, soft- and hard-masked.

Runs `toolmodal.evaluate.evaluate` with only BFCL files (the same code the evaluation step runs
with `bfcl_files` set), prints one row per file and mask mode (accuracy, format compliance,
hallucination rate, the share of answers that repeat a call, mean latency, wall time) and
writes the report to `--out`.

    nice -n 10 .venv/bin/python bench/bfcl_sample.py \\
        --model .cache/models/gemma3-270m-toolmodal --out bench/results/bfcl_base_untrained.json

Deliberately left out: the dataset test sets (the pipeline's evaluation step covers them).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from toolmodal.engines import MASK_MODES, EngineConfig, load_engine  # noqa: E402
from toolmodal.evaluate import EvalConfig, evaluate  # noqa: E402
from toolmodal.reports import text_table  # noqa: E402

BFCL_DIR = Path(__file__).resolve().parents[2] / "shared" / "bfcl-sample"


def rows(report: dict, seconds: dict[str, float]) -> list[dict]:
    """One table row per BFCL file and mask mode."""
    out = []
    for name, result in report["test_sets"].items():
        for mode, run in result["modes"].items():
            m = run["metrics"]
            out.append({"file": name.removeprefix("bfcl:BFCL_v4_"), "mask": mode, "n": m["n"],
                        "accuracy": round(m["bfcl_accuracy"], 3),
                        "format": round(m["format_compliance"], 3),
                        "hallucination": round(m["hallucination_rate"], 3),
                        "repeated": round(m["repeated_call_rate"], 3),
                        "latency_s": round(m["latency_s"], 2),
                        "wall_s": round(seconds[f"{name} [{mode}]"], 1)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=".cache/models/gemma3-270m-toolmodal")
    parser.add_argument("--engine", default="transformers")
    parser.add_argument("--bfcl-dir", type=Path, default=BFCL_DIR)
    parser.add_argument("--modes", nargs="+", default=list(MASK_MODES), choices=MASK_MODES)
    parser.add_argument("--limit", type=int, default=None, help="first N questions per file")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lora", type=Path, default=None,
                        help="llamacpp only: a LoRA GGUF applied at load (an export's "
                        "model-q4_k_m.lora.gguf correction)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args()
    files = sorted(args.bfcl_dir.glob("BFCL_*.json"))
    engine_config = EngineConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                 lora=args.lora)
    config = EvalConfig(engine=args.engine, engine_config=engine_config, mask_modes=args.modes,
                        test_splits=[], bfcl_files=files, limit=args.limit)
    engine = load_engine(args.engine, Path(args.model), engine_config)
    seconds, last = {}, [time.perf_counter()]

    def log(line: str) -> None:
        now = time.perf_counter()
        seconds[line.split(" {")[0]] = now - last[0]
        last[0] = now
        print(line, flush=True)

    report = evaluate(engine, config, {}, log)
    table = rows(report, seconds)
    print(f"\nmodel {args.model} ({args.engine}), {len(files)} files, "
          f"max_new_tokens {args.max_new_tokens}, batch {args.batch_size}")
    print(text_table(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": args.model, "table": table, "report": report},
                                       indent=1, default=str))


if __name__ == "__main__":
    main()
