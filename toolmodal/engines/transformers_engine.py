"""The default engine: transformers in fp32 on CPU, batched, greedy, with shared-prefix KV reuse.

Requests are tokenized, grouped by mask mode and sorted by their token ids, so prompts that
share a prefix (the same system prompt and tools: the tool block is most of a prompt) sit next
to each other; then they are decoded in batches of `config.batch_size`.

Unmasked batches take the prefix path (`config.prefix_cache`): requests with the same system
message (system prompt + tools) share their longest common token prefix, whose KV cache is
computed once and kept (a few recent prefixes, keyed by their token ids); each row prefills only
its own suffix on a copy of it. The rows' caches are then stacked, left-padded, into one batch
cache (padding on the left keeps each row's tokens contiguous, so sliding-window layers see
what they would see unpadded). Greedy decoding stops per row: a row that reached end-of-turn
(or its budget) leaves the batch and the cache, so the batch shrinks instead of decoding
padding.
Masked batches (soft, hard) start from the same prefilled cache but decode with transformers'
`generate` and the maskers' logits processors (which hold per-row state by batch index, so rows
cannot leave mid-batch). With `prefix_cache=False` the engine takes the former path (plain
`generate` over left-padded prompts in request order), kept for the throughput bench.

Deliberately left out: sampling, streaming, multi-device placement, and any way to change the
logits besides masking and the call decision (tests patch the model's forward instead).
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from pathlib import Path

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList

from toolmodal.calls import CALL_START
from toolmodal.engines import (
    MASK_MODES,
    EngineConfig,
    Generation,
    Request,
    common_prefix_length,
)
from toolmodal.masking.decision import call_probability, withholds_call
from toolmodal.masking.hard import HardMasker
from toolmodal.masking.soft import SoftMasker
from toolmodal.model import load_model, load_tokenizer

PREFIX_CACHE_SIZE = 8  # prefixes kept (~25 MB each for the 270M model at 700 tokens)


def shared_prefix_lengths(requests: list[Request], ids: list[list[int]]) -> list[int]:
    """Per request, how many leading prompt tokens it shares with others (at most all but one).

    Requests with the same system message (system prompt and tool block) share their group's
    longest common token prefix; every request shares at least the prefix common to all
    (the chat template's opening and the system prompt text before the tools).
    """
    if not ids:
        return []
    everyone = common_prefix_length(ids)
    groups: dict[str, list[int]] = {}
    for i, request in enumerate(requests):
        if request.messages and request.messages[0]["role"] == "system":
            groups.setdefault(request.messages[0]["content"], []).append(i)
    shared = [everyone] * len(ids)
    for members in groups.values():
        if len(members) > 1:
            length = common_prefix_length([ids[i] for i in members])
            for i in members:
                shared[i] = length
    return [min(n, len(row) - 1) for n, row in zip(shared, ids, strict=True)]


def stack_caches(caches: list[DynamicCache], lengths: list[int]) -> tuple[DynamicCache,
                                                                         torch.Tensor]:
    """One batch cache from single-row caches of different lengths, left-padded.

    Padding on the left keeps each row's tokens contiguous at the end, so a sliding-window
    layer (which keeps the last `window - 1` entries and reads its mask columns from the end)
    sees exactly the row's own recent tokens, as without padding.

    Args:
        caches: Batch-1 caches of the same model (full and sliding-window layers).
        lengths: Tokens seen by each cache.

    Returns:
        The cache and its attention mask ([batch, max length], 0 on padding).
    """
    width = max(lengths)
    merged = copy.copy(caches[0])
    merged.layers = [copy.copy(layer) for layer in caches[0].layers]
    for index, layer in enumerate(merged.layers):
        for name in ("keys", "values"):
            parts = [getattr(c.layers[index], name) for c in caches]
            size = max(t.shape[-2] for t in parts)
            setattr(layer, name, torch.cat([torch.nn.functional.pad(
                t, (0, 0, size - t.shape[-2], 0)) for t in parts]))
        if layer.is_sliding:
            layer.cumulative_length = width
    mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths])
    return merged, mask


class FirstCallDecision(LogitsProcessor):
    """Applies `decide` (the engine's `withhold_call`) at the first generated position."""

    def __init__(self, decide, prompt_length: int) -> None:
        self.decide = decide
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        return self.decide(scores) if input_ids.shape[1] == self.prompt_length else scores


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
        self._prefixes: OrderedDict[tuple[int, ...], DynamicCache] = OrderedDict()

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

    def prompt_ids(self, request: Request) -> list[int]:
        """Token ids of the chat-templated prompt with the generation prompt."""
        text = self.tokenizer.apply_chat_template(request.messages, tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, requests: list[Request]) -> list[Generation]:
        """Complete each request greedily; one Generation per request, in order."""
        ids = [self.prompt_ids(r) for r in requests]
        shared = shared_prefix_lengths(requests, ids)
        results: dict[int, Generation] = {}
        size = self.config.batch_size
        for mode in MASK_MODES:
            indices = [i for i, r in enumerate(requests) if r.mask == mode]
            if self.config.prefix_cache and indices:
                indices.sort(key=lambda i: ids[i])
                common = min(shared[i] for i in indices)  # group prefixes extend this one
                self.prefix_cache(tuple(ids[indices[0]][:common]))
            for start in range(0, len(indices), size):
                chunk = indices[start:start + size]
                rows, lengths = [ids[i] for i in chunk], [shared[i] for i in chunk]
                if mode == "none" and self.config.prefix_cache:
                    generations = self._prefix_batch(rows, lengths)
                else:
                    generations = self._batch([requests[i] for i in chunk], rows,
                                              lengths if self.config.prefix_cache else None)
                results.update(zip(chunk, generations, strict=True))
        return [results[i] for i in range(len(requests))]

    def first_token_calls(self, requests: list[Request]) -> list[tuple[float, bool]]:
        """Per request, unmasked and without the call decision: the call-start token's
        probability at the first generated position and whether it is the greedy choice
        there (`toolmodal.call_calibration` chooses `call_threshold` from these); one forward
        pass per prompt."""
        call_id = self.tokenizer.convert_tokens_to_ids(CALL_START)
        found = []
        with torch.inference_mode():
            for request in requests:
                ids = torch.tensor([self.prompt_ids(request)], device=self.model.device)
                logits = self.model(input_ids=ids).logits[0, -1].float().cpu().numpy()
                found.append((float(call_probability(logits, call_id)),
                              int(logits.argmax()) == call_id))
        return found

    def processors(self, batch: list[Request], prompt_length: int) -> list[LogitsProcessor]:
        """Logits processors for one batch (all rows share the batch's mask mode); the call
        decision, when set, comes first so it reads the model's own distribution."""
        mode = batch[0].mask
        tool_sets = [list(r.tools) for r in batch]
        first = ([] if self.config.call_threshold is None
                 else [FirstCallDecision(self.withhold_call, prompt_length)])
        if mode == "hard":
            return first + [self.hard_masker.processor(tool_sets)]
        if mode == "soft":
            return first + [self.soft_masker.processor(tool_sets, prompt_length)]
        return first

    def withhold_call(self, scores: torch.Tensor) -> torch.Tensor:
        """First-position logits with the call-start token removed where the call decision
        (`toolmodal.masking.decision`, `config.call_threshold`) withholds it."""
        call_id = self.tokenizer.convert_tokens_to_ids(CALL_START)
        rows = withholds_call(scores.float().cpu().numpy(), call_id, self.config.call_threshold)
        scores[torch.from_numpy(rows).to(scores.device), call_id] = float("-inf")
        return scores

    def _batch(self, batch: list[Request], ids: list[list[int]],
               shared: list[int] | None) -> list[Generation]:
        """transformers' generate over a left-padded batch (masked modes, and the former path
        when `shared` is None); with `shared`, from the rows' prefilled prompts."""
        enc = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        prompt_length = enc["input_ids"].shape[1]
        started = time.perf_counter()
        with torch.inference_mode():
            cache = None if shared is None else self._prefill(ids, shared)[0]
            out = self.model.generate(
                **enc, past_key_values=cache, max_new_tokens=self.config.max_new_tokens,
                do_sample=False, eos_token_id=self.stop_ids,
                logits_processor=LogitsProcessorList(self.processors(batch, prompt_length)),
                pad_token_id=self.tokenizer.pad_token_id)
        seconds = time.perf_counter() - started
        return [self._decode(row[prompt_length:].tolist(), seconds) for row in out]

    def _decode(self, ids: list[int], seconds: float) -> Generation:
        """Text up to the first stop token (special tokens dropped, call delimiters kept)."""
        stop = next((k for k, token in enumerate(ids) if token in self.stop_ids), None)
        kept = ids if stop is None else ids[:stop]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text=text, n_new_tokens=len(ids) if stop is None else stop + 1,
                          seconds=seconds, ended=stop is not None)

    def prefix_cache(self, prefix: tuple[int, ...]) -> DynamicCache:
        """KV cache of `prefix` (batch 1), computed once (from the longest kept prefix of it)
        and kept for the next batches."""
        if prefix not in self._prefixes:
            known = max((k for k in self._prefixes if prefix[:len(k)] == k), key=len,
                        default=())  # e.g. the system prompt text every request shares
            cache = (copy.deepcopy(self._prefixes[known]) if known
                     else DynamicCache(config=self.model.config))
            if len(prefix) > len(known):
                with torch.inference_mode():
                    self.model(input_ids=torch.tensor([prefix[len(known):]]),
                               past_key_values=cache, use_cache=True, logits_to_keep=1)
            self._prefixes[prefix] = cache
            if len(self._prefixes) > PREFIX_CACHE_SIZE:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(prefix)
        return self._prefixes[prefix]

    def _prefill(self, ids: list[list[int]], shared: list[int]) -> tuple[DynamicCache,
                                                                          torch.Tensor]:
        """The batch cache of every row's prompt but its last token, left-padded, and its
        mask: each row prefills only its own suffix on a copy of its shared prefix's cache."""
        caches = []
        for row, length in zip(ids, shared, strict=True):
            cache = copy.deepcopy(self.prefix_cache(tuple(row[:length])))
            if len(row) - 1 > length:
                self.model(input_ids=torch.tensor([row[length:-1]]), past_key_values=cache,
                           use_cache=True, logits_to_keep=1)
            caches.append(cache)
        return stack_caches(caches, [len(row) - 1 for row in ids])

    def _prefix_batch(self, ids: list[list[int]], shared: list[int]) -> list[Generation]:
        """Greedy decoding of one batch from its rows' shared prefixes, rows stopping alone.

        Args:
            ids: Prompt token ids of each row.
            shared: Length of each row's shared prefix (`shared_prefix_lengths`).
        """
        started = time.perf_counter()
        with torch.inference_mode():
            cache, mask = self._prefill(ids, shared)
            mask = torch.cat([mask, torch.ones(len(ids), 1, dtype=mask.dtype)], dim=1)
            position = torch.tensor([[len(row) - 1] for row in ids])
            logits = self.model(input_ids=torch.tensor([[row[-1]] for row in ids]),
                                attention_mask=mask, position_ids=position,
                                past_key_values=cache, use_cache=True).logits[:, -1]
            if self.config.call_threshold is not None:
                logits = self.withhold_call(logits)
            return self._decode_loop(logits, cache, mask, position, started)

    def _decode_loop(self, logits: torch.Tensor, cache: DynamicCache, mask: torch.Tensor,
                     position: torch.Tensor, started: float) -> list[Generation]:
        """Greedy steps until every row stopped; finished rows leave the batch and cache.

        Args:
            logits: Next-token logits of each row, [batch, vocab].
            cache: The batch's left-padded cache (`stack_caches`).
            mask: Its attention mask, [batch, cache length].
            position: Position of each row's last token, [batch, 1].
            started: `time.perf_counter()` at the batch's start (latencies count from it).
        """
        alive = list(range(logits.shape[0]))
        new: list[list[int]] = [[] for _ in alive]
        seconds = [0.0] * len(alive)
        token = logits.argmax(-1)
        while True:
            keep = []
            for j, (row, t) in enumerate(zip(alive, token.tolist(), strict=True)):
                new[row].append(t)
                if t in self.stop_ids or len(new[row]) >= self.config.max_new_tokens:
                    seconds[row] = time.perf_counter() - started
                else:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep)
                cache.batch_select_indices(index)
                alive, token = [alive[j] for j in keep], token[index]
                mask, position = mask[index], position[index]
            mask = torch.cat([mask, torch.ones(len(alive), 1, dtype=mask.dtype)], dim=1)
            position = position + 1
            token = self.model(input_ids=token[:, None], attention_mask=mask,
                               position_ids=position, past_key_values=cache,
                               use_cache=True).logits[:, -1].argmax(-1)
        return [self._decode(ids, s) for ids, s in zip(new, seconds, strict=True)]
