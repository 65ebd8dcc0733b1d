"""Shared-prefix packing: packed loss and gradients equal those of the rows trained separately.

The reference is the plain padded batch, whose masks transformers builds itself (causal, and
windowed on sliding layers); the packed batch brings its own masks and position ids. The tiny
fixture runs in fp32; one case shrinks its sliding window so rows are much longer than it.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.schema import Param, Tool
from toolmodal.training.config import SFTStageConfig
from toolmodal.training.loss import SupervisedLoss, supervised_loss
from toolmodal.training.masks import IGNORE, EncodedExample
from toolmodal.training.packing import (
    attention_masks,
    collate_packed,
    group_batches,
    group_keys,
    pack,
    pack_batch,
    shared_prefix,
)
from toolmodal.training.sft import (
    accumulate,
    collate,
    encode_rows,
    make_accelerator,
    micro_batches,
)

WEATHER = Tool(name="get_weather", description="Current weather in a city",
               parameters=(Param(name="city", type="string", required=True),))
ADD = Tool(name="add", description="Add two numbers",
           parameters=(Param(name="a", type="number", required=True),
                       Param(name="b", type="number", required=True)))


def _row(query: str, calls: list[ToolCall], system: str = "Call a tool.", history=None) -> dict:
    content = format_output(calls) if calls else "No tool fits this request."
    return {"prompt": build_prompt(system, [WEATHER, ADD], query, history),
            "completion": [{"role": "assistant", "content": content}]}


ROWS = [
    _row("Weather in Oslo?", [ToolCall("get_weather", {"city": "Oslo"})]),
    _row("Add 2 and 40 please", [ToolCall("add", {"a": 2, "b": 40})]),
    _row("Tell me a joke", []),
    _row("Weather in Rome and 1+1?", [ToolCall("get_weather", {"city": "Rome"}),
                                      ToolCall("add", {"a": 1, "b": 1})]),
    _row("And in Paris?", [ToolCall("get_weather", {"city": "Paris"})], history=[
        {"role": "assistant", "content": format_output([ToolCall("get_weather",
                                                                 {"city": "Oslo"})])},
        {"role": "tool", "content": '{"temp": 3}'}]),
    _row("Weather in Bergen?", [ToolCall("get_weather", {"city": "Bergen"})], system="Other."),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def examples(tokenizer) -> list[EncodedExample]:
    kept, dropped = encode_rows(tokenizer, ROWS, 4096)
    assert dropped == 0
    return kept


def test_group_keys_use_column_or_first_message():
    assert group_keys([{"group": 3, "prompt": []}, {"group": 3, "prompt": []}]) == ["3", "3"]
    keys = group_keys(ROWS)
    assert len(set(keys[:5])) == 1 and keys[5] != keys[0]  # the last row has another system


def test_shared_prefix_stops_before_the_first_prediction(examples):
    n = shared_prefix(examples[:5])
    assert n > 20  # the system prompt and the tool block
    assert all(e.input_ids[:n] == examples[0].input_ids[:n] for e in examples[:5])
    first_supervised = min(next(i for i, t in enumerate(e.labels) if t != IGNORE)
                           for e in examples[:5])
    assert n <= first_supervised - 1
    # Identical rows share everything but the token that predicts the completion.
    assert shared_prefix([examples[0], examples[0]]) == first_supervised_of(examples[0]) - 1


def first_supervised_of(example: EncodedExample) -> int:
    return next(i for i, t in enumerate(example.labels) if t != IGNORE)


def test_pack_layout(examples):
    packed = pack(examples[:3])
    n = shared_prefix(examples[:3])
    assert len(packed.input_ids) == n + sum(len(e.input_ids) - n for e in examples[:3])
    start = n + len(examples[0].input_ids) - n
    assert packed.position_ids[start] == n and packed.branch[start] == 2
    assert packed.branch[:n] == [0] * n
    assert sum(t != IGNORE for t in packed.targets) == sum(
        sum(t != IGNORE for t in e.labels) for e in examples[:3])


def test_masks_prefix_branches_window_and_padding():
    branch = torch.tensor([[0, 0, 1, 1, 2, 2, -1]])
    position = torch.tensor([[0, 1, 2, 3, 2, 3, 0]])
    masks = attention_masks(branch, position, sliding_window=2, dtype=torch.float32)
    full = masks["full_attention"][0, 0] == 0
    sliding = masks["sliding_attention"][0, 0] == 0
    assert full[5].tolist() == [True, True, False, False, True, True, False]  # prefix + own
    assert sliding[5].tolist() == [False, False, False, False, True, True, False]  # window 2
    assert full[6].tolist() == [False] * 6 + [True]  # padding sees itself only


def test_group_batches_keep_groups_adjacent():
    keys = ["a", "b", "a", "c", "b", "a"]
    batches = group_batches(keys, batch_size=3, seed=0)
    order = [i for batch in batches for i in batch]
    assert sorted(order) == list(range(6))
    assert all(len(batch) <= 3 for batch in batches)
    for key in "abc":  # every group fits a batch, so each lies whole in one
        assert sum(any(keys[i] == key for i in batch) for batch in batches) == 1
    assert group_batches(keys, 3, seed=0) == batches


def test_group_batches_first_fit_and_large_groups():
    keys = ["big"] * 10 + ["x"] * 2 + ["y"] * 2 + ["z"] * 3
    for seed in range(5):
        batches = group_batches(keys, batch_size=4, seed=seed)
        assert sorted(i for batch in batches for i in batch) == list(range(17))
        assert all(len(batch) <= 4 for batch in batches)
        # 10 rows: pieces of 4, 4 and 2 (the 2 may share its batch with x or y)
        assert sum(any(keys[i] == "big" for i in batch) for batch in batches) == 3
        # the small groups stay whole: x and y each in one batch, z in one
        for key in "xyz":
            assert sum(any(keys[i] == key for i in batch) for batch in batches) == 1
        assert len(batches) <= 6  # 17 rows in batches of 4: first fit wastes little


def _loss_and_grads(model, batch, tool_w: float, arg_w: float):
    model.zero_grad(set_to_none=True)
    parts = supervised_loss(model, batch, tool_w, arg_w)
    loss = parts.weighted / parts.weight
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), parts, grads


@pytest.mark.smoke
@pytest.mark.parametrize("window", [128, 8], ids=["fixture-window", "window-8"])
def test_packed_equals_separate(tiny_model_dir, tokenizer, examples, window):
    """Loss, token counts and every parameter's gradient match the plain batch (fp32)."""
    assert max(len(e.input_ids) for e in examples) > 8  # window 8: every row is longer
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32,
                                                 sliding_window=window)
    pad = tokenizer.pad_token_id
    keys = [e.group for e in examples]
    packed_batch = collate_packed(pack_batch(examples, keys), pad)
    assert packed_batch["input_ids"].shape[0] == 2  # two groups: two packed sequences
    ref_loss, ref, ref_grads = _loss_and_grads(model, collate(examples, pad), 0.7, 0.3)
    loss, parts, grads = _loss_and_grads(model, packed_batch, 0.7, 0.3)
    assert (parts.tokens, parts.weight) == (ref.tokens, pytest.approx(ref.weight))
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(parts.plain, ref.plain, rtol=1e-5, atol=1e-5)
    assert set(grads) == set(ref_grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    if window == 8:  # the window really cuts attention (else this case would prove nothing)
        wide = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        wide_loss, _, _ = _loss_and_grads(wide, packed_batch, 0.7, 0.3)
        assert abs(float(wide_loss) - float(loss)) > 1e-4


@pytest.mark.smoke
def test_split_packed_step_equals_padded(tiny_model_dir, tokenizer, examples):
    """One optimizer step's loss, token weight and gradients are the same whether the packed
    sequences run padded together or one forward each (`split_packed`, no padding)."""
    steps = []
    for split in (False, True):
        config = SFTStageConfig(stage="sft_joint", packing=True, split_packed=split)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        micro = micro_batches(examples, tokenizer.pad_token_id, config)
        assert [b["input_ids"].shape[0] for b in micro] == ([1, 1] if split else [2])
        parts = accumulate(make_accelerator(config), SupervisedLoss(model), micro, 0.7, 0.3)
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        steps.append((parts, grads))
    (ref, ref_grads), (parts, grads) = steps
    assert (parts.tokens, parts.weight) == (ref.tokens, pytest.approx(ref.weight))
    torch.testing.assert_close(parts.weighted, ref.weighted, rtol=1e-5, atol=1e-6)
    assert set(grads) == set(ref_grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.smoke
def test_packed_learning_curve_and_validation_loss_equal_separate(tiny_model_dir, tokenizer,
                                                                   examples):
    """The curve's checked positions, their logits and the validation loss are the same when
    each group's rows run as one packed sequence (what training's curve and eval do)."""
    from toolmodal.training.curve import decision_logits, eval_batches, first_call_accuracy
    from toolmodal.training.sft import evaluate_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    pad = tokenizer.pad_token_id
    found = {}
    for packed in (False, True):
        batches = eval_batches(examples, pad, 4, packed)
        assert len(batches) == 2  # two groups packed; six rows in padded batches of 4
        with torch.no_grad():
            outputs = [decision_logits(model, batch) for batch in batches]
        logits = torch.cat([out[0] for out in outputs])
        targets = torch.cat([batch["targets"][out[1]] for batch, out in zip(batches, outputs,
                                                                          strict=True)])
        spans = [s for out in outputs for s in out[2]]
        checked = [int(out[1][row, start:end].sum()) for out in outputs
                   for row, start, end in out[2]]
        found[packed] = (logits, targets, len(spans), checked)
    (ref_logits, ref_targets, ref_n, ref_checked), (logits, targets, n, checked) = (
        found[False], found[True])
    assert n == ref_n == len(examples) and checked == ref_checked and min(checked) >= 1
    assert torch.equal(targets, ref_targets)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)
    assert first_call_accuracy(model, examples, pad, 4, packed=True) == first_call_accuracy(
        model, examples, pad, 4)
    assert evaluate_loss(model, examples, pad, 4, packed=True) == pytest.approx(
        evaluate_loss(model, examples, pad, 4), rel=1e-5)


@pytest.mark.smoke
def test_first_call_accuracy_counts_every_branch_of_a_packed_sequence(tiny_model_dir, tokenizer,
                                                                      examples, monkeypatch):
    """With logits right everywhere except the first checked token of the no-call row, 5 of 6
    rows count as right, packed (5 branches + 1) or padded."""
    from toolmodal.calls import CALL_START
    from toolmodal.training import curve

    call_id = tokenizer.convert_tokens_to_ids(CALL_START)
    real = curve.decision_logits

    def all_but_declines(causal_lm, batch):
        logits, mask, spans = real(causal_lm, batch)
        right = torch.nn.functional.one_hot(batch["targets"][mask], logits.shape[-1]).float()
        for row, start, _ in spans:
            first = int(mask[:row].sum()) + int(mask[row, :start].sum())
            if int(batch["targets"][mask][first]) != call_id:
                right[first] = right[first].roll(1)
        return right, mask, spans

    monkeypatch.setattr(curve, "decision_logits", all_but_declines)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    pad = tokenizer.pad_token_id
    openings = [next(t for t in e.labels if t != IGNORE) for e in examples]
    assert sum(t != call_id for t in openings) == 1  # one no-call row ("Tell me a joke")
    for packed in (False, True):
        assert curve.first_call_accuracy(model, examples, pad, 4, packed) == pytest.approx(5 / 6)
