"""Token-by-token generation on a loaded engine, for streaming and per-request grammars.

The engines' `generate` returns whole texts and builds its own grammar from the tools; the
server needs tokens as they come (streaming, time to first token), a grammar per request
(`tool_choice` "required" or a named function needs at least one call, see
`toolmodal.serve.translate.output_grammar`), sampling when a request sets a temperature, and a
way to stop early (client gone, `parallel_tool_calls: false`). So each backend wraps an engine
loaded by `toolmodal.engines.load_engine` and uses only its public attributes (the model,
tokenizer, stop ids, `prompt_tokens`, `token_table`):

- `LlamaCppBackend`: `Llama.generate` on the engine's Llama object (greedy grammars through
  `toolmodal.engines.lazy_grammar`, sampled ones through llama.cpp's grammar sampler). It
  re-evaluates only what differs from the previous call's tokens, so requests with the same
  tools skip the tool block; snapshots of recent tool blocks (`toolmodal.serve.kv_states`)
  extend that to tool sets that take turns.
- `TransformersBackend`: a greedy/sampling loop over the model's forward with a KV cache; hard
  masks through xgrammar (whatever `hard_backend` says), soft masks through `SoftMasker`.
- `VLLMBackend`: one `LLM.generate` call, whose tokens are then handed on at once.

Each has `context_length`, `prompt_ids(messages)`, `tokens(plan, prompt)` (generated ids, ends
before the end-of-turn token), `detokenize(ids)` and `stats()` (counters for /health). Tests
patch `tokens` to fixed ids.

Deliberately left out: queueing and threads (`toolmodal.serve.worker`), batching.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import Protocol

import torch

from toolmodal.masking.names import TAIL_TOKENS, continuation_ids, name_prefix
from toolmodal.serve.translate import Plan

GRAMMAR_CACHE = 64  # compiled grammars kept per backend (one per tool set and tool_choice)


class Backend(Protocol):
    """What the worker needs to run a Plan."""

    context_length: int

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The chat template with the generation prompt, tokenized."""
        ...

    def tokens(self, plan: Plan, prompt: list[int]) -> Iterator[int]:
        """Generated token ids, stopping before the end-of-turn token."""
        ...

    def detokenize(self, ids: list[int]) -> str:
        """Text of generated ids, special tokens dropped (call delimiters kept)."""
        ...

    def stats(self) -> dict:
        """Counters worth showing on /health."""
        ...


class _Lru(OrderedDict):
    def remember(self, key: str, build) -> object:
        if key not in self:
            self[key] = build()
            if len(self) > GRAMMAR_CACHE:
                self.popitem(last=False)
        self.move_to_end(key)
        return self[key]


