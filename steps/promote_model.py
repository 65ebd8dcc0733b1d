"""Step: compare every evaluation, register the exported model in MLflow and promote it to
production only if its headline score (mean of call-set exact match and irrelevance accuracy,
`PromotionConfig.components`) beats the current production version's and exceeds
`PromotionConfig.min_headline`."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.config import CachePolicy
from zenml.types import HTMLString

from materializers.eval_report import EvalReport
from toolmodal import reports, tracking
from toolmodal.call_calibration import CallDecision
from toolmodal.paths import code_files
from toolmodal.tracking import PromotionConfig

CHARTED = ["exact", "tool", "stopped", "irrelevance", "chain_e2e"]


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      experiment_tracker=True)
def promote_model(base: EvalReport, sft: EvalReport, grpo: EvalReport, exported: EvalReport,
                  call_decision: CallDecision, config: PromotionConfig) -> tuple[
        Annotated[list, "eval_table"], Annotated[HTMLString, "eval_comparison"],
        Annotated[dict, "promotion"]]:
    """Summary table + masked-vs-unmasked chart of all models; register and maybe promote
    (the version's tags hold its metrics and the call threshold it was evaluated with)."""
    rows = [row for report in (base, sft, grpo, exported) for row in report.rows()]
    page = reports.comparison_page(rows, [m for m in CHARTED if m in rows[0]])
    tracking.log_html(page, "eval_comparison.html")
    tracking.log_table(reports.interval_cells(rows), "eval_table.json")
    metrics, intervals = tracking.headline_metrics(exported.report["headline"], config.mask,
                                                   config.components)
    tracking.log_metrics(metrics, prefix="promotion/")
    decision = tracking.register_and_promote(config.registered_model, exported.model_uri,
                                             metrics, "headline_score", intervals=intervals,
                                             floor=config.min_headline,
                                             settings={"call_threshold":
                                                       str(call_decision.threshold)})
    log_metadata({"promotion": decision})
    return rows, HTMLString(page), decision
