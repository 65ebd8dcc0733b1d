"""Masking on the tiny fixture: the grammar admits the format and forbids what it must.

The key tests patch the model's forward so the logits strongly favour a forbidden output (an
unoffered tool name, an enum value not declared), show that unmasked generation then emits it,
and that hard-masked generation never does, with every backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from toolmodal.calls import check_call, parse_output
from toolmodal.chat import build_prompt
from toolmodal.engines import EngineConfig, Request
from toolmodal.engines.transformers_engine import TransformersEngine
from toolmodal.masking import grammar
from toolmodal.masking.grammar import tool_set_key
from toolmodal.masking.hard import HardMasker
from toolmodal.masking.names import continuation_ids
from toolmodal.schema import Param, Tool

WEATHER = Tool(name="get_weather", parameters=(
    Param(name="city", type="string", required=True),
    Param(name="unit", type="string", enum=("celsius", "fahrenheit")),
))
ADD = Tool(name="add", parameters=(
    Param(name="a", type="integer", required=True),
    Param(name="b", type="number"),
))
TOOLS = [WEATHER, ADD]
BACKENDS = ["xgrammar", "llguidance", "outlines"]

UNOFFERED = '<tool_call>{"name": "delete_all", "arguments": {}}</tool_call>'
BAD_ENUM = ('<tool_call>{"name": "get_weather", "arguments": '
            '{"city": "Oslo", "unit": "kelvin"}}</tool_call>')

FREE_SPACE = '<tool_call>{"name":"add", "arguments": {"a": 1}}</tool_call>'

# (text, accepted by the hard grammar with reasoning="line"), one comment per case.
GRAMMAR_CASES = [
    ('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>', True),  # minimal call
    ('Sum.<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2.5}}</tool_call>'
     '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}'
     '</tool_call>', True),  # reasoning then two calls
    ("No tool fits this request.", True),  # "no call" stays reachable
    ("", True),  # stopping at once is "no call" too
    ("first line\nsecond line", False),  # reasoning is one line
    (UNOFFERED, False),  # unoffered tool name
    (BAD_ENUM, False),  # enum value not declared
    ('<tool_call>{"name": "add", "arguments": {"b": 1}}</tool_call>', False),  # required a missing
    ('<tool_call>{"name": "add", "arguments": {"a": 1.5}}</tool_call>', False),  # float for int
    ('<tool_call>{"name": "add", "arguments": {"a": 1, "c": 2}}</tool_call>', False),  # extra
    (FREE_SPACE, False),  # free whitespace (outlines: at most one space, see below)
    ('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call> trailing', False),  # tail
]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine(tiny_model_dir, EngineConfig(max_new_tokens=40, batch_size=2))


@pytest.fixture(scope="module", params=BACKENDS)
def masker(request, engine: TransformersEngine) -> HardMasker:
    return HardMasker(engine.tokenizer, engine.model.config.vocab_size, engine.stop_ids,
                      request.param)


def _walk(masker: HardMasker, ids: list[int]) -> bool:
    """Feed `ids` through a fresh processor; False as soon as one of them is masked out."""
    processor = masker.processor([TOOLS])
    prefix = torch.tensor([[2]])
    for token in ids:
        scores = processor(prefix, torch.zeros(1, masker.vocab_size))
        if scores[0, token] == float("-inf"):
            return False
        prefix = torch.cat([prefix, torch.tensor([[token]])], dim=1)
    return True


@pytest.mark.parametrize(("text", "accepted"), GRAMMAR_CASES)
def test_grammar_accepts_exactly_the_format(masker, engine, text, accepted):
    ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"] + engine.stop_ids[:1]
    if masker.backend == "outlines" and accepted and text:
        # outlines' index misses some tokens that straddle a regex boundary (e.g. ".<"), so
        # a forced tokenization may be refused; it is still never too permissive.
        pytest.skip("outlines only checked on rejections")
    if masker.backend == "outlines" and text == FREE_SPACE:
        pytest.skip("outlines' regex allows an optional space at every separator")
    assert _walk(masker, ids) is accepted


def _favour(engine: TransformersEngine, monkeypatch, text: str) -> None:
    """Patch forward so step k's logits put +1e4 on token k of `text` (then end of turn)."""
    target = engine.tokenizer(text, add_special_tokens=False)["input_ids"] + engine.stop_ids[:1]
    forward = engine.model.forward
    step = {"k": 0}

    def patched(*args, **kwargs):
        out = forward(*args, **kwargs)
        k = min(step["k"], len(target) - 1)
        out.logits[:, -1, target[k]] += 1e4
        step["k"] += 1
        return out

    monkeypatch.setattr(engine.model, "forward", patched)


def _generate(engine: TransformersEngine, monkeypatch, favoured: str, mode: str,
              backend: str = "xgrammar") -> str:
    """Generate with forward patched towards `favoured`; all patches undone afterwards."""
    monkeypatch.setattr(engine, "_hard", None)
    # prefix_cache off: a tool block cached by an earlier (unpatched) call would skip the
    # patched forward for the prompt's last position
    monkeypatch.setattr(engine, "config", engine.config.model_copy(
        update={"hard_backend": backend, "prefix_cache": False}))
    _favour(engine, monkeypatch, favoured)
    messages = build_prompt("Call a tool.", TOOLS, "What is the weather in Oslo?")
    text = engine.generate([Request(messages, TOOLS, mode)])[0].text
    monkeypatch.undo()
    return text