class LlamaCppBackend:
    """Streaming generation with a `toolmodal.engines.llamacpp.LlamaCppEngine`."""

    def __init__(self, engine, tool_states: int = 8) -> None:
        """Wrap a loaded engine; keep `tool_states` tool-block snapshots (0: none)."""
        from toolmodal.serve.kv_states import ToolPrefixStates

        self.engine = engine
        self.llm = engine.llm
        self.llama_cpp = engine.llama_cpp
        self.context_length = self.llm.n_ctx()
        self._grammars = _Lru()
        self.states = ToolPrefixStates(self.llm, self.llama_cpp, tool_states) if tool_states \
            else None
        self.tool_blocks: Counter[str] = Counter()

    def stats(self) -> dict:
        """How often the tool block was already there, restored, or evaluated."""
        held = self.states.bytes_held() if self.states else 0
        return {"tool_blocks": dict(self.tool_blocks), "snapshot_mb": round(held / 2**20, 1)}

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The engine's own prompt rendering (the GGUF's chat template)."""
        return self.engine.prompt_tokens(messages)

    def tokens(self, plan: Plan, prompt: list[int]) -> Iterator[int]:
        """Tokens from `Llama.generate` (longest common prefix with the last call reused)."""
        kwargs: dict = {"temp": 0.0, "top_k": 1}
        if plan.temperature > 0:
            kwargs = {"temp": plan.temperature, "top_k": 0, "top_p": plan.top_p}
        processors = []
        if plan.call_decision and self.engine.config.call_threshold is not None:
            processors.append(self.engine.decision_processor(len(prompt)))
        if plan.grammar is not None and plan.temperature == 0:  # greedy: the choice first
            processors.append(self._lazy_grammar(plan.grammar).processor(len(prompt)))
        elif plan.grammar is not None:
            kwargs["grammar"] = self._grammar(plan.grammar)
        elif plan.mask == "soft" and plan.allowed:
            processors.append(self._soft([t.name for t in plan.allowed], len(prompt)))
        if processors:
            kwargs["logits_processor"] = self.llama_cpp.LogitsProcessorList(processors)
        if self.states is not None:
            self.tool_blocks[self.states.prepare(prompt)] += 1
        vocab = self.llm._model.vocab
        for token in self.llm.generate(prompt, repeat_penalty=1.0, **kwargs):
            if self.llama_cpp.llama_vocab_is_eog(vocab, token):
                return
            yield token

    def detokenize(self, ids: list[int]) -> str:
        """Bytes of the ids without control tokens; a split UTF-8 character ends in U+FFFD."""
        return self.llm.detokenize(ids, special=False).decode("utf-8", errors="replace")

    def _grammar(self, ebnf: str):
        """llama-cpp-python's grammar sampler (every token checked; sampling needs it)."""
        from toolmodal.engines.llamacpp import gbnf_from_ebnf

        return self._grammars.remember(ebnf, lambda: self.llama_cpp.LlamaGrammar.from_string(
            gbnf_from_ebnf(ebnf), verbose=False))

    def _lazy_grammar(self, ebnf: str):
        """The greedy path's grammar (`toolmodal.engines.lazy_grammar`), cached apart."""
        from toolmodal.engines.lazy_grammar import LazyGrammar
        from toolmodal.engines.llamacpp import gbnf_from_ebnf

        return self._grammars.remember(f"lazy:{ebnf}", lambda: LazyGrammar(
            self.llama_cpp, self.llm._model.vocab, gbnf_from_ebnf(ebnf), self.llm.n_vocab()))

    def _soft(self, names: list[str], prompt_length: int):
        """Logits processor adding the engine's soft bias to tokens continuing a name."""
        table, bias = self.engine.token_table(), self.engine.config.soft_bias

        def apply(input_ids, scores):
            start = max(prompt_length, len(input_ids) - TAIL_TOKENS)
            partial = name_prefix(self.detokenize(list(input_ids[start:])))
            if partial is not None:
                scores[continuation_ids(partial, names, table)] += bias
            return scores

        return apply


