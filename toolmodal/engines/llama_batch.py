"""Greedy decoding of several requests at once on llama.cpp, one forward pass per step.

llama-cpp-python's `Llama.generate` decodes one sequence. On 2 cores a decode step of the
270M model reads all its weights for one token; the same step for 6-8 tokens of different
sequences costs 2.5-3x as long and gives 6-8 tokens (`bench/llamacpp_batch.py`). So requests
decode together here, through llama.cpp's batch API:

- requests run in waves of up to `slots`, in the caller's order (the engine sorts prompts, so
  rows sharing a tool block are neighbours); each request is a sequence of its own in one
  unified KV cache;
- a request's prompt takes the cache cells of the previous request for the prefix the two
  share (`llama_memory_seq_cp` tags the cells with both sequences, nothing is copied), so a
  tool block is evaluated once, also across waves: the last prompt of a wave stays in the
  cache (sequence `slots`) for the first request of the next;
- each step runs the caller's logits processors on every unfinished request's own logits (call
  decision, grammar, soft bias: per request, so per-request state such as a grammar's stays
  apart), takes the greedy token, and decodes the next token of all of them in one
  `llama_decode`; a request leaves at end-of-generation or at its token budget.

Outputs equal the one-sequence path's except where batched matrix kernels round differently
and the top two logits nearly tie (bench/llamacpp_batch.py counts identical outputs).

Deliberately left out: admitting a new request into a finished request's slot mid-wave (the
waves follow tool-block groups of 4-8 rows), sampling.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from toolmodal.engines import common_prefix_length

Processor = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (request index, its sequence in the wave) -> its logits processors, made when its wave starts
ProcessorsFor = Callable[[int, int], list[Processor]]


@dataclass(frozen=True)
class Decoded:
    """One request's generated tokens (end-of-generation excluded), whether it stopped there,
    and its latency from the start of its wave."""

    tokens: list[int]
    stopped: bool
    seconds: float


def new_cells(prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[int]:
    """Per prompt, the KV cells it adds to a wave after the previous prompt: its tokens beyond
    the prefix they share, plus its token budget."""
    return [len(p) - (common_prefix_length([p, prompts[i - 1]]) if i else 0) + max_new_tokens
            for i, p in enumerate(prompts)]


def waves(prompts: Sequence[Sequence[int]], slots: int, n_ctx: int,
          max_new_tokens: int) -> list[list[int]]:
    """Consecutive runs of prompt indices of at most `slots` whose cells fit `n_ctx`.

    Raises:
        ValueError: One prompt with its token budget does not fit the context.
    """
    out: list[list[int]] = []
    for i, prompt in enumerate(prompts):
        if len(prompt) + max_new_tokens > n_ctx:
            raise ValueError(f"prompt {i} ({len(prompt)} tokens) plus {max_new_tokens} new "
                             f"tokens does not fit the {n_ctx}-token context")
        wave = (out[-1] + [i]) if out else [i]
        fits = sum(new_cells([prompts[k] for k in wave], max_new_tokens)) <= n_ctx
        if out and len(wave) <= slots and fits:
            out[-1] = wave
        else:
            out.append([i])
    return out


class BatchDecoder:
    """A llama.cpp context with `slots` sequences over an already loaded `Llama`'s model."""

    def __init__(self, llama_cpp, llm, slots: int, n_ctx: int) -> None:
        """Create the context (the model's weights are shared with `llm`, not loaded again).

        Args:
            llama_cpp: The imported `llama_cpp` module.
            llm: The loaded `llama_cpp.Llama` (its threads, batch size and LoRA adapter apply).
            slots: Sequences decoded together.
            n_ctx: KV cells shared by a wave's sequences.
        """
        from llama_cpp import _internals

        self.llama_cpp, self.llm, self.slots = llama_cpp, llm, slots
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        # sequences 0..slots-1: a wave's requests; sequence `slots`: the last prompt kept
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx, slots + 1, True
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        if llm._lora_adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self.ctx.ctx, adapters, 1, scales):
                raise RuntimeError("llama.cpp could not apply the LoRA adapter to the batch "
                                   "context")
        self.n_ctx, self.n_batch, self.n_vocab = n_ctx, llm.n_batch, llm.n_vocab()
        self.batch = _internals.LlamaBatch(n_tokens=max(self.n_batch, slots), embd=0,
                                           n_seq_max=1, verbose=False)
        self.kept: list[int] = []  # the prompt held in sequence `slots`

    def run(self, prompts: Sequence[list[int]], processors_for: ProcessorsFor,
            max_new_tokens: int) -> list[Decoded]:
        """Greedy completions of `prompts`, same order (at least one token each).

        `processors_for(i, seq)` gives prompt i's logits processors when its wave starts;
        processors with state (a grammar) must keep one state per `seq`.
        """
        out: list[Decoded] = []
        try:
            for wave in waves(prompts, self.slots, self.n_ctx, max_new_tokens):
                out += self._wave([prompts[i] for i in wave],
                                  [processors_for(i, seq) for seq, i in enumerate(wave)],
                                  max_new_tokens)
        except BaseException:
            self.ctx.kv_cache_clear()  # a wave cut short: the kept prompt's cells are gone
            self.kept = []
            raise
        return out

    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, wants logits) items."""
        batch = self.batch.batch
        batch.n_tokens = len(items)
        for j, (token, pos, seq, logits) in enumerate(items):
            batch.token[j], batch.pos[j], batch.logits[j] = token, pos, logits
            batch.seq_id[j][0], batch.n_seq_id[j] = seq, 1
        self.ctx.decode(self.batch)

    def _logits(self, index: int) -> np.ndarray:
        """A copy of the logits of the last decode's `index`-th item (processors edit it)."""
        pointer = self.ctx.get_logits_ith(index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def _prompt(self, prompt: list[int], seq: int, source: int,
                previous: list[int]) -> np.ndarray:
        """Put `prompt` into sequence `seq`, sharing sequence `source`'s cells (which hold
        `previous`) for their common prefix, at least one token evaluated; return the logits
        after its last token."""
        shared = min(common_prefix_length([prompt, previous]), len(prompt) - 1)
        if shared:
            self.ctx.kv_cache_seq_cp(source, seq, 0, shared)
        for start in range(shared, len(prompt), self.n_batch):
            chunk = prompt[start:start + self.n_batch]
            self._decode([(t, start + k, seq, start + k == len(prompt) - 1)
                          for k, t in enumerate(chunk)])
        return self._logits(len(chunk) - 1)

    def _wave(self, prompts: Sequence[list[int]], processors: Sequence[list[Processor]],
              max_new_tokens: int) -> list[Decoded]:
        """Decode one wave's prompts together (sequence i holds prompt i)."""
        started = time.perf_counter()
        logits = {0: self._prompt(prompts[0], 0, self.slots, self.kept)}
        self.ctx.kv_cache_seq_rm(self.slots, -1, -1)
        for i in range(1, len(prompts)):
            logits[i] = self._prompt(prompts[i], i, i - 1, prompts[i - 1])
        new: list[list[int]] = [[] for _ in prompts]
        done: dict[int, Decoded] = {}
        while logits:
            step = []
            for i, scores in logits.items():
                token = self._choose(prompts[i] + new[i], scores, processors[i])
                stopped = self.llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token)
                if not stopped:
                    new[i].append(token)
                if stopped or len(new[i]) >= max_new_tokens:
                    done[i] = Decoded(new[i], bool(stopped), time.perf_counter() - started)
                else:
                    step.append((token, len(prompts[i]) + len(new[i]) - 1, i, True))
            if step:
                self._decode(step)
            logits = {seq: self._logits(j) for j, (_, _, seq, _) in enumerate(step)}
        self._keep(len(prompts) - 1, prompts[-1])
        return [done[i] for i in range(len(prompts))]

    def _keep(self, seq: int, prompt: list[int]) -> None:
        """Leave only `prompt` (sequence `seq`'s prompt cells) in the cache, as sequence
        `slots`, for the next wave."""
        self.ctx.kv_cache_seq_cp(seq, self.slots, 0, len(prompt))
        for other in range(self.slots):
            self.ctx.kv_cache_seq_rm(other, -1, -1)
        self.kept = list(prompt)

    @staticmethod
    def _choose(ids: list[int], scores: np.ndarray, processors: list[Processor]) -> int:
        """The greedy token after the processors (each sees the tokens so far)."""
        context = np.asarray(ids, dtype=np.intc)
        for processor in processors:
            scores = processor(context, scores)
        return int(np.argmax(scores))
