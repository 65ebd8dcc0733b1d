"""Evaluation report: metrics per test set and mask mode, deltas, BFCL sets, plots, commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.commands import evaluate as commands
from toolmodal.engines import Generation, Request
from toolmodal.evaluate import EvalConfig, aggregate, evaluate, evaluate_rows
from toolmodal.evaluate_plots import write_plots
from toolmodal.schema import Param, Tool
from toolmodal.scoring import score_example

WEATHER = Tool(name="get_weather", parameters=(Param(name="city", type="string",
                                                     required=True),))
OSLO = ToolCall("get_weather", {"city": "Oslo"})


def row(rid: str, kind: str, expected: list[ToolCall]) -> dict:
    """A dataset row as the data contract defines it."""
    return {"id": rid, "phase": "joint", "kind": kind,
            "prompt": build_prompt("Call tools.", [WEATHER], "Weather in Oslo?"),
            "completion": [{"role": "assistant", "content": format_output(expected)}],
            "tools": json.dumps([WEATHER.model_dump(mode="json")]),
            "expected_calls": json.dumps([{"name": c.name, "arguments": c.arguments}
                                          for c in expected]),
            "difficulty": 1, "n_tools": 1, "category": "weather", "prompt_variant": "default"}


class FakeEngine:
    """Unmasked: calls an unoffered tool; soft: right tool, wrong city; hard: the right call."""

    def generate(self, requests: list[Request]) -> list[Generation]:
        text = {"none": format_output([ToolCall("weather_now", {"city": "Oslo"})]),
                "soft": format_output([ToolCall("get_weather", {"city": "Rome"})]),
                "hard": format_output([OSLO])}
        return [Generation(text[r.mask], n_new_tokens=10, seconds=0.5) for r in requests]


SPLITS = {"test_seen": [row("s1", "single", [OSLO]), row("s2", "single", [OSLO])],
          "test_unseen": [row("u1", "single", [OSLO])],
          "test_chain": [row("c1", "chain", [OSLO])],
          "test_irrelevance": [row("i1", "irrelevance", [])]}


def test_report_has_metrics_per_set_and_mode_and_deltas(tmp_path: Path):
    report = evaluate(FakeEngine(), EvalConfig(), SPLITS, log=lambda _: None)
    seen = report["test_sets"]["test_seen"]
    assert seen["modes"]["none"]["metrics"]["hallucination_rate"] == 1.0
    assert seen["modes"]["soft"]["metrics"]["tool_accuracy"] == 1.0
    assert seen["modes"]["soft"]["metrics"]["argument_accuracy"] == 0.0
    assert seen["modes"]["hard"]["metrics"]["exact_match"] == 1.0
    assert seen["delta_vs_unmasked"]["hard"]["exact_match"] == 1.0
    assert seen["modes"]["hard"]["metrics"]["tokens_per_s"] == 20.0
    assert report["headline"]["zero_shot_accuracy"] == {"none": 0.0, "soft": 0.0, "hard": 1.0}
    assert report["headline"]["irrelevance_accuracy"]["hard"] == 0.0  # called where none fits
    paths = write_plots(report, tmp_path)
    assert {p.name for p in paths} == {"masking.png", "confusion_none.png",
                                       "confusion_soft.png", "confusion_hard.png"}
    assert all(p.stat().st_size > 1000 for p in paths)


def test_missing_split_is_named():
    with pytest.raises(KeyError, match="test_chain"):
        evaluate(FakeEngine(), EvalConfig(test_splits=["test_chain"]), {}, log=lambda _: None)


def test_aggregate_irrelevance_only_counts_no_call_rows():
    scores = [score_example("none fits", [WEATHER], []),
              score_example(format_output([OSLO]), [WEATHER], [OSLO])]
    metrics = aggregate(scores, [1.0, 1.0], [4, 6])
    assert metrics["irrelevance_accuracy"] == 1.0 and metrics["tokens_per_s"] == 5.0
    assert "irrelevance_accuracy" not in aggregate(scores[1:], [1.0], [6])


def test_bfcl_set_in_report(bfcl_dir: Path):
    config = EvalConfig(test_splits=[], bfcl_files=[bfcl_dir / "BFCL_v4_irrelevance.json"],
                        mask_modes=["none", "hard"], limit=3)
    report = evaluate(FakeEngine(), config, {}, log=lambda _: None)
    modes = report["test_sets"]["bfcl:BFCL_v4_irrelevance"]["modes"]
    assert modes["none"]["metrics"]["bfcl_accuracy"] == 0.0  # fake engine always calls
    assert modes["none"]["metrics"]["n"] == 3


def test_evaluate_rows_on_tiny_model(tiny_model_dir: Path):
    from toolmodal.engines import EngineConfig
    from toolmodal.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(tiny_model_dir, EngineConfig(max_new_tokens=8))
    result = evaluate_rows(engine, SPLITS["test_seen"], "hard")
    assert result["metrics"]["n"] == 2 and result["metrics"]["hallucination_rate"] == 0.0
    assert len(result["examples"]) == 2


def test_predict_and_eval_commands(tmp_path: Path, bfcl_dir: Path, monkeypatch, capsys):
    monkeypatch.setattr("toolmodal.engines.load_engine", lambda *a: FakeEngine())
    question = bfcl_dir / "BFCL_v4_simple_python.json"
    out = tmp_path / "pred.jsonl"
    args = argparse.Namespace(model="x", bfcl=str(question), out=str(out), mask="none",
                              engine="transformers", backend="xgrammar", limit=2,
                              max_new_tokens=8, batch_size=2, lora=None)
    assert commands.predict(args) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [list(x) for x in lines] == [["id", "calls", "raw"]] * 2
    assert lines[0]["calls"][0]["name"] == "weather_now"
    answers = bfcl_dir / "possible_answer" / question.name
    score = argparse.Namespace(bfcl=str(question), answers=str(answers), pred=str(out))
    assert commands.score(score) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("accuracy: 0.0000 (0/2)")
