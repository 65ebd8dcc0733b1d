"""The validation report: a self-contained HTML page (inline CSS, no network) and a JSON summary.

Deliberately left out: GX Data Docs, which pull their stylesheet from a CDN.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

from toolmodal.validation.suite import ValidationOutcome

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4em;
vertical-align:top;text-align:left;font-size:.9em}th{background:#f0f0f0}
.pass{color:#11772d;font-weight:bold}.fail{color:#b00020;font-weight:bold}
code{font-size:.85em;white-space:pre-wrap;word-break:break-all}
"""


def summary(outcome: ValidationOutcome) -> dict:
    """The JSON summary: overall result, failed check names and every check's details."""
    return {"success": outcome.success, "rows": outcome.rows,
            "token_method": outcome.token_method,
            "failed": [c.name for c in outcome.checks if not c.success],
            "checks": [dataclasses.asdict(c) for c in outcome.checks]}


def write_report(outcome: ValidationOutcome, folder: Path) -> tuple[Path, Path]:
    """Write `report.html` and `report.json` into `folder`; return both paths."""
    folder = Path(folder)
    json_path, html_path = folder / "report.json", folder / "report.html"
    json_path.write_text(json.dumps(summary(outcome), indent=1, ensure_ascii=False),
                         encoding="utf-8")
    html_path.write_text(render_html(outcome), encoding="utf-8")
    return html_path, json_path


def render_html(outcome: ValidationOutcome) -> str:
    """The report page; all styling inline so it renders offline."""
    verdict = "PASSED" if outcome.success else "FAILED"
    failed = sum(not c.success for c in outcome.checks)
    rows = "".join(_row(c) for c in sorted(outcome.checks, key=lambda c: c.success))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>toolmodal data "
            f"validation: {verdict}</title><style>{_CSS}</style></head><body>"
            f"<h1>Data validation: <span class='{'pass' if outcome.success else 'fail'}'>"
            f"{verdict}</span></h1><p>{outcome.rows} rows, {len(outcome.checks)} checks, "
            f"{failed} failed. Token counts: {html.escape(outcome.token_method)}.</p>"
            f"<table><tr><th>check</th><th>result</th><th>expectation</th><th>observed</th>"
            f"<th>bounds / details</th></tr>{rows}</table></body></html>")


def _row(check) -> str:
    status = "<span class='pass'>pass</span>" if check.success else \
        "<span class='fail'>FAIL</span>"
    details = html.escape(json.dumps(check.details, ensure_ascii=False, default=str)[:1500])
    observed = html.escape(json.dumps(check.observed, default=str))
    return (f"<tr><td><b>{html.escape(check.name)}</b><br>{html.escape(check.description)}</td>"
            f"<td>{status}</td>"
            f"<td>{html.escape(check.expectation)}</td><td><code>{observed}</code></td>"
            f"<td><code>{details}</code></td></tr>")
