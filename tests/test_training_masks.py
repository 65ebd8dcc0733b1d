"""Loss masks: which tokens of a hand-built conversation are supervised, and which are names/args.

Uses the tiny fixture's tokenizer and the project chat template; no model is run.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.schema import Param, Tool
from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.training.masks import ARGS, DECISION, NAME, NONE, call_spans, encode_example, render

WEATHER = Tool(name="get_weather", description="Current weather",
               parameters=(Param(name="city", type="string", required=True),))
CONVERT = Tool(name="convert_temp", description="Convert a temperature",
               parameters=(Param(name="value", type="number", required=True),
                           Param(name="unit", type="string", required=True)))
FIRST = format_output([ToolCall("get_weather", {"city": "Oslo"})])
ANSWER = format_output([ToolCall("convert_temp", {"value": 3, "unit": "F"})], reasoning="Now.")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _chain_example():
    history = [{"role": "assistant", "content": FIRST}, {"role": "tool", "content": '{"t": 3}'}]
    prompt = build_prompt("Use the tools.", [WEATHER, CONVERT], "Oslo weather in F?", history)
    return prompt, [{"role": "assistant", "content": ANSWER}]


def _text(tokenizer, ids):
    return tokenizer.decode(ids, skip_special_tokens=False)


def test_exactly_the_completion_is_supervised(tokenizer):
    prompt, completion = _chain_example()
    ex = encode_example(tokenizer, prompt, completion)
    supervised = [t for t, k in zip(ex.input_ids, ex.kinds, strict=True) if k != NONE]
    unsupervised = [t for t, k in zip(ex.input_ids, ex.kinds, strict=True) if k == NONE]
    # Supervised: the final assistant answer, its end of turn and the newline after it.
    assert _text(tokenizer, supervised) == ANSWER + "<end_of_turn>\n"
    # Not supervised: bos, system prompt + schemas, user turn, the earlier call, the tool result
    # and the generation prompt; one contiguous prefix.
    assert _text(tokenizer, unsupervised) == render(tokenizer, prompt, add_generation_prompt=True)
    first = ex.kinds.index(next(k for k in ex.kinds if k != NONE))
    assert all(k == NONE for k in ex.kinds[:first]) and all(k != NONE for k in ex.kinds[first:])
    assert ex.labels[:first] == [-100] * first and ex.labels[first:] == ex.input_ids[first:]


def test_decision_tokens_are_the_first_and_each_one_after_a_call(tokenizer):
    """Two calls: the decision tokens are the completion's first token (`<tool_call>`), the
    token after the first call (the second `<tool_call>`) and the one after the second call
    (`<end_of_turn>`); an answer without a call has only its first token."""
    two = format_output([ToolCall("get_weather", {"city": "Oslo"}),
                         ToolCall("get_weather", {"city": "Rome"})])
    prompt = build_prompt("Use the tools.", [WEATHER], "Oslo and Rome?", [])
    ex = encode_example(tokenizer, prompt, [{"role": "assistant", "content": two}])
    decisions = [t for t, k in zip(ex.input_ids, ex.kinds, strict=True) if k == DECISION]
    assert [_text(tokenizer, [t]) for t in decisions] == ["<tool_call>", "<tool_call>",
                                                          "<end_of_turn>"]
    answer = [{"role": "assistant", "content": "No tool fits that."}]
    ex = encode_example(tokenizer, prompt, answer)
    decisions = [i for i, k in enumerate(ex.kinds) if k == DECISION]
    assert decisions == [ex.kinds.index(DECISION)] and ex.kinds[decisions[0] - 1] == NONE


def test_earlier_call_schemas_and_tool_result_are_masked(tokenizer):
    prompt, completion = _chain_example()
    ex = encode_example(tokenizer, prompt, completion)
    prefix = _text(tokenizer, [t for t, k in zip(ex.input_ids, ex.kinds, strict=True) if k == NONE])
    for masked in (FIRST, '{"t": 3}', "Oslo weather in F?", "Use the tools.", "<tool_start>"):
        assert masked in prefix


def test_name_and_argument_tokens(tokenizer):
    prompt, completion = _chain_example()
    ex = encode_example(tokenizer, prompt, completion)
    names = _text(tokenizer, [t for t, k in zip(ex.input_ids, ex.kinds, strict=True) if k == NAME])
    args = _text(tokenizer, [t for t, k in zip(ex.input_ids, ex.kinds, strict=True) if k == ARGS])
    # Tokens overlapping the name may carry its quotes; nothing of the arguments.
    assert "convert_temp" in names and "value" not in names
    assert len(names) <= len("convert_temp") + 4
    assert '{"value": 3, "unit": "F"}' in args and "convert_temp" not in args
    assert "get_weather" not in names + args  # the earlier call is prompt, not supervised


@pytest.mark.parametrize(("text", "expected"), [
    # JSON form: the name's characters, then the whole arguments object.
    ('<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>',
     [(NAME, "f"), (ARGS, '{"a": 1}')]),
    # Reasoning first and two calls: both are found, offsets are in the whole text.
    ('ok<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"name": "g", '
     '"arguments": {"b": "}"}}</tool_call>',
     [(NAME, "f"), (ARGS, "{}"), (NAME, "g"), (ARGS, '{"b": "}"}')]),
    # Python form (one prompt variant): identifier, then what is inside the parentheses.
    ('<tool_call>f(a=1, b="x")</tool_call>', [(NAME, "f"), (ARGS, 'a=1, b="x"')]),
    # No tool fits: no spans.
    ("No tool fits this request.", []),
    # Broken JSON arguments: the name still counts, the arguments do not.
    ('<tool_call>{"name": "f", "arguments": {"a": </tool_call>', [(NAME, "f")]),
])
def test_call_spans(text, expected):
    assert [(k, text[s:e]) for k, s, e in call_spans(text)] == expected


def test_joint_stage_gets_seed_schedule():
    config = SFTStageConfig(stage="sft_joint")
    assert config.loss_weights(0.1) == (0.7, 0.3)
    assert config.loss_weights(0.5) == (0.5, 0.5)
    assert config.loss_weights(0.9) == (0.4, 0.6)
    assert SFTStageConfig(stage="sft_selection").loss_weights(0.1) == (0.5, 0.5)
    uniform = SFTStageConfig(stage="sft_joint", loss_weight_schedule=[])
    assert uniform.loss_weights(0.1) == (0.5, 0.5)
    assert config.learning_rate == 2e-4 and config.num_train_epochs == 3
    assert config.trainable == "full"


def test_grpo_batch_must_fit_groups():
    with pytest.raises(ValueError, match="divisible by num_generations"):
        GRPOStageConfig(per_device_train_batch_size=3, gradient_accumulation_steps=1,
                        num_generations=2)
    assert GRPOStageConfig().beta == 0.05
