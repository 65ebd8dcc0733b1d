"""The pipeline's own pieces without running a pipeline: promotion, tracking, summary rows and
the materializers of our types (round trips and the content hashes caching relies on)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import mlflow
import pytest

from toolmodal import reports, stack, tracking
from toolmodal.ingest import load_catalogue

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Keep ZenML and MLflow state in the temporary folder."""
    monkeypatch.setenv("TOOLMODAL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ZENML_CONFIG_PATH", str(tmp_path / "state" / ".zen" / "global"))
    monkeypatch.chdir(tmp_path)
    stack.configure_environment()  # makes `materializers` importable


def test_promotes_only_a_better_version(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    first = tracking.register_and_promote("m", "/models/1", {"held_out_score": 0.5},
                                          "held_out_score", uri)
    assert first["promoted"] and first["previous_production"] is None  # nothing to beat yet
    worse = tracking.register_and_promote("m", "/models/2", {"held_out_score": 0.4},
                                          "held_out_score", uri)
    assert not worse["promoted"] and worse["production_value"] == 0.5
    tie = tracking.register_and_promote("m", "/models/3", {"held_out_score": 0.5},
                                        "held_out_score", uri)
    assert not tie["promoted"]  # must beat, not match
    better = tracking.register_and_promote("m", "/models/4", {"held_out_score": 0.7},
                                           "held_out_score", uri)
    assert better["promoted"] and better["previous_production"] == 1
    production = mlflow.MlflowClient(uri).get_model_version_by_alias("m", tracking.PRODUCTION)
    assert int(production.version) == 4 and production.source == "/models/4"
    with pytest.raises(KeyError, match="'accuracy' missing"):
        tracking.register_and_promote("m", "/models/5", {"held_out_score": 1.0}, "accuracy", uri)


def test_logging_without_a_tracked_run_does_nothing(tmp_path: Path):
    assert not tracking.tracking()
    tracking.log_params({"a": {"b": 1}})
    tracking.log_metrics({"loss": 1.0})
    tracking.metrics_hook("sft/")(1, {"loss": 2.0})
    assert not (tmp_path / "mlruns").exists()


def test_flatten_and_held_out_metrics():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2,
                                                                        "e": 3}
    headline = {"zero_shot_accuracy": {"none": 0.2, "hard": 0.4},
                "irrelevance_accuracy": {"none": math.nan, "hard": 0.8}}
    assert tracking.held_out_metrics(headline, "hard")["held_out_score"] == pytest.approx(0.6)
    assert tracking.held_out_metrics(headline, "none") == {"zero_shot_accuracy": 0.2,
                                                           "held_out_score": 0.2}
    with pytest.raises(ValueError, match="no finite held-out metric under mask 'soft'"):
        tracking.held_out_metrics({"x": {"soft": math.nan}}, "soft")


def _report() -> dict:
    metrics = {"tool_accuracy": 0.5, "argument_accuracy": 0.25, "hallucination_rate": 0.0,
               "format_compliance": 1.0, "latency_s": 2.0, "exact_match": 0.25}
    return {"test_sets": {"test_unseen": {"modes": {"none": {"metrics": metrics},
                                                    "hard": {"metrics": metrics}}}},
            "headline": {"zero_shot_accuracy": {"none": 0.25, "hard": 0.5}}}


def test_eval_rows_and_tables():
    rows = reports.eval_rows("sft", _report())
    assert rows[1] == {"model": "sft", "mask": "hard", "zero_shot": 0.5, "tool": 0.5,
                       "argument": 0.25, "hallucination_rate": 0.0, "format_compliance": 1.0,
                       "latency_s": 2.0}
    text = reports.text_table(rows)
    assert text.splitlines()[0].split()[:3] == ["model", "mask", "zero_shot"]
    page = reports.comparison_page(rows, ["zero_shot", "tool"])
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    curves = reports.curves_page("c", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    assert "data:image/png;base64," in curves


def test_catalogue_materializer_round_trip_and_content_hash(tmp_path: Path):
    from materializers.catalogue import CatalogueMaterializer

    catalogue = load_catalogue([REPO / "data" / "tool_schemas" / "weather"])
    uri = tmp_path / "artifact"
    uri.mkdir()
    materializer = CatalogueMaterializer(str(uri))
    materializer.save(catalogue)
    assert materializer.load(type(catalogue)) == catalogue
    # Caching downstream of ingestion keys on the catalogue's own hash.
    assert materializer.compute_content_hash(catalogue) == catalogue.content_hash()
    assert materializer.extract_metadata(catalogue)["n_tools"] == len(catalogue.tools)


def test_model_dir_materializer_copies_files_and_hashes_content(tmp_path: Path,
                                                                tiny_model_dir: Path):
    from materializers.model_dir import ModelDir, ModelDirMaterializer

    uri = tmp_path / "artifact"
    uri.mkdir()
    materializer = ModelDirMaterializer(str(uri))
    model = ModelDir(tiny_model_dir)
    materializer.save(model)
    loaded = materializer.load(ModelDir)
    names = [p.relative_to(loaded.path) for p in loaded.files()]
    assert names == [p.relative_to(tiny_model_dir) for p in model.files()]
    assert materializer.compute_content_hash(loaded) == materializer.compute_content_hash(model)
    copy = tmp_path / "copy"
    os.makedirs(copy)
    for file in model.files():
        target = copy / file.relative_to(tiny_model_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())
    config = copy / "config.json"
    config.write_text(config.read_text() + " ")
    assert materializer.compute_content_hash(ModelDir(copy)) != \
        materializer.compute_content_hash(model)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ModelDir(tmp_path / "missing").files()


def test_scheduled_run_reports_and_succeeds(monkeypatch, capsys):
    """With a schedule ZenML returns no run: `toolmodal run` says so and exits 0."""
    from toolmodal.commands import pipeline

    asked = {}

    def fake_run(name, overlays, parameters=None, stack_name=None):
        asked.update(name=name, overlays=overlays, stack=stack_name)

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run)
    assert pipeline.run_and_report("full", ["gpu", "remote"], "my-k8s") == 0
    assert asked == {"name": "full", "overlays": ["gpu", "remote"], "stack": "my-k8s"}
    assert "scheduled" in capsys.readouterr().out


def test_run_command_takes_a_stack():
    from toolmodal.cli import build_parser

    args = build_parser().parse_args(["run", "data", "--stack", "toolmodal-docker"])
    assert (args.pipeline, args.stack, args.config) == ("data", "toolmodal-docker", None)
