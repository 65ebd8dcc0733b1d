"""`toolmodal model prepare`: build (or reuse) the HF folder training starts from.

Leaves out everything but argument handling; the work is `toolmodal.model.prepare_base_model`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from toolmodal.model import PREPARED_MODEL, prepare_base_model


def prepare(args: argparse.Namespace) -> int:
    """Prepare the base model and print the output folder.

    Args:
        args: `model` (HF id, local folder or .gguf; None = packaged GGUF), `out` (folder),
            `vocab_corpus` (None: keep the whole vocabulary) and `vocab_corpus_chars`.

    Returns:
        0 on success (errors propagate with their message).
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    out = prepare_base_model(args.model, Path(args.out) if args.out else PREPARED_MODEL,
                             args.vocab_corpus, args.vocab_corpus_chars)
    logging.info("ready in %.1f s", time.perf_counter() - start)
    print(out)
    return 0