@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_mask_forbids_unoffered_tool(engine, monkeypatch, backend):
    unmasked = _generate(engine, monkeypatch, UNOFFERED, "none")
    assert parse_output(unmasked).calls[0].name == "delete_all"  # the patch works
    text = _generate(engine, monkeypatch, UNOFFERED, "hard", backend)
    assert "delete_all" not in text
    assert all(c.name in ("get_weather", "add") for c in parse_output(text).calls)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_mask_forbids_wrong_enum(engine, monkeypatch, backend):
    unmasked = _generate(engine, monkeypatch, BAD_ENUM, "none")
    call = parse_output(unmasked).calls[0]
    assert any(p.startswith("bad_enum") for p in check_call(call, TOOLS))  # the patch works
    text = _generate(engine, monkeypatch, BAD_ENUM, "hard", backend)
    assert "kelvin" not in text
    assert all(not check_call(c, TOOLS) for c in parse_output(text).calls)


def test_soft_mask_biases_towards_offered_names(engine):
    prefix = '<tool_call>{"name": "'
    ids = engine.tokenizer(prefix, add_special_tokens=False)["input_ids"]
    prompt = torch.tensor([[2, 3]])
    processor = engine.soft_masker.processor([TOOLS], prompt_length=prompt.shape[1])
    vocab = engine.model.config.vocab_size
    scores = processor(torch.cat([prompt, torch.tensor([ids])], 1), torch.zeros(1, vocab))
    favoured = {engine.tokenizer.decode([i]) for i in torch.nonzero(scores[0]).flatten()}
    assert favoured and all(
        ("get_weather" + '", ').startswith(t) or ("add" + '", ').startswith(t) for t in favoured)
    outside = processor(prompt, torch.zeros(1, vocab))
    assert not outside.any()  # no bias outside a name position


def test_continuation_ids_follow_partial_name():
    table = {"get": [1], "_weather": [2], "add": [3], '"': [4], "x": [5]}
    assert continuation_ids("", ["get_weather", "add"], table) == [1, 3]
    assert continuation_ids("get", ["get_weather", "add"], table) == [2]
    assert continuation_ids("get_weather", ["get_weather"], table) == [4]


def test_grammar_cache_is_per_tool_set(engine):
    masker = HardMasker(engine.tokenizer, engine.model.config.vocab_size, engine.stop_ids)
    assert masker.compiled(TOOLS) is masker.compiled(list(reversed(TOOLS)))
    assert masker.compiled(TOOLS) is not masker.compiled([ADD])
    assert tool_set_key(TOOLS) != tool_set_key([ADD])


def test_call_schema_declares_names_params_and_enums():
    schema = grammar.call_schema(TOOLS)
    weather = schema["anyOf"][0]["properties"]
    assert weather["name"] == {"const": "get_weather"}
    assert weather["arguments"]["required"] == ["city"]
    assert weather["arguments"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert weather["arguments"]["additionalProperties"] is False
    json.dumps(schema)  # plain JSON, usable by any backend


def test_no_tools_allows_only_reasoning():
    assert "calls" not in grammar.ebnf([], "line")
    assert "call" not in grammar.lark([], "none") and grammar.regex([], "none") == ""


@pytest.mark.slow
def test_real_model_hard_mode_only_emits_valid_calls():
    # The prepared 270M base model, untrained: whatever it writes under hard masking parses
    # and passes check_call against the offered tools.
    model = Path(__file__).resolve().parent.parent / ".cache/models/gemma3-270m-toolmodal"
    if not model.is_dir():
        pytest.skip(f"prepared model not found at {model}")
    engine = TransformersEngine(model, EngineConfig(max_new_tokens=48))
    messages = build_prompt("Call a tool.", TOOLS, "Add 2 and 3, then the weather in Oslo.")
    text = engine.generate([Request(messages, TOOLS, "hard")])[0].text
    parsed = parse_output(text)
    assert parsed.ok or "unterminated_call" in parsed.errors[0]  # may hit the token budget
    assert all(not check_call(c, TOOLS) for c in parsed.calls)


def test_max_length_is_left_to_the_scorer():
    # maxLength made xgrammar's compile blow up (~58 s for 20 catalogue tools on the 270M
    # vocabulary), so the mask leaves it out; check_call still reports an over-long value.
    note = Tool(name="note", parameters=(
        Param(name="text", type="string", required=True, min_length=1, max_length=500),))
    schema = grammar.tool_call_schema(note)["properties"]["arguments"]["properties"]["text"]
    assert schema == {"type": "string", "minLength": 1}
    assert check_call(parse_output('<tool_call>{"name": "note", "arguments": {"text": "'
                                   + "x" * 501 + '"}}</tool_call>').calls[0], [note])


def test_catalogue_tool_set_compiles(engine):
    # The first 20 bundled tools (patterns, enums, nesting) compile with xgrammar.
    from toolmodal.ingest import load_catalogue

    tools = list(load_catalogue([Path(__file__).resolve().parent.parent / "data"
                                 / "tool_schemas"]).tools[:20])
    masker = HardMasker(engine.tokenizer, engine.model.config.vocab_size, engine.stop_ids)
    assert masker.compiled(tools) is not None
