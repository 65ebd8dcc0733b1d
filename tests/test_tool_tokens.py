"""Tool token form: exact layout, lossless round trip, malformed input, tokenizer extension."""

from __future__ import annotations

import json
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from toolmodal.calls import CALL_END, CALL_START
from toolmodal.model import load_model, load_tokenizer
from toolmodal.schema import JSON_TYPES, Param, Tool
from toolmodal.tool_tokens import (
    DELIMITER_TOKENS,
    SCHEMA_TOKENS,
    TOOL_TOKENS,
    extend_tokenizer_and_model,
    parse_tools,
    serialize_tools,
)

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city",
    category="weather",
    parameters=(
        Param(name="city", type="string", required=True, description="City name"),
        Param(name="unit", type="string", enum=("celsius", "fahrenheit"), has_default=True,
              default="celsius"),
        Param(name="days", type="integer", minimum=1, maximum=7),
    ),
    returns=Param(type="object", properties=(Param(name="temp", type="number", required=True),)),
)


def test_layout_of_a_typical_tool():
    # The documented layout: one token per component, type tokens, JSON only for values.
    assert serialize_tools([WEATHER]) == (
        "<tool_start><func_name>get_weather<description>Current weather for a city"
        "<category>weather"
        "<param>city<type_string><required><description>City name"
        '<param>unit<type_enum>["celsius","fahrenheit"]<optional><default>"celsius"'
        "<param>days<type_integer><optional><minimum>1<maximum>7"
        "<return_type><type_object><param>temp<type_number><required><param_end>"
        "<tool_end>"
    )


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        # Nested object: properties are closed by <param_end>.
        (Param(name="o", type="object", properties=(Param(name="a", type="boolean"),)),
         "<param>o<type_object><optional><param>a<type_boolean><optional><param_end>"),
        # Array items carry no name and no required flag unless required.
        (Param(name="xs", type="array", items=Param(type="string", max_length=3)),
         "<param>xs<type_array><optional><items><type_string><max_length>3"),
        # Enum of a non-string type uses <enum>, not <type_enum>.
        (Param(name="n", type="integer", enum=(1, 2)),
         "<param>n<type_integer><optional><enum>[1,2]"),
        # A default of null is kept apart from "no default".
        (Param(name="z", type="null", has_default=True),
         "<param>z<type_null><optional><default>null"),
        # Tag-like text becomes a JSON literal with "<" escaped: it cannot forge a token.
        (Param(name="p", type="any", description="see <tool_end>"),
         '<param>p<type_any><optional><description>"see \\u003ctool_end>"'),
        # Comparisons with spaces stay raw text.
        (Param(name="q", type="number", description="a < b > c", minimum=0.5),
         "<param>q<type_number><optional><description>a < b > c<minimum>0.5"),
    ],
)
def test_parameter_layouts(param, expected):
    tool = Tool(name="t", parameters=(param,))
    text = serialize_tools([tool])
    assert text == f"<tool_start><func_name>t{expected}<tool_end>"
    assert parse_tools(text) == [tool]


def test_token_lists():
    assert CALL_START in TOOL_TOKENS and CALL_END in TOOL_TOKENS  # shared with toolmodal.calls
    assert len(set(TOOL_TOKENS)) == len(TOOL_TOKENS)
    assert {f"<type_{t}>" for t in JSON_TYPES} <= set(SCHEMA_TOKENS)
    assert TOOL_TOKENS == SCHEMA_TOKENS + DELIMITER_TOKENS


def test_empty_list_round_trips():
    assert serialize_tools([]) == ""
    assert parse_tools("") == []


@pytest.mark.parametrize(
    "text",
    [
        "get_weather",  # plain text, no tool block
        "<tool_start><func_name>x",  # unterminated tool
        "<tool_start><func_name>x<param>a<tool_end>",  # parameter without a type token
        "<tool_start><func_name>x<param>o<type_object><tool_end>",  # object not closed
        "<tool_start><func_name>x<param>e<type_enum>[oops<tool_end>",  # enum is not JSON
        "<tool_start><func_name>x<tool_end>trailing",  # text after the last tool
        "<tool_start><description>d<tool_end>",  # name missing
    ],
)
def test_malformed_token_form_raises(text):
    with pytest.raises(ValueError, match="tool token form"):
        parse_tools(text)


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (Param(name="s", type="string", properties=(Param(name="x", type="string"),)),
         "properties given for type 'string'"),
        (Param(name="d", type="string", default="x"), "without has_default"),
    ],
)
def test_inexpressible_params_raise(param, message):
    with pytest.raises(ValueError, match=message):
        serialize_tools([Tool(name="t", parameters=(param,))])


# --- property-based round trip ------------------------------------------------------------

TRICKY = ["<", ">", '"', "\\", "\n", "<tool_end>", "<param>", "<b>", "</tool_call>",
          "<end_of_turn>", "\u2581", "é", "\U0001f327", "\\u003c", '"<', " "]
