"""Evaluation report: metrics per test set and mode with counts and intervals, chains end to
end, the headline, deltas, BFCL sets, plots, commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from toolmodal import reports
from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.commands import evaluate as commands
from toolmodal.datagen.executor import execute, result_message
from toolmodal.engines import Generation, Request
from toolmodal.eval_metrics import CALL_OUTCOMES, outcome
from toolmodal.evaluate import (
    EvalConfig,
    chain_episodes,
    evaluate,
    evaluate_chains,
    evaluate_rows,
    repeats_a_call,
)
from toolmodal.evaluate_plots import write_plots
from toolmodal.schema import Param, Tool
from toolmodal.scoring import score_example

WEATHER = Tool(name="get_weather", parameters=(Param(name="city", type="string",
                                                     required=True),))
OSLO = ToolCall("get_weather", {"city": "Oslo"})
ROME = ToolCall("get_weather", {"city": "Rome"})
CLOCK = Tool(name="get_time", parameters=(Param(name="city", type="string", required=True),))
BROKEN = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"'  # cut at the budget


def row(rid: str, kind: str, expected: list[ToolCall], history: list[dict] | None = None,
        query: str = "Weather in Oslo?") -> dict:
    """A dataset row as the data contract defines it."""
    return {"id": rid, "phase": "joint", "kind": kind,
            "prompt": build_prompt("Call tools.", [WEATHER], query, history),
            "completion": [{"role": "assistant", "content": format_output(expected)}],
            "tools": json.dumps([WEATHER.model_dump(mode="json")]),
            "expected_calls": json.dumps([{"name": c.name, "arguments": c.arguments}
                                          for c in expected]),
            "difficulty": 1, "n_tools": 1, "category": "weather", "prompt_variant": "default"}


def executed(call: ToolCall) -> list[dict]:
    """The history turns of a right call: the call and the mock executor's result."""
    return [{"role": "assistant", "content": format_output([call])},
            {"role": "tool", "content": result_message(execute(call, [WEATHER]))}]


class FakeEngine:
    """Unmasked: calls an unoffered tool; soft: right tool, wrong city; hard: the right call."""

    def generate(self, requests: list[Request]) -> list[Generation]:
        text = {"none": format_output([ToolCall("weather_now", {"city": "Oslo"})]),
                "soft": format_output([ToolCall("get_weather", {"city": "Rome"})]),
                "hard": format_output([OSLO])}
        return [Generation(text[r.mask], n_new_tokens=10, seconds=0.5, ended=True)
                for r in requests]


class ScriptedEngine:
    """Answers each request with `answers[step]`, step = assistant turns in its prompt, and
    keeps every request it saw."""

    def __init__(self, answers: list[str], ended: bool = True) -> None:
        self.answers, self.ended, self.seen = answers, ended, []

    def generate(self, requests: list[Request]) -> list[Generation]:
        self.seen += requests
        steps = [sum(m["role"] == "assistant" for m in r.messages) for r in requests]
        return [Generation(self.answers[k], 5, 0.1, self.ended) for k in steps]


CHAIN = [row("c0", "chain", [OSLO]), row("c1", "chain", [ROME], executed(OSLO))]
SPLITS = {"test_seen": [row("s1", "single", [OSLO]), row("s2", "single", [OSLO])],
          "test_unseen": [row("u1", "single", [OSLO])],
          "test_chain": CHAIN,
          "test_irrelevance": [row("i1", "irrelevance", [])]}


