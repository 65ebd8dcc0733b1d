"""`EvalReport`: one model's masked-vs-unmasked evaluation, with its charts, as an artifact.

Stored as the evaluator's `report.json` plus its PNG plots; the dashboard shows a page with the
per-set table (counts and 95% intervals) and every plot (the masked-vs-unmasked bar chart
first), and the same table as markdown. Left out: computing the
report (`toolmodal.evaluate`).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from toolmodal import reports


@dataclass(frozen=True)
class EvalReport:
    """An evaluation of one model.

    Attributes:
        label: Which model: "base", "sft", "grpo" or "exported".
        model_uri: Artifact URI of the evaluated model (what promotion registers).
        report: `toolmodal.evaluate.evaluate`'s dictionary (test sets x mask modes).
        plots: PNG file name -> bytes (`masking.png`, `confusion_<mode>.png`).
    """

    label: str
    model_uri: str
    report: dict[str, Any]
    plots: dict[str, bytes] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per mask mode and test set (see `reports.eval_rows`)."""
        return reports.eval_rows(self.label, self.report)


class EvalReportMaterializer(BaseMaterializer):
    """report.json + label + PNGs; an HTML page as visualization; headline numbers as metadata."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvalReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type[Any]) -> EvalReport:
        """Read the report, its label and its plots back."""
        with fileio.open(os.path.join(self.uri, "report.json"), "r") as f:
            stored = json.load(f)
        plots = {}
        for name in stored["plots"]:
            with fileio.open(os.path.join(self.uri, name), "rb") as f:
                plots[name] = f.read()
        return EvalReport(stored["label"], stored["model_uri"], stored["report"], plots)

    def save(self, data: EvalReport) -> None:
        """Write the JSON (label, plot names, report) and each PNG."""
        with fileio.open(os.path.join(self.uri, "report.json"), "w") as f:
            json.dump({"label": data.label, "model_uri": data.model_uri,
                       "plots": sorted(data.plots), "report": data.report}, f, default=str)
        for name, content in data.plots.items():
            with fileio.open(os.path.join(self.uri, name), "wb") as f:
                f.write(content)

    def extract_metadata(self, data: EvalReport) -> dict[str, Any]:
        """The headline per mask mode: each component's value and `headline_score`."""
        return {"label": data.label, **{f"{k}.{mode}": stat["value"] for k, by_mode in
                                         data.report["headline"].items()
                                         for mode, stat in by_mode.items()}}

    def save_visualizations(self, data: EvalReport) -> dict[str, VisualizationType]:
        """An HTML page (per-set table with counts and intervals, where the rows end up, then
        every plot) and the same tables as markdown."""
        cells = reports.interval_cells(data.rows())
        outcomes = reports.outcome_rows(data.label, data.report)
        images = "".join(f"<h3>{name}</h3><img src='data:image/png;base64,"
                         f"{base64.b64encode(content).decode()}'>"
                         for name, content in sorted(data.plots.items(),
                                                     key=lambda kv: kv[0] != "masking.png"))
        note = ("<p>Per test set and mask mode: value % [95% Wilson interval]; /n where the "
                "count differs from the set's rows (arguments, chains).</p>")
        html = reports.page(f"Evaluation: {data.label}",
                            note + reports.table(cells) + f"<h3>{reports.OUTCOMES_NOTE}</h3>"
                            + reports.table(outcomes) + images)
        paths = {os.path.join(self.uri, "evaluation.html"): (html, VisualizationType.HTML),
                 os.path.join(self.uri, "evaluation.md"): (
                     f"## Evaluation: {data.label}\n\n{reports.markdown_table(cells)}\n\n"
                     f"### {reports.OUTCOMES_NOTE}\n\n{reports.markdown_table(outcomes)}\n",
                     VisualizationType.MARKDOWN)}
        for path, (text, _) in paths.items():
            with fileio.open(path, "w") as f:
                f.write(text)
        return {path: kind for path, (_, kind) in paths.items()}
