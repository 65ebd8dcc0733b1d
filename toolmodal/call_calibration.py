"""The call threshold of the deployed model, chosen on validation rows.

`toolmodal.masking.decision` lets a call start only when the model gives the call-start token
at least `call_threshold` of its first-token probability. Which value is right depends on the
trained model (on 2026-12-03's `make run` model 0.4 kept every seen-tool figure and declined 13
more of 100 irrelevant requests; on 2026-11-30's weaker models 0.5 cost every right tool), so it
is chosen per model, on the validation splits, never on test rows.

The decision is read off one forward pass per row: at threshold t a row calls when the call
token is the greedy first token and its probability is at least t (None: plain greedy). Rows
whose gold answer opens with a call should call; rows whose gold answer makes no call
(irrelevant requests, a chain's closing answer) should not; rows whose gold answer writes text
before its calls are left out (the first token does not decide them). Each candidate is scored
by balanced accuracy, the mean of the two rates, so declining everything (or calling everything)
scores 0.5 whatever the mix of rows. The chosen threshold is the smallest intervention (None,
then the lowest value) whose balanced accuracy is within one standard error of the best (the
one-standard-error rule of model selection): the validation splits hold few rows that should
not call (17 in `make run`'s data), where one row moves the score by 3 points, and taking the
bare maximum once chose 0.6 over 0.5 on one row and withheld 57 of 100 answerable seen-tool
requests at test (bench/results/2026-12-03.md, "Nineteenth session").

Deliberately left out: the probing itself (the llama.cpp and transformers engines'
`first_token_calls`), ZenML, and rows' arguments (the threshold cannot change what a call says).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from toolmodal.calls import CALL_START
from toolmodal.engines import Request
from toolmodal.eval_metrics import proportion
from toolmodal.scoring import tools_from_json

VALIDATION_SPLITS = ["selection_validation", "arguments_validation", "joint_validation"]
CANDIDATES = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]


class CallCalibrationConfig(BaseModel):
    """Settings of the threshold choice.

    Attributes:
        splits: Dataset splits whose rows decide (validation splits; missing ones are an error).
        candidates: Thresholds tried besides None (plain greedy).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    splits: list[str] = Field(default_factory=lambda: list(VALIDATION_SPLITS), min_length=1)
    candidates: list[float] = Field(default_factory=lambda: list(CANDIDATES))


class ThresholdScore(BaseModel):
    """How one threshold decides the validation rows.

    Attributes:
        threshold: The value (None: plain greedy).
        calls: Rows that should call and do; `n_call` such rows.
        declines: Rows that should not call and do not; `n_decline` such rows.
        balanced: Mean of calls / n_call and declines / n_decline.
        call_interval, decline_interval: 95% Wilson intervals of the two rates.
    """

    threshold: float | None
    calls: int
    n_call: int
    declines: int
    n_decline: int
    balanced: float
    call_interval: tuple[float, float]
    decline_interval: tuple[float, float]


class CallDecision(BaseModel):
    """The chosen threshold and every candidate's score (the `call_decision` artifact)."""

    threshold: float | None
    splits: list[str]
    scores: list[ThresholdScore]


class FirstTokenEngine(Protocol):
    """What the calibration needs from an engine (llama.cpp's and transformers' have it)."""

    def first_token_calls(self, requests: list[Request]) -> list[tuple[float, bool]]:
        """Per request: P(call-start) at the first generated position, and whether it is
        the greedy choice there."""
        ...


def should_call(row: dict) -> bool | None:
    """True: the gold answer opens with a call; False: it makes no call; None: it writes text
    before its calls (left out)."""
    content = row["completion"][0]["content"]
    if content.startswith(CALL_START):
        return True
    return None if CALL_START in content else False


def score_threshold(threshold: float | None, p_call: np.ndarray, greedy_call: np.ndarray,
                    wanted: np.ndarray) -> ThresholdScore:
    """Score one threshold on rows with first-token `p_call`, `greedy_call` and the wanted
    decision (True: should call)."""
    calls = greedy_call if threshold is None else greedy_call & (p_call >= threshold)
    call_k, call_n = int((calls & wanted).sum()), int(wanted.sum())
    decline_k, decline_n = int((~calls & ~wanted).sum()), int((~wanted).sum())
    call_stats, decline_stats = proportion(call_k, call_n), proportion(decline_k, decline_n)
    return ThresholdScore(threshold=threshold, calls=call_k, n_call=call_n,
                          declines=decline_k, n_decline=decline_n,
                          balanced=(call_stats["value"] + decline_stats["value"]) / 2,
                          call_interval=(call_stats["low"], call_stats["high"]),
                          decline_interval=(decline_stats["low"], decline_stats["high"]))


def standard_error(score: ThresholdScore) -> float:
    """Standard error of a score's balanced accuracy: half the root of its two rates' summed
    variances, each rate taken as (k + 1) / (n + 2) so that 17 of 17 still has one."""
    def variance(k: int, n: int) -> float:
        rate = (k + 1) / (n + 2)
        return rate * (1 - rate) / n

    return 0.5 * math.sqrt(variance(score.calls, score.n_call)
                           + variance(score.declines, score.n_decline))


def choose(scores: list[ThresholdScore]) -> ThresholdScore:
    """The first score (None comes first, then ascending thresholds: the smallest intervention)
    whose balanced accuracy is within one standard error of the best one's."""
    best = max(scores, key=lambda s: s.balanced)
    floor = best.balanced - standard_error(best)
    return next(s for s in scores if s.balanced >= floor)


def calibrate(engine: FirstTokenEngine, splits: dict[str, list[dict]],
              config: CallCalibrationConfig) -> CallDecision:
    """Probe every decidable row of `config.splits` once and choose the threshold.

    Raises:
        KeyError: A configured split is not in `splits`.
        ValueError: The splits hold no row that should call, or none that should not.
    """
    rows = []
    for name in config.splits:
        if name not in splits:
            raise KeyError(f"call calibration split {name!r} not in dataset "
                           f"(has {sorted(splits)})")
        rows += [(row, should_call(row)) for row in splits[name]]
    rows = [(row, wanted) for row, wanted in rows if wanted is not None]
    wanted = np.array([w for _, w in rows], dtype=bool)
    if wanted.all() or not wanted.any():
        raise ValueError(f"call calibration splits {config.splits} need rows that should call "
                         f"and rows that should not; they have {int(wanted.sum())} and "
                         f"{int((~wanted).sum())}")
    probes = engine.first_token_calls([Request(row["prompt"], list(tools_from_json(row["tools"])))
                                       for row, _ in rows])
    p_call = np.array([p for p, _ in probes])
    greedy = np.array([g for _, g in probes], dtype=bool)
    candidates = [None, *sorted(config.candidates)]
    scores = [score_threshold(t, p_call, greedy, wanted) for t in candidates]
    return CallDecision(threshold=choose(scores).threshold, splits=config.splits, scores=scores)
