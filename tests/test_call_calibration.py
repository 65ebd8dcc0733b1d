"""The deployed model's call threshold chosen on validation rows: which rows decide, how a
threshold scores, which one wins, and the errors (the llama.cpp probe itself is tested in
test_export_llamacpp.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolmodal.call_calibration import (
    CallCalibrationConfig,
    ThresholdScore,
    calibrate,
    choose,
    score_threshold,
    should_call,
    standard_error,
)
from toolmodal.engines import Request

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
TOOLS = json.dumps([{"name": "get_weather", "description": "Weather",
                     "parameters": [{"name": "city", "type": "string", "required": True}]}])


def _row(answer: str, question: str = "weather?") -> dict:
    return {"prompt": [{"role": "user", "content": question}], "tools": TOOLS,
            "completion": [{"role": "assistant", "content": answer}]}


@pytest.mark.parametrize(("answer", "wanted"), [
    (CALL, True),                                   # opens with a call
    (CALL + CALL, True),                            # parallel calls
    ("No tool here can book a flight.", False),     # irrelevant request declined
    ("It is 12 degrees in Oslo.", False),           # a chain's closing answer
    ("I need the weather first.\n" + CALL, None),   # reasoning line, then a call: left out
])
def test_which_rows_decide(answer: str, wanted: bool | None):
    assert should_call(_row(answer)) is wanted


def test_a_threshold_withholds_only_greedy_calls_below_it():
    p_call = np.array([0.9, 0.45, 0.3, 0.45, 0.2])
    greedy = np.array([True, True, False, True, False])
    wanted = np.array([True, True, True, False, False])
    greedy_score = score_threshold(None, p_call, greedy, wanted)
    assert (greedy_score.calls, greedy_score.n_call) == (2, 3)
    assert (greedy_score.declines, greedy_score.n_decline) == (1, 2)
    half = score_threshold(0.5, p_call, greedy, wanted)
    assert (half.calls, half.declines) == (1, 2)   # row 2 withheld, row 4 now declined
    assert half.balanced == pytest.approx((1 / 3 + 1) / 2)
    assert half.decline_interval[0] < 1.0 <= half.decline_interval[1]


def test_declining_everything_cannot_win_and_ties_go_to_the_smallest_intervention():
    p_call = np.array([0.9, 0.8, 0.6, 0.2])
    greedy = np.array([True, True, True, True])
    wanted = np.array([True, True, False, False])
    scores = [score_threshold(t, p_call, greedy, wanted) for t in (None, 0.3, 0.7, 0.95)]
    assert [s.balanced for s in scores] == [0.5, 0.75, 1.0, 0.5]  # 0.95 declines all
    assert choose(scores).threshold == 0.7
    tied = [score_threshold(t, p_call, greedy, wanted) for t in (None, 0.1)]
    assert choose(tied).threshold is None


def _counted(threshold, calls: int, declines: int, n_call: int = 77,
             n_decline: int = 17) -> ThresholdScore:
    return ThresholdScore(threshold=threshold, calls=calls, n_call=n_call, declines=declines,
                          n_decline=n_decline,
                          balanced=(calls / n_call + declines / n_decline) / 2,
                          call_interval=(0.0, 1.0), decline_interval=(0.0, 1.0))


# Validation counts (calls kept of 77, declines of 17) of two `make run` models that differ by
# one GRPO step (bench/results/2026-12-03.md, "Nineteenth session"): the bare maximum chose 0.5
# for the first and 0.6 for the second, on one row of 17.
RUN_A = [(None, 75, 7), (0.4, 73, 9), (0.45, 67, 11), (0.5, 63, 14), (0.55, 50, 15),
         (0.6, 41, 16), (0.65, 30, 17), (0.7, 14, 17)]
RUN_B = [(None, 75, 6), (0.4, 73, 10), (0.45, 68, 11), (0.5, 62, 13), (0.55, 52, 15),
         (0.6, 45, 17), (0.65, 32, 17), (0.7, 13, 17)]


@pytest.mark.parametrize(("counts", "best", "chosen"), [(RUN_A, 0.5, 0.5), (RUN_B, 0.6, 0.4)])
def test_the_smallest_intervention_within_one_standard_error_of_the_best(counts, best, chosen):
    scores = [_counted(*row) for row in counts]
    top = max(scores, key=lambda s: s.balanced)
    assert top.threshold == best
    assert choose(scores).threshold == chosen
    assert 0.02 < standard_error(top) < 0.06  # 17 rows that should not call: a few points


def test_the_standard_error_shrinks_with_rows_and_never_vanishes():
    few, many = _counted(0.5, 17, 17, 17, 17), _counted(0.5, 170, 170, 170, 170)
    assert standard_error(many) < standard_error(few) and standard_error(many) > 0


class _Probe:
    """An engine whose first-token probe is fixed per question (what `calibrate` reads)."""

    def __init__(self, answers: dict[str, tuple[float, bool]]):
        self.answers = answers
        self.asked: list[Request] = []

    def first_token_calls(self, requests: list[Request]) -> list[tuple[float, bool]]:
        self.asked += requests
        return [self.answers[r.messages[-1]["content"]] for r in requests]


def test_calibrate_probes_the_deciding_rows_of_every_split_and_chooses():
    splits = {"a": [_row(CALL, "q1"), _row("Sorry, no tool fits.", "q2")],
              "b": [_row(CALL, "q3"), _row("First the city.\n" + CALL, "q4")],
              "test_seen": [_row(CALL, "never")]}
    engine = _Probe({"q1": (0.8, True), "q2": (0.45, True), "q3": (0.55, True)})
    decision = calibrate(engine, splits, CallCalibrationConfig(splits=["a", "b"],
                                                               candidates=[0.6, 0.5]))
    assert [r.messages[-1]["content"] for r in engine.asked] == ["q1", "q2", "q3"]
    assert engine.asked[0].tools[0].name == "get_weather"
    assert [s.threshold for s in decision.scores] == [None, 0.5, 0.6]
    assert decision.threshold == 0.5  # both calls kept, the irrelevant one declined
    assert decision.splits == ["a", "b"]


def test_calibrate_names_a_missing_split_and_one_sided_rows():
    with pytest.raises(KeyError, match="'selection_validation' not in dataset"):
        calibrate(_Probe({}), {"a": []}, CallCalibrationConfig())
    with pytest.raises(ValueError, match="have 1 and 0"):
        calibrate(_Probe({}), {"a": [_row(CALL)]}, CallCalibrationConfig(splits=["a"]))