def test_report_has_metrics_per_set_and_mode_and_deltas(tmp_path: Path):
    report = evaluate(FakeEngine(), EvalConfig(), SPLITS, log=lambda _: None)
    seen = report["test_sets"]["test_seen"]
    assert seen["modes"]["none"]["metrics"]["hallucination_rate"] == 1.0
    assert seen["modes"]["soft"]["metrics"]["tool_accuracy"] == 1.0
    assert seen["modes"]["soft"]["metrics"]["argument_accuracy"] == 0.0
    assert seen["modes"]["hard"]["metrics"]["exact_match"] == 1.0
    assert seen["modes"]["hard"]["stats"]["exact_match"]["n"] == 2
    assert seen["delta_vs_unmasked"]["hard"]["exact_match"] == 1.0
    assert seen["modes"]["hard"]["metrics"]["latency_s"] == 0.5
    # call metrics are not defined on the irrelevance set, irrelevance not on call sets
    irrelevance = report["test_sets"]["test_irrelevance"]["modes"]["hard"]["metrics"]
    assert "exact_match" not in irrelevance and "irrelevance_accuracy" not in \
        seen["modes"]["hard"]["metrics"]
    assert report["headline"]["unseen_exact_match"]["hard"]["value"] == 1.0
    assert report["headline"]["irrelevance_accuracy"]["hard"]["value"] == 0.0  # called anyway
    paths = write_plots(report, tmp_path)
    assert {p.name for p in paths} == {"masking.png", "confusion_none.png",
                                       "confusion_soft.png", "confusion_hard.png"}
    assert all(p.stat().st_size > 1000 for p in paths)


def test_refusal_on_a_call_set_scores_zero_and_irrelevance_counts_no_calls():
    rows = [row("s1", "single", [OSLO]), row("i1", "irrelevance", [])]
    stats = evaluate_rows(ScriptedEngine(["No tool fits."]), rows, "none")["stats"]
    for metric in ("tool_accuracy", "exact_match", "argument_accuracy", "stopped_after_calls"):
        assert (stats[metric]["k"], stats[metric]["n"]) == (0, 1), metric
    assert (stats["irrelevance_accuracy"]["k"], stats["irrelevance_accuracy"]["n"]) == (1, 1)
    assert stats["format_compliance"]["n"] == 0  # well-formed refusals do not inflate format
    assert stats["exact_match"]["low"] == 0.0 and stats["exact_match"]["high"] > 0.7


@pytest.mark.parametrize("attempt", [
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"',  # cut at the budget
    '<tool_call>{"name": "get_weather", "arguments": {"city": Oslo"}}</tool_call>',  # not JSON
    'Sure.<tool_call>{"name": "charge_charge_charge',
    # the call token withheld by the call decision, the call written anyway
    'tool{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'])
def test_a_broken_call_attempt_on_an_irrelevance_row_is_not_a_refusal(attempt: str):
    rows = [row("i1", "irrelevance", [])]
    stats = evaluate_rows(ScriptedEngine([attempt]), rows, "none")["stats"]
    assert (stats["irrelevance_accuracy"]["k"], stats["irrelevance_accuracy"]["n"]) == (0, 1)
    assert score_example(attempt, [], []).args_fraction == 0.0


def test_stopped_after_calls_needs_end_of_turn():
    rows = [row("s1", "single", [OSLO])]
    ran_out = evaluate_rows(ScriptedEngine([format_output([OSLO])], ended=False), rows, "none")
    assert ran_out["metrics"]["exact_match"] == 1.0
    assert ran_out["metrics"]["stopped_after_calls"] == 0.0  # hit the token budget instead
    assert (ran_out["stats"]["hit_token_limit"]["k"], ran_out["stats"]["hit_token_limit"]["n"]) \
        == (1, 1)
    ended = evaluate_rows(ScriptedEngine([format_output([OSLO])]), rows, "none")
    assert ended["metrics"]["stopped_after_calls"] == 1.0
    assert ended["metrics"]["hit_token_limit"] == 0.0


def test_rows_per_kind_when_a_set_mixes_kinds():
    rows = [row("s1", "single", [OSLO]), row("p1", "parallel", [OSLO, ROME])]
    result = evaluate_rows(ScriptedEngine([format_output([OSLO])]), rows, "none")
    assert result["by_kind"]["single"]["exact_match"]["k"] == 1
    assert result["by_kind"]["parallel"]["exact_match"]["k"] == 0
    assert result["by_kind"]["parallel"]["argument_accuracy"]["n"] == 2  # counted per argument