texts = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY)), max_size=4).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
bounds = st.none() | st.floats(allow_nan=False)
lengths = st.none() | st.integers(min_value=0, max_value=10**6)


@st.composite
def params(draw, depth: int = 0, named: bool = True) -> Param:
    """A random parameter; objects get properties and arrays items, up to depth 3."""
    kind = draw(st.sampled_from(JSON_TYPES))
    has_default = draw(st.booleans())
    fields = dict(
        name=draw(texts) if named else "", type=kind, description=draw(texts),
        required=draw(st.booleans()), has_default=has_default,
        default=draw(json_values) if has_default else None,
        enum=draw(st.none() | st.lists(json_values, max_size=3).map(tuple)),
        minimum=draw(bounds), maximum=draw(bounds), min_length=draw(lengths),
        max_length=draw(lengths), pattern=draw(st.none() | texts),
    )
    if depth < 3 and kind == "array":
        fields["items"] = draw(st.none() | params(depth + 1, named=False))
    if depth < 3 and kind == "object":
        fields["properties"] = tuple(draw(st.lists(params(depth + 1), max_size=3)))
    return Param(**fields)


tools = st.builds(
    Tool, name=texts, description=texts, category=texts,
    parameters=st.lists(params(), max_size=4).map(tuple),
    returns=st.none() | params(named=False),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tools, max_size=3))
def test_round_trip_is_lossless(tool_list):
    assert parse_tools(serialize_tools(tool_list)) == tool_list


@settings(max_examples=100, deadline=None)
@given(st.lists(tools, max_size=3))
def test_text_never_forges_a_token(tool_list):
    # With the serializer's own tokens blanked out, nothing tag-like is left: no user text can
    # spell a tool token or a Gemma control token such as <end_of_turn>.
    text = serialize_tools(tool_list)
    for token in SCHEMA_TOKENS:
        text = text.replace(token, " ")
    assert not re.search(r"<[^<>\s]*>", text)


# --- tokenizer and model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_tiny(tiny_model_dir):
    """The tiny fixture with the tool tokens taken out of its tokenizer and embeddings."""
    tokenizer = load_tokenizer(tiny_model_dir)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in TOOL_TOKENS]
    bare_tokenizer = type(tokenizer)(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                     bos_token="<bos>", eos_token="<end_of_turn>",
                                     unk_token="<unk>", pad_token="<pad>")
    model = load_model(tiny_model_dir)
    model.resize_token_embeddings(len(bare_tokenizer))
    assert all(len(bare_tokenizer.encode(t, add_special_tokens=False)) > 1 for t in TOOL_TOKENS)
    return bare_tokenizer, model


def test_extend_adds_single_id_tokens_with_mean_init(bare_tiny):
    tokenizer, model = bare_tiny
    before = model.get_input_embeddings().weight.detach().clone()
    new_ids = extend_tokenizer_and_model(tokenizer, model)
    weight = model.get_input_embeddings().weight
    assert len(new_ids) == len(TOOL_TOKENS) and weight.shape[0] == len(tokenizer)
    assert model.get_output_embeddings().weight is weight  # still tied
    assert torch.equal(weight[: before.shape[0]], before)  # old rows untouched
    for token, token_id in zip(TOOL_TOKENS, new_ids, strict=True):
        assert tokenizer.encode(token, add_special_tokens=False) == [token_id], token
    # ToolGen init: <type_string> starts at the mean of the sub-tokens of "type string".
    type_string = tokenizer.convert_tokens_to_ids("<type_string>")
    sub_ids = tokenizer.encode("type string", add_special_tokens=False)
    assert torch.allclose(weight[type_string], before[sub_ids].mean(dim=0))
    # "</tool_call>" is named after "tool call end".
    call_end = tokenizer.convert_tokens_to_ids(CALL_END)
    sub_ids = tokenizer.encode("tool call end", add_special_tokens=False)
    assert torch.allclose(weight[call_end], before[sub_ids].mean(dim=0))
    # A second call is a no-op.
    assert extend_tokenizer_and_model(tokenizer, model) == []
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_fixture_encodes_serialized_tools_with_single_token_markers(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    ids = tokenizer.encode(serialize_tools([WEATHER]), add_special_tokens=False)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:2] == ["<tool_start>", "<func_name>"] and tokens[-1] == "<tool_end>"
    assert tokenizer.decode(ids) == serialize_tools([WEATHER])


def test_call_delimiters_survive_skip_special_tokens(tiny_model_dir):
    # The eval side may decode with skip_special_tokens=True; the calls must not vanish.
    tokenizer = load_tokenizer(tiny_model_dir)
    text = f'ok{CALL_START}{{"name": "f", "arguments": {{}}}}{CALL_END}'
    ids = tokenizer.encode(text + "<end_of_turn>", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
