"""Generation throughput: 20k examples from the bundled catalogue, examples per second.

Prints wall-clock and CPU-time rates (the CPU rate is what the machine can do when the cores are
shared), the rejection counts and the split sizes. Usage:

    .venv/bin/python bench/datagen_throughput.py [--examples 20000] [--schemas data/tool_schemas]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.ingest import load_catalogue


def main() -> None:
    """Run one generation and print its throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--schemas", default="data/tool_schemas")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    catalogue = load_catalogue([Path(args.schemas)])
    wall, cpu = time.perf_counter(), time.process_time()
    dataset, card = generate_dataset(catalogue, GenerationConfig(examples=args.examples,
                                                                 seed=args.seed))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = sum(len(dataset[s]) for s in dataset)
    print(json.dumps({"tools": len(catalogue.tools), "rows": rows,
                      "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
                      "examples_per_second_wall": round(rows / wall, 1),
                      "examples_per_second_cpu": round(rows / cpu, 1),
                      "rejected": card["rejected"], "rejections": card["rejections"],
                      "splits": card["splits"]}, indent=1))


if __name__ == "__main__":
    main()