def test_chain_episodes_group_consecutive_steps():
    rows = [*CHAIN, row("x1", "chain", [ROME], executed(OSLO), query="Other?"),
            row("d0", "chain", [OSLO], query="Other?")]
    assert [[r["id"] for r in ep] for ep in chain_episodes(rows)] == [["c0", "c1"], ["d0"]]


def test_chain_end_to_end_feeds_the_models_calls_and_executed_results():
    engine = ScriptedEngine([format_output([OSLO]), format_output([ROME])])
    result = evaluate_chains(engine, CHAIN, "none")
    assert result["stats"]["chain_end_to_end"]["k"] == 1
    assert result["chains"] == [{"id": "c0", "steps": 2, "right_steps": 2}]
    # the second step saw the model's own turn and the executor's result of its call
    assert engine.seen[1].messages[-2:] == executed(OSLO)


def test_chain_end_to_end_fails_when_any_step_fails():
    # right first step, wrong second step: per step 1/2, end to end 0/1
    engine = ScriptedEngine([format_output([OSLO]), format_output([OSLO])])
    result = evaluate(engine, EvalConfig(test_splits=["test_chain"], mask_modes=["none"]),
                      {"test_chain": CHAIN}, log=lambda _: None)
    metrics = result["test_sets"]["test_chain"]["modes"]["none"]["metrics"]
    assert metrics["exact_match"] == 0.5 and metrics["chain_end_to_end"] == 0.0
    # a first step that misses stops the chain: the second step is never generated
    refuser = ScriptedEngine(["No tool fits.", format_output([ROME])])
    assert evaluate_chains(refuser, CHAIN, "none")["chains"][0]["right_steps"] == 0
    assert len(refuser.seen) == 1


def test_never_calling_cannot_beat_half_right_on_the_headline():
    from toolmodal.tracking import PromotionConfig, headline_metrics

    half = [row(f"s{i}", "single", [OSLO if i % 2 else ROME]) for i in range(4)]
    splits = {"test_seen": half, "test_unseen": half, "test_chain": CHAIN[:1],
              "test_irrelevance": [row("i1", "irrelevance", [])]}
    config = EvalConfig(mask_modes=["none"])
    components = PromotionConfig().components
    refuser = evaluate(ScriptedEngine(["No tool fits."]), config, splits, log=lambda _: None)
    caller = evaluate(ScriptedEngine([format_output([OSLO])]), config, splits,
                      log=lambda _: None)
    refusing, _ = headline_metrics(refuser["headline"], "none", components)
    calling, intervals = headline_metrics(caller["headline"], "none", components)
    assert refusing["headline_score"] == 0.25
    assert calling["headline_score"] > refusing["headline_score"]
    assert intervals["seen_exact_match"]["n"] == 4 and intervals["seen_exact_match"]["k"] == 2


def test_missing_split_is_named():
    with pytest.raises(KeyError, match="test_chain"):
        evaluate(FakeEngine(), EvalConfig(test_splits=["test_chain"]), {}, log=lambda _: None)


def test_bfcl_set_in_report(bfcl_dir: Path):
    config = EvalConfig(test_splits=[], bfcl_files=[bfcl_dir / "BFCL_v4_irrelevance.json"],
                        mask_modes=["none", "hard"], limit=3)
    report = evaluate(FakeEngine(), config, {}, log=lambda _: None)
    modes = report["test_sets"]["bfcl:BFCL_v4_irrelevance"]["modes"]
    assert modes["none"]["metrics"]["bfcl_accuracy"] == 0.0  # fake engine always calls
    assert modes["none"]["metrics"]["n"] == 3
    assert modes["none"]["stats"]["repeated_call_rate"]["n"] == 3


