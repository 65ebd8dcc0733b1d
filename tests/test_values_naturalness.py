"""`naturalness.request_nll` on the tiny fixture (per-text scores, batching-invariant, ordered)
and the gate's naturalness bound."""

from __future__ import annotations

import math

import pytest

from toolmodal.datagen.naturalness import request_nll
from toolmodal.validation import naturalness_check

pytestmark = pytest.mark.smoke

TEXTS = ["What's the weather in Lisbon tomorrow?", "hi",
         "Book a table for four at 7 pm on Friday, somewhere near the harbour please."]


def test_one_finite_positive_score_per_text(tiny_model_dir):
    scores = request_nll(tiny_model_dir, TEXTS)
    assert len(scores) == len(TEXTS)
    assert all(math.isfinite(s) and s > 0 for s in scores)


def test_padding_and_batching_do_not_change_scores(tiny_model_dir):
    # right padding with an attention mask must leave each text's score as if scored alone
    alone = [request_nll(tiny_model_dir, [t])[0] for t in TEXTS]
    batched = request_nll(tiny_model_dir, TEXTS, batch_size=3)
    assert batched == pytest.approx(alone, rel=1e-4)


def test_scores_follow_input_order(tiny_model_dir):
    forward = request_nll(tiny_model_dir, TEXTS, batch_size=2)
    backward = request_nll(tiny_model_dir, TEXTS[::-1], batch_size=2)
    assert backward == pytest.approx(forward[::-1], rel=1e-4)


def test_empty_text_is_named(tiny_model_dir):
    with pytest.raises(ValueError, match="text 1"):
        request_nll(tiny_model_dir, ["ok", ""])


@pytest.mark.parametrize(("bound", "passes"), [(1000.0, True), (0.01, False)])
def test_gate_bounds_the_median_nll(tiny_model_dir, bound, passes):
    check = naturalness_check(TEXTS + [""], tiny_model_dir, bound, 2)
    assert check.name == "request_naturalness" and check.success is passes
    assert check.details["sample"] == 2 and len(check.details["least_natural"]) == 2
    assert check.observed > 0
