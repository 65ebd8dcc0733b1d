"""The dataset card (counts and provenance as a JSON-able dict) and its distribution plot.

The card records rows per split, phase, kind, difficulty, category, tools offered and prompt
variant, groups per split and their sizes, rejection counts by reason, the held-out tools (name
and description, so the validation suite can find them even when renamed), the config and the
catalogue hash.

Deliberately left out: any judgement (the validation suite decides pass/fail).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from toolmodal.datagen.config import GenerationConfig
from toolmodal.schema import Catalogue, Tool


def build_card(splits: dict[str, list[dict]], catalogue: Catalogue, held_out: list[Tool],
               config: GenerationConfig, rejections: Counter, masked: int, seconds: float,
               teacher_used: bool = False) -> dict:
    """Summarise a generated dataset.

    Args:
        splits: Rows per split, as generated.
        catalogue: The source catalogue.
        held_out: Tools kept out of training.
        config: Settings used.
        rejections: Candidates dropped, by "stage:code" reason.
        masked: Rows that were function-masked.
        seconds: Wall time of generation.
        teacher_used: Whether the teacher endpoint was configured and used.
    """
    rows = [r for split in splits.values() for r in split]
    kept = len(rows)
    return {
        "rows": kept,
        "splits": {name: len(split) for name, split in splits.items()},
        "phases": _count(rows, "phase"),
        "kinds": _count(rows, "kind"),
        "difficulty": {str(k): v for k, v in sorted(Counter(r["difficulty"]
                                                            for r in rows).items())},
        "n_tools": {str(k): v for k, v in sorted(Counter(r["n_tools"] for r in rows).items())},
        "categories": _count(rows, "category"),
        "prompt_variants": _count(rows, "prompt_variant"),
        "groups": {name: len({r["group"] for r in split}) for name, split in splits.items()},
        "group_sizes": {str(k): v for k, v in sorted(Counter(
            Counter(r["group"] for r in rows).values()).items())},
        "masked_rows": masked,
        "rejections": dict(sorted(rejections.items())),
        "rejected": sum(rejections.values()),
        "acceptance_rate": round(kept / max(1, kept + sum(rejections.values())), 4),
        "held_out_tools": [{"name": t.name, "description": t.description} for t in held_out],
        "catalogue": {"tools": len(catalogue.tools), "categories": catalogue.categories,
                      "hash": catalogue.content_hash()},
        "teacher_used": teacher_used,
        "seconds": round(seconds, 2),
        "examples_per_second": round(kept / max(seconds, 1e-9), 1),
        "config": json.loads(config.model_dump_json()),
    }


def _count(rows: list[dict], column: str) -> dict[str, int]:
    return dict(sorted(Counter(r[column] for r in rows).items()))


def plot_distributions(card: dict, path: Path) -> Path:
    """Bar charts of split, phase, kind, difficulty, category and rejection counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("rows per split", card["splits"]), ("rows per phase", card["phases"]),
              ("rows per kind", card["kinds"]), ("rows per difficulty", card["difficulty"]),
              ("rows per category", card["categories"]),
              ("rejections by reason", card["rejections"] or {"none": 0})]
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    for ax, (title, counts) in zip(axes.flat, panels, strict=True):
        ax.bar(list(counts), list(counts.values()), color="#4c72b0")
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.suptitle(f"toolmodal dataset: {card['rows']} rows, {card['rejected']} rejected")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