def test_repeats_a_call():
    call = {"name": "f", "arguments": {"a": 1, "b": [2]}}
    assert repeats_a_call([call, {"name": "f", "arguments": {"b": [2], "a": 1}}])
    assert not repeats_a_call([call, {"name": "f", "arguments": {"a": 2, "b": [2]}}])
    assert not repeats_a_call([call]) and not repeats_a_call([])


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
                              max_new_tokens=8, batch_size=2, lora=None,
                              call_threshold=None)
    assert commands.predict(args) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [list(x) for x in lines] == [["id", "calls", "raw"]] * 2
    assert lines[0]["calls"][0]["name"] == "weather_now"
    answers = bfcl_dir / "possible_answer" / question.name
    score = argparse.Namespace(bfcl=str(question), answers=str(answers), pred=str(out))
    assert commands.score(score) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("accuracy: 0.0000 (0/2)")


@pytest.mark.parametrize(("text", "want"), [
    (format_output([ROME, OSLO]), "exact"),
    ("No tool fits.", "declined"),
    (BROKEN, "broken"),
    (format_output([OSLO]) + " Done.", "broken"),  # text after the call
    (format_output([ToolCall("weather_now", {"city": "Oslo"}), ROME]), "hallucinated"),
    (format_output([OSLO, ToolCall("get_weather", {"city": "Paris"})]), "wrong_arguments"),
    (format_output([OSLO, ToolCall("get_weather", {})]), "wrong_arguments"),
    (format_output([OSLO]), "too_few_calls"),
    (format_output([OSLO, ROME, OSLO]), "too_many_calls"),
    (format_output([ToolCall("get_time", {"city": "Oslo"}), ROME]), "wrong_tool"),
    (format_output([ToolCall("get_time", {"city": "Oslo"})]), "wrong_tool"),
])
def test_a_call_row_has_the_first_outcome_that_applies(text: str, want: str):
    assert outcome(score_example(text, [WEATHER, CLOCK], [OSLO, ROME])) == want


@pytest.mark.parametrize(("text", "want"), [
    ("No tool fits.", "declined"), (BROKEN, "broken"), (format_output([OSLO]), "called")])
def test_a_no_call_row_is_declined_broken_or_called(text: str, want: str):
    assert outcome(score_example(text, [WEATHER], [])) == want


def test_outcome_shares_add_up_to_the_rows_and_reach_the_tables():
    rows = [row("s1", "single", [OSLO]), row("s2", "single", [OSLO], query="Oslo?"),
            row("s3", "single", [OSLO], query="Rome?"), row("i1", "irrelevance", [])]
    answers = {"Weather in Oslo?": format_output([OSLO]), "Oslo?": "No.", "Rome?": BROKEN}

    class ByQuery:
        def generate(self, requests: list[Request]) -> list[Generation]:
            return [Generation(answers[r.messages[-1]["content"]], 5, 0.1, True)
                    for r in requests]

    result = evaluate_rows(ByQuery(), rows, "none")
    assert [e["outcome"] for e in result["examples"]] == ["exact", "declined", "broken", "called"]
    stats = result["stats"]
    calls = {name: stats[f"outcome_{name}"]["k"] for name in CALL_OUTCOMES}
    assert calls == {"exact": 1, "declined": 1, "broken": 1, "hallucinated": 0,
                     "wrong_arguments": 0, "too_few_calls": 0, "too_many_calls": 0,
                     "wrong_tool": 0}
    assert stats["outcome_exact"]["n"] == 3 and stats["outcome_exact"]["high"] < 1.0
    assert (stats["no_call_outcome_called"]["k"], stats["no_call_outcome_called"]["n"]) == (1, 1)
    report = {"test_sets": {"test_mixed": {"modes": {"none": {"stats": stats}}}}}
    [table_row] = reports.outcome_rows("exported", report)
    assert table_row["n"] == 4 and table_row["exact"] == "1 [6-79%]"
    assert table_row["declined"] == "1 [6-79%]" and table_row["no-call called"] == "1 [21-100%]"
    assert "no-call called" in reports.markdown_table([{"n": 1}, table_row]).splitlines()[0]
