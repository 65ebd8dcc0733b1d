"""The deployed model's call threshold chosen on validation rows: which rows decide, how a
threshold scores, which one wins, and the errors (the llama.cpp probe itself is tested in
test_export_llamacpp.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolmodal.call_calibration import (
    CallCalibrationConfig,
    calibrate,
    choose,
    score_threshold,
    should_call,
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
