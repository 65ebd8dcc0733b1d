"""The default engine: transformers generate() in fp32 on CPU, batched, greedy, with KV cache.

Requests are grouped by mask mode (a batch shares one logits-processor kind) and decoded in
batches of `config.batch_size` with left padding, so every row's next token sits at the last
position. Hard and soft maskers are built on first use (tokenizer setup takes seconds) and
reused: compiled grammars are cached per tool set inside `HardMasker`.

Deliberately left out: sampling, streaming, multi-device placement, and any way to change the
logits besides masking (tests patch the model's forward instead).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from toolmodal.engines import MASK_MODES, EngineConfig, Generation, Request
from toolmodal.masking.hard import HardMasker
from toolmodal.masking.soft import SoftMasker
from toolmodal.model import load_model, load_tokenizer


class TransformersEngine:
    """Batched greedy generation with an HF model folder."""

    def __init__(self, model: Path, config: EngineConfig) -> None:
        """Load tokenizer and model (fp32, eval mode).

        Args:
            model: HF model folder (prepared base model, a checkpoint or the tiny fixture).
            config: Shared engine settings.
        """
        self.config = config
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.padding_side = "left"
        self.model = load_model(model)
        eos = self.model.generation_config.eos_token_id
        self.stop_ids: list[int] = [eos] if isinstance(eos, int) else list(eos)
        self._hard: HardMasker | None = None
        self._soft: SoftMasker | None = None

    @property
    def hard_masker(self) -> HardMasker:
        """The hard masker for this model (built on first use)."""
        if self._hard is None:
            self._hard = HardMasker(
                self.tokenizer, self.model.config.vocab_size, self.stop_ids,
                self.config.hard_backend, self.config.hard_reasoning, self.config.any_order)
        return self._hard

    @property
    def soft_masker(self) -> SoftMasker:
        """The soft masker for this model (built on first use)."""
        if self._soft is None:
            self._soft = SoftMasker(self.tokenizer, self.config.soft_bias)
        return self._soft

    def generate(self, requests: list[Request]) -> list[Generation]:
        """Complete each request greedily; one Generation per request, in order."""
        results: list[Generation | None] = [None] * len(requests)
        size = self.config.batch_size
        for mode in MASK_MODES:
            indices = [i for i, r in enumerate(requests) if r.mask == mode]
            for start in range(0, len(indices), size):
                chunk = indices[start:start + size]
                for i, gen in zip(chunk, self._batch([requests[i] for i in chunk]), strict=True):
                    results[i] = gen
        return [r for r in results if r is not None]

    def processors(self, batch: list[Request], prompt_length: int) -> list[LogitsProcessor]:
        """Logits processors for one batch (all rows share the batch's mask mode)."""
        mode = batch[0].mask
        tool_sets = [list(r.tools) for r in batch]
        if mode == "hard":
            return [self.hard_masker.processor(tool_sets)]
        if mode == "soft":
            return [self.soft_masker.processor(tool_sets, prompt_length)]
        return []

    def _batch(self, batch: list[Request]) -> list[Generation]:
        prompts = [self.tokenizer.apply_chat_template(r.messages, tokenize=False,
                                                      add_generation_prompt=True)
                   for r in batch]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True,
                             add_special_tokens=False)
        prompt_length = enc["input_ids"].shape[1]
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **enc, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                logits_processor=LogitsProcessorList(self.processors(batch, prompt_length)),
                eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id)
        seconds = (time.perf_counter() - started) / len(batch)
        return [self._decode(row[prompt_length:].tolist(), seconds) for row in out]

    def _decode(self, ids: list[int], seconds: float) -> Generation:
        """Text up to the first stop token (special tokens dropped, call delimiters kept)."""
        stop = next((k for k, token in enumerate(ids) if token in self.stop_ids), None)
        kept = ids if stop is None else ids[:stop]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text=text, n_new_tokens=len(ids) if stop is None else stop + 1,
                          seconds=seconds)
