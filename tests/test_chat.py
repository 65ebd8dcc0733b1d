"""Chat layout: prompt builder, template rendering, and the assistant mask TRL trains on."""

from __future__ import annotations

import jinja2
import pytest

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import CHAT_TEMPLATE, build_prompt, system_content
from toolmodal.model import load_tokenizer
from toolmodal.schema import Param, Tool
from toolmodal.tool_tokens import serialize_tools

TOOLS = [
    Tool(name="get_weather", description="Weather now",
         parameters=(Param(name="city", type="string", required=True),)),
    Tool(name="get_time", description="Local time",
         parameters=(Param(name="tz", type="string", required=True),)),
]
CALL = format_output([ToolCall("get_weather", {"city": "Oslo"})], reasoning="Weather first.")
CALL_2 = format_output([ToolCall("get_time", {"tz": "Europe/Oslo"})])
ANSWER = "It is 3 degrees at 10:00."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def chain() -> list[dict]:
    """A two-call chain with tool results, finished by a plain answer."""
    return build_prompt("Use the tools.", TOOLS, "Weather and time in Oslo?", history=[
        {"role": "assistant", "content": CALL},
        {"role": "tool", "content": '{"temp": 3}'},
        {"role": "assistant", "content": CALL_2},
        {"role": "tool", "content": '{"time": "10:00"}'},
    ]) + [{"role": "assistant", "content": ANSWER}]


def test_build_prompt_messages():
    messages = build_prompt("Be brief.", TOOLS, "Weather in Oslo?")
    assert messages == [
        {"role": "system", "content": "Be brief.\n\n" + serialize_tools(TOOLS)},
        {"role": "user", "content": "Weather in Oslo?"},
    ]
    assert build_prompt("", TOOLS, "q")[0]["content"] == serialize_tools(TOOLS)  # no blank lines
    assert system_content("Be brief.", []) == "Be brief."


def test_build_prompt_rejects_user_turns_in_history():
    with pytest.raises(ValueError, match="role 'user'"):
        build_prompt("s", TOOLS, "q", history=[{"role": "user", "content": "again"}])


def test_template_renders_gemma_turns(tokenizer):
    text = tokenizer.apply_chat_template(chain(), tokenize=False)
    assert text == (
        "<bos><start_of_turn>user\nUse the tools.\n\n" + serialize_tools(TOOLS)
        + "\n\nWeather and time in Oslo?<end_of_turn>\n"
        + "<start_of_turn>model\n" + CALL + "<end_of_turn>\n"
        + '<start_of_turn>tool\n<tool_response>{"temp": 3}</tool_response><end_of_turn>\n'
        + "<start_of_turn>model\n" + CALL_2 + "<end_of_turn>\n"
        + '<start_of_turn>tool\n<tool_response>{"time": "10:00"}</tool_response><end_of_turn>\n'
        + "<start_of_turn>model\n" + ANSWER + "<end_of_turn>\n"
    )


def test_generation_prompt_and_prompt_is_prefix(tokenizer):
    # TRL's prompt-completion path needs prompt(+generation prompt) to be a prefix of the whole.
    prompt = build_prompt("s", TOOLS, "Weather in Oslo?")
    rendered = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<end_of_turn>\n<start_of_turn>model\n")
    full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": CALL}],
                                         tokenize=False)
    assert full.startswith(rendered)
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(
        prompt + [{"role": "assistant", "content": CALL}])["input_ids"]
    assert full_ids[: len(ids)] == ids


def test_without_system_message(tokenizer):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "<bos><start_of_turn>user\nhi<end_of_turn>\n"


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        # A second system message has nowhere to go.
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only allowed"),
        # The system text is folded into a user turn, so one must follow.
        ([{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
         "followed by a user"),
    ],
)
def test_template_rejects_bad_layouts(tokenizer, messages, message):
    with pytest.raises(jinja2.exceptions.TemplateError, match=message):
        tokenizer.apply_chat_template(messages, tokenize=False)


def masked_spans(ids: list[int], mask: list[int]) -> list[list[int]]:
    """Contiguous runs of ids whose mask is 1."""
    spans: list[list[int]] = []
    for i, (token_id, keep) in enumerate(zip(ids, mask, strict=True)):
        if keep:
            if i == 0 or not mask[i - 1]:
                spans.append([])
            spans[-1].append(token_id)
    return spans


def test_assistant_mask_covers_exactly_the_assistant_turns(tokenizer):
    # What TRL's assistant_only_loss supervises: each assistant content plus its <end_of_turn>,
    # never the prompt, the schemas, the tool results or the role headers.
    out = tokenizer.apply_chat_template(chain(), return_dict=True,
                                        return_assistant_tokens_mask=True)
    spans = masked_spans(out["input_ids"], out["assistant_masks"])
    decoded = [tokenizer.decode(span) for span in spans]
    assert decoded == [CALL + "<end_of_turn>", CALL_2 + "<end_of_turn>", ANSWER + "<end_of_turn>"]
    n_supervised = sum(out["assistant_masks"])
    assert n_supervised == sum(len(span) for span in spans) < len(out["input_ids"]) / 2


def test_template_file_matches_constant(tiny_model_dir):
    # The fixture (and every prepared model) carries exactly this template.
    assert (tiny_model_dir / "chat_template.jinja").read_text() == CHAT_TEMPLATE


@pytest.mark.slow
def test_assistant_mask_on_the_real_tokenizer():
    from toolmodal.model import PREPARED_MODEL

    real = load_tokenizer(PREPARED_MODEL)
    out = real.apply_chat_template(chain(), return_dict=True, return_assistant_tokens_mask=True)
    decoded = [real.decode(span) for span in masked_spans(out["input_ids"], out["assistant_masks"])]
    assert decoded == [CALL + "<end_of_turn>", CALL_2 + "<end_of_turn>", ANSWER + "<end_of_turn>"]
    assert out["input_ids"][:3] == [2, 105, real.convert_tokens_to_ids("user")]
