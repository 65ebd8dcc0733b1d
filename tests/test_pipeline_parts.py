"""The pipeline's own pieces without running a pipeline: promotion, tracking, summary rows and
the materializers of our types (round trips and the content hashes caching relies on)."""

from __future__ import annotations

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
                                           "held_out_score", uri,
                                           settings={"call_threshold": "0.5"})
    assert better["promoted"] and better["previous_production"] == 1
    production = mlflow.MlflowClient(uri).get_model_version_by_alias("m", tracking.PRODUCTION)
    assert int(production.version) == 4 and production.source == "/models/4"
    assert production.tags == {"held_out_score": "0.7", "call_threshold": "0.5"}
    with pytest.raises(KeyError, match="'accuracy' missing"):
        tracking.register_and_promote("m", "/models/5", {"held_out_score": 1.0}, "accuracy", uri)


def test_a_version_at_or_below_the_floor_is_never_promoted(tmp_path: Path):
    """Not even into an empty registry: a model that gets nothing right is kept out of
    production."""
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    zero = tracking.register_and_promote("m", "/models/1", {"headline_score": 0.0},
                                         "headline_score", uri, floor=0.0)
    assert not zero["promoted"] and zero["previous_production"] is None and zero["floor"] == 0.0
    first = tracking.register_and_promote("m", "/models/2", {"headline_score": 0.1},
                                          "headline_score", uri, floor=0.0)
    assert first["promoted"] and first["version"] == 2
    production = mlflow.MlflowClient(uri).get_model_version_by_alias("m", tracking.PRODUCTION)
    assert production.source == "/models/2"


def test_logging_without_a_tracked_run_does_nothing(tmp_path: Path):
    assert not tracking.tracking()
    tracking.log_params({"a": {"b": 1}})
    tracking.log_metrics({"loss": 1.0})
    tracking.metrics_hook("sft/")(1, {"loss": 2.0})
    assert not (tmp_path / "mlruns").exists()


def test_flatten_and_headline_metrics():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2,
                                                                        "e": 3}
    seen = {"value": 0.4, "k": 4, "n": 10, "low": 0.17, "high": 0.69}
    headline = {"seen_exact_match": {"hard": seen, "none": {"value": None, "k": 0, "n": 0}},
                "irrelevance_accuracy": {"hard": {"value": 0.8, "k": 8, "n": 10}}}
    values, intervals = tracking.headline_metrics(headline, "hard",
                                                  ["seen_exact_match", "irrelevance_accuracy"])
    assert values["headline_score"] == pytest.approx(0.6) and intervals["seen_exact_match"] == seen
    with pytest.raises(KeyError, match="'seen_exact_match' has no value under mask 'none'"):
        tracking.headline_metrics(headline, "none", ["seen_exact_match"])


def _stat(value: float, n: int = 4) -> dict:
    return {"value": value, "k": round(value * n), "n": n, "low": value / 2, "high": 1.0}


def _report() -> dict:
    call_stats = {"tool_accuracy": _stat(0.5), "exact_match": _stat(0.25),
                  "argument_accuracy": _stat(0.5, 8), "outcome_exact": _stat(0.25),
                  "outcome_declined": _stat(0.75)}
    metrics = {"n": 4, "tool_accuracy": 0.5, "exact_match": 0.25, "argument_accuracy": 0.5,
               "latency_s": 2.0, "rows_per_min": 30.0}
    run = {"metrics": metrics, "stats": call_stats,
           "by_kind": {"single": call_stats, "parallel": call_stats}}
    return {"test_sets": {"test_unseen": {"modes": {"none": run, "hard": run}}},
            "headline": {"unseen_exact_match": {"none": _stat(0.25), "hard": _stat(0.25)}}}


