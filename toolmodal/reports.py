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
import math
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
        rows: One per evaluation (and test set): {"model", "mask", "set", metric: value...};
            None values leave a gap.
        metrics: Metric names to chart (values in [0, 1]).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    labels = [f"{r['model']}\n{r['mask']}" + (f"\n{r['set']}" if "set" in r else "")
              for r in rows]
    colors = ["#4878d0" if r["mask"] == "none" else "#ee854a" for r in rows]
    for ax, metric in zip(axes[0], metrics, strict=True):
        ax.bar(labels, [math.nan if r[metric] is None else r[metric] for r in rows],
               color=colors)
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


# summary column -> report metric, in table order
SUMMARY = {"tool": "tool_accuracy", "exact": "exact_match", "args": "argument_accuracy",
           "stopped": "stopped_after_calls", "format": "format_compliance",
           "halluc": "hallucination_rate", "irrelevance": "irrelevance_accuracy",
           "chain_e2e": "chain_end_to_end", "bfcl": "bfcl_accuracy"}


def eval_rows(label: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary rows of one evaluation report: one per mask mode and test set, plus one per
    row kind (parallel, multiple...) where a set mixes kinds.

    Each metric column (`SUMMARY`) holds the value, with `<column>_low` / `_high` (95% Wilson
    interval) and `<column>_n` (its count) beside it; None where the metric is not defined on
    that set (call metrics on the irrelevance set, and so on). Nothing is averaged across sets.
    """
    rows = []
    for name, result in report["test_sets"].items():
        for mode, run in result["modes"].items():
            base = {"model": label, "mask": mode}
            rows.append(_summary_row(base | {"set": name}, run["stats"], run["metrics"]))
            for kind, stats in run.get("by_kind", {}).items():
                if kind not in ("single", "chain"):
                    rows.append(_summary_row(base | {"set": f"{name}/{kind}"}, stats, {}))
    return rows


def _summary_row(row: dict[str, Any], stats: dict[str, dict], metrics: dict[str, Any]) -> dict:
    """One summary row: counts, each metric's value, interval and count, then speed."""
    row["n"] = metrics.get("n", next((s["n"] for k, s in stats.items()
                                      if k not in ("argument_accuracy", "format_compliance")),
                                     0))
    for column, metric in SUMMARY.items():
        stat = stats.get(metric, {})
        row[column] = stat.get("value")
        row[f"{column}_low"], row[f"{column}_high"] = stat.get("low"), stat.get("high")
        row[f"{column}_n"] = stat.get("n")
    row["rows_per_min"] = metrics.get("rows_per_min")
    row["latency_s"] = metrics.get("latency_s")
    return row


def interval_cells(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows for reading: each metric as `value% [low-high]` (and `/n` where its count is not
    the row's), columns that are empty in every row dropped."""
    cells = []
    for row in rows:
        cell = {k: _cell(row[k]) for k in ("model", "mask", "set", "n")}
        for column in SUMMARY:
            if row[column] is None:
                cell[column] = ""
                continue
            text = (f"{100 * row[column]:.0f} [{100 * row[f'{column}_low']:.0f}-"
                    f"{100 * row[f'{column}_high']:.0f}]")
            count = row[f"{column}_n"]
            cell[column] = text if count == row["n"] else f"{text} /{count}"
        cell["rows/min"] = "" if row["rows_per_min"] is None else f"{row['rows_per_min']:.1f}"
        cells.append(cell)
    used = [c for c in (cells[0] if cells else {}) if any(r[c] for r in cells)]
    return [{c: r[c] for c in used} for r in cells]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub-flavoured markdown table (the dashboard's markdown visualization)."""
    if not rows:
        return "(no rows)"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


OUTCOMES_NOTE = ("Where the rows end up: one outcome per row, the first that applies, "
                 "count [95% Wilson interval]")


def outcome_rows(label: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each test set's rows end up (`toolmodal.eval_metrics.outcome`): one row per mask
    mode and set, each outcome as `k [low-high%]` (95% Wilson), k of the row's `n`.

    Call rows and no-call rows get their own columns (`declined` is a failure on a call row, the
    right answer on a no-call row); a set's cells add up to its `n`.
    """
    rows = []
    for name, result in report["test_sets"].items():
        for mode, run in result["modes"].items():
            row: dict[str, Any] = {"model": label, "mask": mode, "set": name}
            stats = {k: s for k, s in run["stats"].items() if "outcome_" in k and s["n"]}
            if not stats:
                continue
            row["n"] = sum(stat["k"] for stat in stats.values())
            for key, stat in stats.items():
                column = key.replace("no_call_outcome_", "no-call ").removeprefix("outcome_")
                row[column] = (f"{stat['k']} [{100 * stat['low']:.0f}-"
                               f"{100 * stat['high']:.0f}%]")
            rows.append(row)
    return rows