class TransformersBackend:
    """Streaming generation with a `toolmodal.engines.transformers_engine.TransformersEngine`."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.model = engine.model
        self.tokenizer = engine.tokenizer
        self.stop_ids = list(engine.stop_ids)
        self.context_length = int(self.model.config.max_position_embeddings)
        self._compiler = None
        self._grammars = _Lru()

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The tokenizer's chat template, as the engine renders it."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def detokenize(self, ids: list[int]) -> str:
        """Decoded text, special tokens skipped (the call delimiters are not special)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def stats(self) -> dict:
        """Nothing is cached across requests here."""
        return {}

    def tokens(self, plan: Plan, prompt: list[int]) -> Iterator[int]:
        """Decode one token at a time with the KV cache; the caller stops at the budget."""
        processors = self._processors(plan, len(prompt))
        ids = torch.tensor([prompt])
        step, cache = ids, None
        with torch.inference_mode():
            while True:
                out = self.model(input_ids=step, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                scores = out.logits[:, -1, :].float()
                for processor in processors:
                    scores = processor(ids, scores)
                token = _pick(scores[0], plan.temperature, plan.top_p)
                if token in self.stop_ids:
                    return
                yield token
                step = torch.tensor([[token]])
                ids = torch.cat([ids, step], dim=1)

    def _processors(self, plan: Plan, prompt_length: int) -> list:
        from toolmodal.engines.transformers_engine import FirstCallDecision

        first = ([FirstCallDecision(self.engine.withhold_call, prompt_length)]
                 if plan.call_decision and self.engine.config.call_threshold is not None else [])
        if plan.grammar is not None:
            import xgrammar as xgr

            compiled = self._grammars.remember(
                plan.grammar, lambda: self._xgrammar().compile_grammar(plan.grammar))
            return first + [xgr.contrib.hf.LogitsProcessor([compiled])]
        if plan.mask == "soft" and plan.allowed:
            return first + [self.engine.soft_masker.processor([list(plan.allowed)],
                                                              prompt_length)]
        return first

    def _xgrammar(self):
        """xgrammar's compiler for this tokenizer (seconds, built on first use)."""
        if self._compiler is None:
            import xgrammar as xgr

            info = xgr.TokenizerInfo.from_huggingface(
                self.tokenizer, vocab_size=self.model.config.vocab_size,
                stop_token_ids=self.stop_ids)
            self._compiler = xgr.GrammarCompiler(info)
        return self._compiler


def _pick(scores: torch.Tensor, temperature: float, top_p: float) -> int:
    """Greedy at temperature 0, else nucleus sampling."""
    if temperature <= 0:
        return int(scores.argmax())
    probs = torch.softmax(scores / temperature, dim=-1)
    sorted_probs, order = probs.sort(descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
    choice = torch.multinomial(sorted_probs * keep, 1)
    return int(order[choice])


class VLLMBackend:
    """One `vllm.LLM.generate` call per request on a `VLLMEngine` (not streamed token-wise)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.context_length = int(engine.llm.llm_engine.model_config.max_model_len)

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The tokenizer's chat template, tokenized."""
        return self.tokenizer.apply_chat_template(messages, tokenize=True,
                                                  add_generation_prompt=True, return_dict=False)

    def detokenize(self, ids: list[int]) -> str:
        """Decoded text, special tokens skipped."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def stats(self) -> dict:
        """vLLM keeps its own prefix cache."""
        return {}

    def tokens(self, plan: Plan, prompt: list[int]) -> Iterator[int]:
        """All tokens of one vLLM generation, after it finished."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = (StructuredOutputsParams(grammar=plan.grammar, disable_any_whitespace=True)
                      if plan.grammar is not None else None)
        extra = ({"tool_names": [t.name for t in plan.allowed],
                  "soft_bias": self.engine.config.soft_bias} if plan.mask == "soft" else {})
        threshold = self.engine.config.call_threshold
        if plan.call_decision and threshold is not None:
            extra["call_threshold"] = threshold
        params = SamplingParams(temperature=plan.temperature, top_p=plan.top_p,
                                max_tokens=plan.max_tokens, stop_token_ids=self.engine.stop_ids,
                                structured_outputs=structured, extra_args=extra or None,
                                skip_special_tokens=True)
        output = self.engine.llm.generate([{"prompt_token_ids": prompt}], params)[0].outputs[0]
        yield from (t for t in output.token_ids if t not in self.engine.stop_ids)


def backend_for(engine_name: str, engine, tool_states: int = 8) -> Backend:
    """The backend wrapping an engine loaded by `load_engine(engine_name, ...)`.

    Args:
        engine_name: "llamacpp", "transformers" or "vllm".
        engine: The loaded engine.
        tool_states: llama.cpp only: tool-block snapshots to keep (0: none).
    """
    if engine_name == "llamacpp":
        return LlamaCppBackend(engine, tool_states)
    if engine_name == "transformers":
        return TransformersBackend(engine)
    if engine_name == "vllm":
        return VLLMBackend(engine)
    raise ValueError(f"unknown engine {engine_name!r}; expected llamacpp, transformers or vllm")