def test_eval_rows_and_tables():
    rows = reports.eval_rows("sft", _report())
    assert [(r["mask"], r["set"]) for r in rows] == [
        ("none", "test_unseen"), ("none", "test_unseen/parallel"),
        ("hard", "test_unseen"), ("hard", "test_unseen/parallel")]
    assert rows[2]["exact"] == 0.25 and rows[2]["exact_low"] == 0.125 and rows[2]["n"] == 4
    assert rows[2]["irrelevance"] is None  # not defined on a call set, never averaged in
    assert rows[3]["n"] == 4  # a kind row counts rows, not arguments
    cells = reports.interval_cells(rows)
    assert cells[0]["exact"] == "25 [12-100]" and cells[0]["args"] == "50 [25-100] /8"
    assert "irrelevance" not in cells[0]  # empty in every row
    text = reports.text_table(cells)
    assert text.splitlines()[0].split()[:4] == ["model", "mask", "set", "n"]
    assert reports.markdown_table(cells).splitlines()[1].startswith("|---|")
    page = reports.comparison_page(rows, ["exact", "tool"])
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    curves = reports.curves_page("c", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    assert "data:image/png;base64," in curves


def test_eval_report_materializer_shows_the_table_as_html_and_markdown(tmp_path: Path):
    from materializers.eval_report import EvalReport, EvalReportMaterializer

    uri = tmp_path / "artifact"
    uri.mkdir()
    report = EvalReport("sft", "/models/1", _report() | {"config": {}}, {"masking.png": b"x"})
    materializer = EvalReportMaterializer(str(uri))
    materializer.save(report)
    assert materializer.load(EvalReport) == report
    shown = materializer.save_visualizations(report)
    assert sorted(Path(p).name for p in shown) == ["evaluation.html", "evaluation.md"]
    markdown = (uri / "evaluation.md").read_text()
    assert "| sft | hard | test_unseen | 4 | 50 [25-100] |" in markdown
    assert "| sft | hard | test_unseen | 4 | 1 [12-100%] | 3 [38-100%] |" in markdown
    assert materializer.extract_metadata(report)["unseen_exact_match.hard"] == 0.25


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


def test_the_closing_summary_shows_where_the_deployed_models_rows_end_up():
    from types import SimpleNamespace

    from materializers.eval_report import EvalReport
    from toolmodal.commands import pipeline

    exported = EvalReport("exported", "/models/1", _report())
    output = SimpleNamespace(load=lambda: exported)
    run = SimpleNamespace(steps={"evaluate_exported": SimpleNamespace(
        outputs={"eval_exported": [output]})})
    rows = pipeline.outcome_table(run)
    assert [(r["mask"], r["n"], r["exact"], r["declined"]) for r in rows] == [
        ("none", 4, "1 [12-100%]", "3 [38-100%]"), ("hard", 4, "1 [12-100%]", "3 [38-100%]")]
    assert pipeline.outcome_table(SimpleNamespace(steps={})) == []


def _calibrate_step(threshold, lora):
    from types import SimpleNamespace

    from toolmodal.call_calibration import CallDecision

    decision = CallDecision(threshold=threshold, splits=["joint_validation"], scores=[])
    return SimpleNamespace(
        inputs={"model": [SimpleNamespace(uri="/store/x")]},
        outputs={"call_decision": [SimpleNamespace(load=lambda: decision)]},
        config=SimpleNamespace(parameters={"model_file": "model-q8_0.gguf", "lora_file": lora,
                                           "engine": "llamacpp"}))


@pytest.mark.parametrize(("threshold", "lora", "tail"), [
    (0.5, None, " --call-threshold 0.5"),
    (None, "model-q4_k_m.lora.gguf", " --lora /store/x/model/model-q4_k_m.lora.gguf")])
def test_the_closing_summary_serves_the_deployed_model_as_evaluated(threshold, lora, tail):
    from types import SimpleNamespace

    from toolmodal.commands import pipeline

    run = SimpleNamespace(steps={"calibrate_call": _calibrate_step(threshold, lora)})
    assert pipeline.serve_commands(run, ["none"]) == [
        "toolmodal serve --model /store/x/model/model-q8_0.gguf --engine llamacpp" + tail]
    assert pipeline.serve_commands(SimpleNamespace(steps={}), ["none"]) == []


def test_the_closing_summary_serves_every_evaluated_mask_mode():
    from types import SimpleNamespace

    from toolmodal.commands import pipeline

    run = SimpleNamespace(steps={"calibrate_call": _calibrate_step(0.5, None)})
    command = ("toolmodal serve --model /store/x/model/model-q8_0.gguf --engine llamacpp"
               " --call-threshold 0.5")
    assert pipeline.serve_commands(run, ["none", "hard"]) == [command, command + " --mask hard"]


def test_run_command_takes_a_stack():
    from toolmodal.cli import build_parser

    args = build_parser().parse_args(["run", "data", "--stack", "toolmodal-docker"])
    assert (args.pipeline, args.stack, args.config) == ("data", "toolmodal-docker", None)


def test_code_files_follow_imports_transitively():
    from toolmodal.paths import code_files

    data = code_files("steps.generate_data")
    assert {"steps/generate_data.py", "steps/__init__.py", "toolmodal/__init__.py",
            "toolmodal/datagen/__init__.py", "toolmodal/datagen/pool.py",  # via generate.py
            "toolmodal/ingest/doctext.py"} <= set(data)  # via pool.py
    assert not [f for f in data if f.startswith("toolmodal/training/")]
    assert not [f for f in code_files("steps.sft") if f.startswith("toolmodal/datagen/")]
    assert data == sorted(data)
    assert code_files("numpy") == []  # not a project module


@pytest.mark.parametrize("name", ["ingest_schemas", "generate_data", "validate_data",
                                  "prepare_base_model", "sft", "grpo", "evaluate",
                                  "export_model", "calibrate_call", "promote_model"])
def test_every_step_caches_on_the_code_it_runs(name: str):
    import importlib

    from toolmodal.paths import code_files

    module = importlib.import_module(f"steps.{name}")
    policy = getattr(module, name).configuration.cache_policy
    assert policy.file_dependencies == code_files(f"steps.{name}")
    assert f"steps/{name}.py" in policy.file_dependencies
