"""`toolmodal schemas check`: validate tool schema files and folders.

Prints one line per note (a BFCL name redefined in a later record: legal, the first is kept) and
per problem (naming file, tool and field) to stderr, then the summary line `N tools, M categories`
to stdout, last. Left out: fixing or rewriting files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolmodal.ingest import ingest_paths


def check(args: argparse.Namespace) -> int:
    """Validate `args.paths`; return 1 if any problem was found, else 0 (notes do not fail)."""
    tools, errors, notes = ingest_paths([Path(p) for p in args.paths])
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    sys.stderr.flush()  # so the summary comes last when both streams go to one terminal
    print(f"{len(tools)} tools, {len({t.category for t in tools})} categories")
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
    return 1 if errors else 0
