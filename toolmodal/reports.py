"""Self-contained HTML pages and terminal tables the pipeline attaches to its artifacts.

Charts are matplotlib PNGs embedded as base64, so a page needs no CDN or server: the ZenML
dashboard shows it as an artifact visualization and MLflow stores it as a run file. Pages: the
dataset card with its distributions, training curves, and the masked-vs-unmasked comparison.
Left out: computing anything the pages show (the card comes from datagen, metrics from training
and evaluation) and the validation report (GE's, rendered by `toolmodal.validation`).
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

STYLE = ("<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>")


def page(title: str, body: str) -> str:
    """A complete HTML document."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title>{STYLE}</head><body><h2>{html.escape(title)}</h2>{body}</body></html>")


def table(rows: list[dict[str, Any]]) -> str:
    """An HTML table with the union of the rows' keys as columns."""
    if not rows:
        return "<p>(empty)</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>"
                                    for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def png(fig) -> str:
    """A matplotlib figure as an <img> tag (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def dataset_card_page(card: dict[str, Any], distributions_png: bytes) -> str:
    """The dataset card (as built by datagen) with its distribution chart.

    Args:
        card: The generator's card (a JSON mapping; nested values are shown as JSON).
        distributions_png: The card's chart (`toolmodal.datagen.card.plot_distributions`).
    """
    sizes = [{"split": name, "rows": rows} for name, rows in card["splits"].items()]
    image = base64.b64encode(distributions_png).decode()
    fields = [{"field": k, "value": v} for k, v in card.items() if k != "splits"]
    return page("Dataset card", f"<h3>Splits</h3>{table(sizes)}"
                f"<h3>Distributions</h3><img src='data:image/png;base64,{image}'>"
                f"<h3>Card</h3>{table(fields)}")


def curves_page(title: str, history: list[dict[str, Any]]) -> str:
    """Training curves: one panel per logged metric, against the step."""
    keys = sorted({k for row in history for k, v in row.items()
                   if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)})
    if not keys:
        return page(title, "<p>no metrics were logged</p>")
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.9 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        points = [(row["step"], row[key]) for row in history
                  if isinstance(row.get(key), int | float)]
        ax.plot([p[0] for p in points], [p[1] for p in points],
                marker="." if len(points) < 30 else None)
        ax.set_ylabel(key, fontsize=8)
    axes[-1, 0].set_xlabel("step")
    return page(title, png(fig))


def comparison_page(rows: list[dict[str, Any]], metrics: list[str]) -> str:
    """Grouped bars of `metrics` for each (model, mask) row, masked next to unmasked.

    Args:
        rows: One per evaluation: {"model": ..., "mask": ..., metric: value, ...}.
        metrics: Metric names to chart (values in [0, 1]).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    labels = [f"{r['model']}\n{r['mask']}" for r in rows]
    colors = ["#4878d0" if r["mask"] == "none" else "#ee854a" for r in rows]
    for ax, metric in zip(axes[0], metrics, strict=True):
        ax.bar(labels, [r[metric] for r in rows], color=colors)
        ax.set_ylim(0, 1)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=45)
    return page("Masked vs unmasked", png(fig) + table(rows))


def text_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table for the terminal (the run's closing summary)."""
    if not rows:
        return "(no rows)"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body])


def eval_rows(label: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary rows of one evaluation report, one per mask mode.

    Columns: the headline accuracies (zero-shot = test_unseen exact match, compositional =
    test_chain exact match, irrelevance), then tool/argument accuracy, hallucination rate and
    format compliance averaged over the test sets that ran, and mean latency per example.
    """
    sets = report["test_sets"]
    modes = list(next(iter(sets.values()))["modes"]) if sets else []
    rows = []
    for mode in modes:
        row: dict[str, Any] = {"model": label, "mask": mode}
        for name, by_mode in report["headline"].items():
            row[name.removesuffix("_accuracy")] = by_mode[mode]
        for metric in ("tool_accuracy", "argument_accuracy", "hallucination_rate",
                       "format_compliance", "latency_s"):
            values = [s["modes"][mode]["metrics"][metric] for s in sets.values()
                      if metric in s["modes"][mode]["metrics"]]
            row[metric.removesuffix("_accuracy")] = sum(values) / len(values) if values else None
        rows.append(row)
    return rows
