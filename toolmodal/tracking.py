"""MLflow logging helpers for the pipeline steps: params, per-step metrics, curves, registry.

Inside a step run with ZenML's MLflow experiment tracker an MLflow run is active and these
helpers log to it; without a tracker in the stack (e.g. a step's `entrypoint` called in a test)
there is no active run and the logging helpers do nothing, rather than opening a stray run in
`./mlruns`. Promotion works on MLflow's registry directly: the "production" alias moves to a new
version only if it beats the current one. Left out: what the metrics mean (see
`toolmodal.evaluate`) and plotting (see `toolmodal.reports`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import mlflow
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

PRODUCTION = "production"


def tracking() -> bool:
    """Whether an MLflow run is active (a tracked step)."""
    return mlflow.active_run() is not None


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to `a.b.c` keys (MLflow params are flat)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_params(params: dict[str, Any], prefix: str = "") -> None:
    """Log a (nested) config as params, e.g. `sft_joint.learning_rate`."""
    if tracking():
        mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params, prefix).items()})


def log_metrics(metrics: dict[str, Any], prefix: str = "", step: int | None = None) -> None:
    """Log the finite numbers of `metrics` (others are skipped: MLflow rejects them)."""
    if tracking():
        numbers = {f"{prefix}{k}": float(v) for k, v in flatten(metrics).items()
                   if isinstance(v, int | float) and not isinstance(v, bool)
                   and math.isfinite(v)}
        mlflow.log_metrics(numbers, step=step)


def metrics_hook(prefix: str) -> Callable[[int, dict[str, float]], None]:
    """A training `MetricsHook`: each logged step's numbers go to MLflow (the curves) and
    advance a progress bar on the terminal (steps, rate, latest loss / reward)."""
    bar = tqdm(desc=prefix.rstrip("/"), unit="step", dynamic_ncols=True)

    def hook(step: int, metrics: dict[str, float]) -> None:
        log_metrics(metrics, prefix=prefix, step=step)
        bar.update(max(step - bar.n, 0))
        bar.set_postfix({k: f"{metrics[k]:.4g}" for k in ("loss", "reward", "eval_loss")
                         if isinstance(metrics.get(k), int | float)})

    return hook


def log_html(html: str, name: str) -> None:
    """Attach an HTML page (report, chart) to the MLflow run."""
    if tracking():
        mlflow.log_text(html, name)


def log_table(rows: list[dict[str, Any]], name: str) -> None:
    """Attach a table (rows with the same columns) to the MLflow run as a table artifact."""
    if tracking() and rows:
        mlflow.log_table({column: [row[column] for row in rows] for column in rows[0]}, name)


def register_and_promote(name: str, source: str, metrics: dict[str, float], key: str,
                         tracking_uri: str | None = None,
                         intervals: dict[str, dict] | None = None,
                         floor: float | None = None,
                         settings: dict[str, str] | None = None) -> dict[str, Any]:
    """Register a model version and move the production alias to it if it is better than the
    production version and above `floor`.

    Args:
        name: Registered model name.
        source: Where the model lives (the exported model's artifact URI).
        metrics: Held-out metrics of this version (stored as version tags).
        key: The metric compared (higher is better) with the current production version.
        tracking_uri: Registry URI; None = MLflow's current one (the tracker's, in a step).
        intervals: Count and 95% interval of each metric, copied into the decision record.
        floor: A `key` value the version must exceed to be promoted at all, even into an
            empty registry (None: none).
        settings: How the version is served as it was measured (e.g. `call_threshold`),
            stored as version tags beside the metrics.

    Returns:
        version, promoted, the compared values, the floor, the previous production version
        (or None) and the intervals. A production version without a `key` tag (scored on
        another metric) cannot be compared and is replaced.
    """
    client = mlflow.MlflowClient(tracking_uri)
    if key not in metrics:
        raise KeyError(f"promotion metric {key!r} missing from metrics {sorted(metrics)}")
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    run = mlflow.active_run()
    version = client.create_model_version(
        name, source=source, run_id=run.info.run_id if run else None,
        tags={k: str(v) for k, v in {**metrics, **(settings or {})}.items()})
    current = _production(client, name)
    previous = None if current is None or key not in current.tags else float(current.tags[key])
    above_floor = floor is None or metrics[key] > floor
    promoted = above_floor and (previous is None or metrics[key] > previous)
    if promoted:
        client.set_registered_model_alias(name, PRODUCTION, version.version)
    return {"version": int(version.version), "promoted": promoted, "metric": key,
            "value": metrics[key], "floor": floor, "production_value": previous,
            "previous_production": None if current is None else int(current.version),
            "intervals": intervals or {}}


def _production(client: mlflow.MlflowClient, name: str):
    """The version behind the production alias, or None if there is none yet."""
    try:
        return client.get_model_version_by_alias(name, PRODUCTION)
    except MlflowException:
        return None


HEADLINE_COMPONENTS = ["seen_exact_match", "unseen_exact_match", "chain_end_to_end",
                       "irrelevance_accuracy"]


class PromotionConfig(BaseModel):
    """Settings of the promotion step.

    Attributes:
        registered_model: Name of the model in MLflow's registry.
        mask: Mask mode whose held-out metrics decide (the mode the model will be served with).
        components: Headline components (keys of an evaluation report's `headline`) whose mean,
            `headline_score`, decides. Exact match on call sets next to irrelevance accuracy:
            a model that never calls scores 1 / len(components) at most.
        min_headline: The headline a model must exceed to be promoted at all, also into an
            empty registry; 0.0 keeps out a model that gets no call set row and no irrelevant
            request right.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    registered_model: str = "toolmodal"
    mask: Literal["none", "soft", "hard"] = "none"
    components: list[str] = HEADLINE_COMPONENTS
    min_headline: float = Field(0.0, ge=0.0, lt=1.0)


def headline_metrics(headline: dict[str, dict[str, dict]], mask: str,
                     components: list[str]) -> tuple[dict[str, float], dict[str, dict]]:
    """The components under `mask`, their mean `headline_score` (what promotes), and the
    count and Wilson interval of each component (for the decision record).

    Args:
        headline: An evaluation report's `headline`: component -> mode -> {value, k, n, low,
            high}.
        mask: Mask mode.
        components: Components to average; each must be in `headline` with a value.

    Raises:
        KeyError: A component is missing from the headline or has no value under `mask`.
    """
    stats = {}
    for name in components:
        stat = headline.get(name, {}).get(mask)
        if stat is None or stat["value"] is None:
            raise KeyError(f"headline component {name!r} has no value under mask {mask!r} "
                           f"(headline has {sorted(headline)})")
        stats[name] = stat
    values = {name: float(stat["value"]) for name, stat in stats.items()}
    values["headline_score"] = sum(values.values()) / len(values)
    return values, stats
