"""Plots of an evaluation report: masked vs unmasked bars, and a tool confusion matrix.

- `masking.png`: one panel per test set, one group of bars per metric, one bar per mask mode.
- `confusion_<mode>.png`: expected vs predicted first tool name over all dataset test sets
  (BFCL sets have no expected names in the report), "(none)" for no call, the most frequent
  `max_tools` names plus "(other)".

Deliberately left out: interactive plots and anything that recomputes metrics.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = ["tool_accuracy", "argument_accuracy", "exact_match", "format_compliance",
           "stopped_after_calls", "hallucination_rate", "irrelevance_accuracy",
           "chain_end_to_end", "bfcl_accuracy"]
NONE, OTHER = "(none)", "(other)"


def write_plots(report: dict, out_dir: Path, max_tools: int = 20) -> list[Path]:
    """Write the bar chart and one confusion matrix per mask mode; return their paths."""
    paths = [bar_chart(report, out_dir / "masking.png")]
    modes = report["config"]["mask_modes"]
    for mode in modes:
        pairs = confusion_pairs(report, mode)
        if pairs:
            paths.append(confusion_matrix(pairs, out_dir / f"confusion_{mode}.png",
                                          f"tool confusion [{mode}]", max_tools))
    return paths


def bar_chart(report: dict, path: Path) -> Path:
    """Grouped bars: metric x mask mode, one panel per test set."""
    sets = report["test_sets"]
    fig, axes = plt.subplots(len(sets), 1, figsize=(10, 2.8 * max(len(sets), 1)), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], sets.items(), strict=True):
        modes = list(result["modes"])
        metrics = [m for m in METRICS
                   if result["modes"][modes[0]]["metrics"].get(m) is not None]
        width = 0.8 / len(modes)
        for k, mode in enumerate(modes):
            values = [result["modes"][mode]["metrics"].get(m) for m in metrics]
            values = [math.nan if v is None else v for v in values]
            ax.bar([i + k * width for i in range(len(metrics))], values, width, label=mode)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(metrics))], metrics, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_pairs(report: dict, mode: str) -> list[tuple[str, str]]:
    """(expected, predicted) first tool names of every dataset example run under `mode`."""
    pairs = []
    for result in report["test_sets"].values():
        for example in result["modes"].get(mode, {}).get("examples", []):
            if "expected" in example:
                pairs.append(((example["expected"] or [NONE])[0],
                              (example["predicted"] or [NONE])[0]))
    return pairs


def confusion_matrix(pairs: list[tuple[str, str]], path: Path, title: str,
                     max_tools: int) -> Path:
    """Counts of expected (rows) vs predicted (columns) names as a heat map."""
    common = [n for n, _ in Counter(e for e, _ in pairs).most_common(max_tools)]
    labels = common + [n for n in (NONE, OTHER) if n not in common]
    index = {name: i for i, name in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for expected, predicted in pairs:
        counts[index.get(expected, index[OTHER])][index.get(predicted, index[OTHER])] += 1
    size = 3 + 0.35 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
