"""Hard masking for transformers' generate(): grammar-constrained logits, three backends.

`HardMasker(tokenizer, vocab_size, stop_token_ids, backend, ...)` does the per-tokenizer setup
once (xgrammar's TokenizerInfo, llguidance's LLTokenizer, outlines' Vocabulary), compiles the
language of `toolmodal.masking.grammar` once per tool set (cache keyed by the tools' content
hashes), and `processor(tool_sets)` returns a fresh LogitsProcessor for one generate() call,
one tool set per batch row. Stopping is allowed only where the grammar may end, and only through
the stop tokens (the chat template's end of turn).

- xgrammar (default): `xgr.contrib.hf.LogitsProcessor` over the EBNF, no free whitespace.
- llguidance: LLMatcher over the Lark grammar with an inline JSON schema.
- outlines: outlines_core Guide over the regex; its Vocabulary is built here with "▁" read as a
  space and byte tokens as their byte, since outlines' own conversion drops leading spaces.
All three write the same packed int32 bitmask, applied with xgrammar's CPU kernel.

Deliberately left out: soft masking (`toolmodal.masking.soft`), generation itself (engines).
"""

from __future__ import annotations

from typing import Literal

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from toolmodal.masking import grammar
from toolmodal.schema import Tool

Backend = Literal["xgrammar", "outlines", "llguidance"]


class HardMasker:
    """Per-tokenizer setup and per-tool-set compiled grammars for one backend."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int,
                 stop_token_ids: list[int], backend: Backend = "xgrammar",
                 reasoning: grammar.Reasoning = "line", any_order: bool = False) -> None:
        """Build the backend's tokenizer view (seconds; done once per model).

        Args:
            tokenizer: The model's HF tokenizer.
            vocab_size: Rows of the model's output layer (may exceed len(tokenizer)).
            stop_token_ids: Tokens that end the turn; allowed only where the grammar may end.
            backend: "xgrammar", "llguidance" or "outlines".
            reasoning: What may precede the calls: "none", "line" or "free" (see `grammar`).
            any_order: Let arguments come in any order (xgrammar only).
        """
        self.backend = backend
        self.vocab_size = vocab_size
        self.reasoning = reasoning
        self.any_order = any_order
        self._cache: dict[str, object] = {}
        if backend == "xgrammar":
            import xgrammar as xgr

            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                      stop_token_ids=stop_token_ids)
            self._compiler = xgr.GrammarCompiler(info)
        elif backend == "llguidance":
            import llguidance.hf

            self._lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size,
                                                       eos_token=stop_token_ids)
        elif backend == "outlines":
            self._eos = stop_token_ids[0]  # outlines_core takes a single EOS
            self._vocabulary = outlines_vocabulary(tokenizer, self._eos)
        else:
            raise ValueError(f"unknown hard-masking backend {backend!r}")

    def compiled(self, tools: list[Tool]) -> object:
        """The backend's compiled grammar for this tool set (cached)."""
        key = grammar.tool_set_key(tools)
        if key not in self._cache:
            self._cache[key] = self._compile(tools)
        return self._cache[key]

    def _compile(self, tools: list[Tool]) -> object:
        if self.backend == "xgrammar":
            return self._compiler.compile_grammar(
                grammar.ebnf(tools, self.reasoning, self.any_order))
        if self.backend == "llguidance":
            import llguidance

            lark = grammar.lark(tools, self.reasoning)
            return llguidance.LLMatcher.grammar_from_lark(lark)
        from outlines_core import Index

        return Index(grammar.regex(tools, self.reasoning), self._vocabulary)

    def processor(self, tool_sets: list[list[Tool]]) -> LogitsProcessor:
        """A fresh logits processor for one generate() call; row i is masked by tool_sets[i]."""
        compiled = [self.compiled(tools) for tools in tool_sets]
        if self.backend == "xgrammar":
            import xgrammar as xgr

            return xgr.contrib.hf.LogitsProcessor(compiled)
        if self.backend == "llguidance":
            import llguidance

            rows = [_LLGuidanceRow(llguidance.LLMatcher(self._lltok, g)) for g in compiled]
        else:
            from outlines_core import Guide

            rows = [_OutlinesRow(Guide(index), self._eos) for index in compiled]
        return _RowsProcessor(rows, self.vocab_size)


class _LLGuidanceRow:
    def __init__(self, matcher) -> None:
        self.matcher = matcher

    def done(self) -> bool:
        return self.matcher.is_stopped()

    def accept(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"llguidance rejected token {token}: {self.matcher.get_error()}")

    def fill(self, bitmask: torch.Tensor, row: int) -> None:
        import llguidance.torch

        llguidance.torch.fill_next_token_bitmask(self.matcher, bitmask, row)


class _OutlinesRow:
    def __init__(self, guide, eos_token_id: int) -> None:
        self.guide = guide
        self.eos_token_id = eos_token_id
        self.stopped = False

    def done(self) -> bool:
        # Guide.is_finished() is already true wherever the regex may end, not only after EOS.
        return self.stopped

    def accept(self, token: int) -> None:
        self.stopped = token == self.eos_token_id
        if not self.stopped:
            self.guide.advance(token)

    def fill(self, bitmask: torch.Tensor, row: int) -> None:
        from outlines_core.kernels.torch import fill_next_token_bitmask

        bitmask[row].zero_()  # outlines only sets the allowed bits
        fill_next_token_bitmask(self.guide, bitmask[row:row + 1])


class _RowsProcessor(LogitsProcessor):
    """One matcher per batch row; same protocol as xgrammar's HF processor (single use)."""

    def __init__(self, rows: list, vocab_size: int) -> None:
        import xgrammar as xgr

        self.rows = rows
        self.started = False
        self.bitmask = xgr.allocate_token_bitmask(len(rows), vocab_size)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        import xgrammar as xgr

        if input_ids.shape[0] != len(self.rows):
            raise RuntimeError(f"batch of {input_ids.shape[0]} rows for {len(self.rows)} grammars")
        for i, row in enumerate(self.rows):
            if self.started and not row.done():
                row.accept(int(input_ids[i, -1]))
            if not row.done():
                row.fill(self.bitmask, i)
        self.started = True
        xgr.apply_token_bitmask_inplace(scores, self.bitmask)
        return scores


def outlines_vocabulary(tokenizer: PreTrainedTokenizerBase, eos_token_id: int):
    """outlines_core Vocabulary with SentencePiece spaces and byte tokens decoded correctly."""
    from outlines_core import Vocabulary

    special = set(tokenizer.all_special_ids)
    strings: dict[str, list[int]] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in special or token_id == eos_token_id:
            continue
        text = token.replace("\u2581", " ")
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            byte = int(token[3:5], 16)
            if byte >= 0x80:
                continue  # a lone UTF-8 continuation byte is not a str; outlines needs str
            text = chr(byte)
        strings.setdefault(text, []).append(token_id)
    return Vocabulary(eos_token_id, strings)
