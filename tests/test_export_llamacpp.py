"""Quantized GGUF files and the llama.cpp engine on the tiny fixture.

Skipped only where llama-cpp-python (the `export` extra, built from source) is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from toolmodal.calls import CALL_START, check_call, parse_output
from toolmodal.chat import build_prompt
from toolmodal.engines import EngineConfig, Request, load_engine
from toolmodal.engines.lazy_grammar import LazyGrammar
from toolmodal.engines.llamacpp import gbnf_from_ebnf
from toolmodal.export import CORRECTION, ExportConfig, export_model, written_names
from toolmodal.export.gguf import check_gguf
from toolmodal.masking import grammar
from toolmodal.masking.decision import call_probability
from toolmodal.schema import Param, Tool
from toolmodal.tool_tokens import TOOL_TOKENS

pytest.importorskip("llama_cpp", reason="llama-cpp-python (the `export` extra) not installed")

BUNDLED_SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "tool_schemas"
WEATHER = Tool(name="get_weather", description="Current weather for a city", parameters=(
    Param(name="city", type="string", required=True),
    Param(name="unit", type="string", enum=("celsius", "fahrenheit"), required=False)))
TOOLS = [
    WEATHER,
    Tool(name="add", description="Add numbers", parameters=(
        Param(name="a", type="integer", required=True, minimum=0, maximum=100),
        Param(name="b", type="number", required=True),
        Param(name="exact", type="boolean", required=False))),
    Tool(name="tag_files", description="Tag files", parameters=(
        Param(name="paths", type="array", required=True, items=Param(name="", type="string")),
        Param(name="code", type="string", required=True, pattern="^[A-Z]{2}-[0-9]+$"),
        Param(name="meta", type="object", required=False))),
    Tool(name="ping", description="No parameters"),
]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("export-all")
    return export_model(tiny_model_dir, out, ExportConfig(tokenizer_pre="gemma4"))


@pytest.fixture(scope="module")
def engine(exported: dict[str, Path]):
    return load_engine("llamacpp", exported["gguf-q8_0"],
                       EngineConfig(max_new_tokens=48, hard_reasoning="none"))


def test_all_formats_written_and_checked(exported: dict[str, Path]) -> None:
    assert list(exported) == ["merged", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m", CORRECTION]
    # what the pipeline checks a deployed file against before it runs
    assert [p.name for p in exported.values()] == written_names(ExportConfig())
    sizes = {fmt: path.stat().st_size for fmt, path in exported.items()
             if fmt not in ("merged", CORRECTION)}
    assert sizes["gguf-q4_k_m"] < sizes["gguf-q8_0"] < sizes["gguf-f16"]
    for fmt in sizes:
        assert set(check_gguf(exported[fmt])) == set(TOOL_TOKENS)


def test_prompt_tokens_match_transformers(engine, tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = build_prompt("Call tools.", TOOLS, "What's the weather in Oslo, in celsius?")
    expected = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                             return_dict=False)
    assert engine.prompt_tokens(messages) == list(expected)


@pytest.mark.parametrize("tools", [[WEATHER], TOOLS, TOOLS[2:3], [TOOLS[3]]])
def test_hard_mode_output_is_always_valid(engine, tools: list[Tool]) -> None:
    messages = build_prompt("", tools, "do it")
    [gen] = engine.generate([Request(messages, tools, "hard")])
    if gen.n_new_tokens < engine.config.max_new_tokens:  # stopped where the grammar may end
        parsed = parse_output(gen.text)
        assert parsed.errors == [], gen.text
        for call in parsed.calls:
            assert check_call(call, tools) == [], gen.text


def test_none_and_soft_modes_generate(engine) -> None:
    messages = build_prompt("", [WEATHER], "weather?")
    gens = engine.generate([Request(messages, [WEATHER], "none"),
                            Request(messages, [WEATHER], "soft")])
    assert len(gens) == 2
    assert all(0 < g.n_new_tokens <= engine.config.max_new_tokens and g.seconds > 0
               for g in gens)


def test_soft_bias_lands_on_name_continuations(engine) -> None:
    prompt = engine.llm.tokenize(b"<start_of_turn>model\n", add_bos=False, special=True)
    partial = engine.llm.tokenize(f'{CALL_START}{{"name": "get_'.encode(), add_bos=False,
                                  special=True)
    bias = engine._soft_processor(["get_weather"], len(prompt))
    scores = bias(np.array(prompt + partial), np.zeros(engine.llm.n_vocab(), np.float32))
    boosted = {engine.llm.detokenize([int(i)]).decode() for i in np.flatnonzero(scores)}
    assert boosted and all('weather", "arguments": {'.startswith(t) for t in boosted)
    assert np.all(scores[scores != 0] == engine.config.soft_bias)
    outside = bias(np.array(prompt), np.zeros(engine.llm.n_vocab(), np.float32))
    assert not outside.any()  # no call opened: logits untouched


def _first_position_logits(engine, prompt: list[int]) -> np.ndarray:
    """The model's logits after `prompt`, evaluated from scratch (no cache, no processor)."""
    engine.llm.reset()
    engine.llm.eval(prompt)
    pointer = engine.llama_cpp.llama_get_logits_ith(engine.llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(pointer, (engine.llm.n_vocab(),)).copy()


def test_first_token_calls_are_the_first_position_probability_and_greedy_choice(
        engine, monkeypatch) -> None:
    requests = [Request(build_prompt("Call a tool.", tools, question), tools)
                for tools, question in [([WEATHER], "weather in Oslo?"), (TOOLS, "add 2 and 3"),
                                        ([WEATHER], "weather in Rome?")]]
    prompts = [engine.prompt_tokens(r.messages) for r in requests]
    logits = [_first_position_logits(engine, p) for p in prompts]
    # the random fixture never opens with a call: let its first greedy token of the second
    # request stand for the call token, so both answers of the flag are checked
    monkeypatch.setattr(engine, "call_id", lambda: int(logits[1].argmax()))
    probes = engine.first_token_calls(requests)
    for (p_call, greedy), row in zip(probes, logits, strict=True):
        assert p_call == pytest.approx(call_probability(row, int(logits[1].argmax())), rel=1e-4)
        assert greedy == (int(row.argmax()) == int(logits[1].argmax()))
    assert [g for _, g in probes][1]
    reversed_probes = engine.first_token_calls(requests[::-1])[::-1]
    assert [g for _, g in reversed_probes] == [g for _, g in probes]
    assert [p for p, _ in reversed_probes] == pytest.approx([p for p, _ in probes], rel=1e-4)


@pytest.mark.parametrize("tools", [[WEATHER], TOOLS])
@pytest.mark.parametrize("reasoning", ["none", "line", "free"])
def test_llama_cpp_parses_translated_grammar(engine, tools, reasoning) -> None:
    _parse(engine, gbnf_from_ebnf(grammar.ebnf(tools, reasoning)))


def _parse(engine, gbnf: str) -> None:
    """Build llama.cpp's sampler for `gbnf` (ValueError, with the grammar, if it is rejected)."""
    LazyGrammar(engine.llama_cpp, engine.llm._model.vocab, gbnf, engine.llm.n_vocab())


def test_every_bundled_tool_grammar_parses(engine) -> None:
    """Catalogue patterns use EBNF string escapes (`\\?`, `\\.`, `\\d`) JSON does not have."""
    from toolmodal.ingest import load_catalogue

    for tool in load_catalogue([BUNDLED_SCHEMAS]).tools:
        _parse(engine, gbnf_from_ebnf(grammar.ebnf([tool], "line")))


# Free strings let a random model write forever; these tools bound every value.
CODED = Tool(name="set_code", description="Set a code", parameters=(
    Param(name="code", type="string", required=True, pattern="^[A-Z]{2}-[0-9]{1,4}$"),
    Param(name="level", type="string", required=False, enum=("low", "high"))))


def _generate(engine, prompt: list[int], processors: list, limit: int, **kwargs) -> list[int]:
    """Greedy tokens until end of generation or `limit`, stopping banned until a call closes
    (a random model would stop at once where the grammar allows it)."""
    llama_cpp, vocab = engine.llama_cpp, engine.llm._model.vocab
    eog = [i for i in range(engine.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]

    def no_stop_before_a_call(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if b"</tool_call>" not in engine.llm.detokenize(list(input_ids[len(prompt):])):
            scores[eog] = -np.inf
        return scores

    chain = llama_cpp.LogitsProcessorList([no_stop_before_a_call, *processors])
    new: list[int] = []
    for token in engine.llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0,
                                     logits_processor=chain, **kwargs):
        if token in eog or len(new) == limit:
            break
        new.append(token)
    return new


@pytest.mark.parametrize("tools", [[WEATHER], TOOLS, TOOLS[1:2], [CODED], [CODED, TOOLS[3]]])
def test_grammar_forces_a_valid_call(engine, tools: list[Tool]) -> None:
    """Stopping is banned until a call is closed, so the grammar alone shapes the call."""
    prompt = engine.prompt_tokens(build_prompt("", tools, "do it"))
    new = _generate(engine, prompt, [engine._grammar(tools).processor(len(prompt))], 400)
    text = engine.llm.detokenize(new).decode()
    parsed = parse_output(text)
    assert parsed.errors == [] and parsed.calls, text
    assert all(check_call(call, tools) == [] for call in parsed.calls), text


@pytest.mark.parametrize("tools", [[WEATHER], TOOLS, [CODED, TOOLS[3]]])
@pytest.mark.parametrize("request_text", ["do it", "What's the weather in Oslo?"])
def test_lazy_grammar_picks_what_the_grammar_sampler_picks(engine, tools, request_text,
                                                           monkeypatch) -> None:
    """Tokens must match llama.cpp's grammar sampler over the whole vocabulary at every step.
    The random fixture's greedy choice is often refused, so the whole-vocabulary branch runs
    too (the trained model's outputs: `bench/lazy_grammar.py`)."""
    prompt = engine.prompt_tokens(build_prompt("", tools, request_text))
    sampler = engine.llama_cpp.LlamaGrammar.from_string(engine.gbnf(tools), verbose=False)
    lazy = engine._grammar(tools)
    masked = []
    full_mask = lazy.mask
    monkeypatch.setattr(lazy, "mask", lambda scores: masked.append(1) or full_mask(scores))
    reference = _generate(engine, prompt, [], 64, grammar=sampler)
    assert _generate(engine, prompt, [lazy.processor(len(prompt))], 64) == reference
    assert len(reference) > 4 and masked


@pytest.mark.slow
def test_real_model_q4_k_m(tmp_path: Path) -> None:
    """The prepared 270M model: Q4_K_M under 300 MB, tool tokens single, same prompt ids."""
    from toolmodal.model import PREPARED_MODEL

    if not PREPARED_MODEL.is_dir():
        pytest.skip(f"{PREPARED_MODEL} not prepared (toolmodal model prepare)")
    paths = export_model(PREPARED_MODEL, tmp_path, ExportConfig(formats=["gguf-q4_k_m"]))
    assert list(paths) == ["gguf-q4_k_m"]
    assert paths["gguf-q4_k_m"].stat().st_size < 300 * 2**20
    engine = load_engine("llamacpp", paths["gguf-q4_k_m"], EngineConfig(max_new_tokens=8))
    messages = build_prompt("Call tools.", TOOLS, "What's the weather in Oslo, in celsius?")
    expected = AutoTokenizer.from_pretrained(PREPARED_MODEL).apply_chat_template(
        messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert engine.prompt_tokens(messages) == list(expected)


def _batched_and_single(engine, requests: list[Request], batch_size: int):
    """The engine's generations with `batch_size` and with one request at a time."""
    config = engine.config
    try:
        engine.config = config.model_copy(update={"batch_size": batch_size})
        batched = engine.generate(requests)
        engine.config = config.model_copy(update={"batch_size": 1})
        return batched, engine.generate(requests)
    finally:
        engine.config = config


def test_batched_decoding_writes_what_one_request_at_a_time_writes(engine) -> None:
    """Requests decoded together (waves of 3, tool blocks shared, a grammar per sequence)
    give the one-request path's tokens, ends and counts on the random fixture."""
    questions = ["weather in Oslo?", "add 2 and 3", "tag the files", "ping", "do it"]
    requests = [Request(build_prompt("Call a tool.", tools, q), tools, mode)
                for tools in ([WEATHER], TOOLS) for q in questions
                for mode in ("none", "soft", "hard")]
    batched, single = _batched_and_single(engine, requests, batch_size=3)
    assert [g.text for g in batched] == [g.text for g in single]
    assert [(g.n_new_tokens, g.ended) for g in batched] == [(g.n_new_tokens, g.ended)
                                                             for g in single]
    assert all(g.seconds > 0 for g in batched)


def test_batched_hard_mode_keeps_a_grammar_state_per_sequence(engine) -> None:
    """Eight hard-masked requests on one tool set in one wave: every output is a valid
    answer of that tool set (a shared grammar state would break the JSON)."""
    requests = [Request(build_prompt("", TOOLS, f"request {i}"), TOOLS, "hard")
                for i in range(8)]
    config = engine.config
    engine.config = config.model_copy(update={"batch_size": 8})
    try:
        gens = engine.generate(requests)
    finally:
        engine.config = config
    for gen in gens:
        if gen.ended:
            parsed = parse_output(gen.text)
            assert parsed.errors == [], gen.text
            assert all(check_call(call, TOOLS) == [] for call in parsed.calls), gen.text
    assert any(gen.ended for gen in gens)


def test_batched_decoding_recovers_after_a_failed_wave(engine, monkeypatch) -> None:
    """A wave cut short by an error leaves no cells behind: the next call decodes as a fresh
    engine would (the kept prompt of the last finished wave is dropped too)."""
    requests = [Request(build_prompt("Call a tool.", TOOLS, f"add {i} and 3"), TOOLS)
                for i in range(4)]
    expected, _ = _batched_and_single(engine, requests, batch_size=2)
    steps: list[int] = []

    def boom(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        steps.append(1)
        if len(steps) == 5:  # the second wave's third step: the first wave's prompt was kept
            raise RuntimeError("processor failed")
        return scores

    original = engine._processors
    monkeypatch.setattr(engine, "_processors", lambda request, length, seq=0: [boom])
    config = engine.config
    engine.config = config.model_copy(update={"max_new_tokens": 2, "batch_size": 2})
    try:
        with pytest.raises(RuntimeError, match="processor failed"):
            engine.generate(requests)
    finally:
        engine.config = config
    monkeypatch.setattr(engine, "_processors", original)
    again, _ = _batched_and_single(engine, requests, batch_size=2)
    assert [g.text for g in again] == [g.text for g in expected]
