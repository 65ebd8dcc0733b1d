"""How batched llama.cpp decoding splits requests into waves (no model needed)."""

from __future__ import annotations

import pytest

from toolmodal.engines import common_prefix_length
from toolmodal.engines.llama_batch import new_cells, waves

BLOCK_A = list(range(100))         # a tool block
BLOCK_B = list(range(200, 300))    # another one


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix_length([[], [1]]) == 0
    assert common_prefix_length([[5], [1]]) == 0


def test_new_cells_count_the_shared_prefix_once() -> None:
    prompts = [BLOCK_A + [1, 2], BLOCK_A + [3], BLOCK_B + [4]]
    assert new_cells(prompts, 10) == [102 + 10, 1 + 10, 101 + 10]


def test_waves_hold_at_most_slots_consecutive_requests() -> None:
    prompts = [BLOCK_A + [i] for i in range(7)]
    assert waves(prompts, slots=3, n_ctx=4096, max_new_tokens=10) == [[0, 1, 2], [3, 4, 5], [6]]


def test_waves_split_where_the_cells_would_not_fit() -> None:
    # each request alone needs 101 + 20 cells; two sharing the block 121 + 21; two different
    # blocks 2 x 121
    same = [BLOCK_A + [1], BLOCK_A + [2]]
    assert waves(same, slots=8, n_ctx=142, max_new_tokens=20) == [[0, 1]]
    assert waves(same, slots=8, n_ctx=141, max_new_tokens=20) == [[0], [1]]
    different = [BLOCK_A + [1], BLOCK_B + [2]]
    assert waves(different, slots=8, n_ctx=241, max_new_tokens=20) == [[0], [1]]
    assert waves(different, slots=8, n_ctx=242, max_new_tokens=20) == [[0, 1]]


def test_a_prompt_that_cannot_fit_is_named() -> None:
    with pytest.raises(ValueError, match=r"prompt 1 \(101 tokens\) plus 20 new tokens"):
        waves([BLOCK_A, BLOCK_A + [1]], slots=2, n_ctx=120, max_new_tokens=20)
