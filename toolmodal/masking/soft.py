"""Soft masking: a logit bias towards the offered tool names while the model writes a call name.

At each step the processor decodes the tail of each row's generated text; when it ends inside
`<tool_call>{"name": "<partial>` it adds `strength` to every token whose text continues
`<partial>` towards an offered name (the closing quote and the start of the arguments included,
so tokens spanning the end of the name count too). Elsewhere the logits are untouched: the
model may still write an unoffered name or no call, it is only nudged.

Deliberately left out: any constraint on arguments or format (that is hard masking).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from toolmodal.masking.names import TAIL_TOKENS, continuation_ids, name_prefix
from toolmodal.schema import Tool


def token_strings(tokenizer: PreTrainedTokenizerBase) -> dict[str, list[int]]:
    """Text of every ordinary token ("▁" read as a space) -> ids; built once per tokenizer."""
    table: dict[str, list[int]] = {}
    special = set(tokenizer.all_special_ids)
    for token, token_id in tokenizer.get_vocab().items():
        if token_id not in special and not token.startswith("<0x"):
            table.setdefault(token.replace("\u2581", " "), []).append(token_id)
    return table


class SoftMasker:
    """Per-tokenizer token table; `processor` makes a bias processor for one generate() call."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, strength: float) -> None:
        self.tokenizer = tokenizer
        self.strength = strength
        self.table = token_strings(tokenizer)

    def processor(self, tool_sets: list[list[Tool]], prompt_length: int) -> LogitsProcessor:
        """Bias processor; row i favours the names in tool_sets[i]."""
        return ToolNameBias(self, [[t.name for t in tools] for tools in tool_sets], prompt_length)

    def favoured_ids(self, generated: list[int], names: list[str]) -> list[int]:
        """Tokens to bias after `generated` (the ids written so far); [] outside a name."""
        partial = name_prefix(self.tokenizer.decode(generated[-TAIL_TOKENS:]))
        return [] if partial is None else continuation_ids(partial, names, self.table)


class ToolNameBias(LogitsProcessor):
    """Adds the masker's strength to tokens continuing an offered name at a name position."""

    def __init__(self, masker: SoftMasker, names: list[list[str]], prompt_length: int) -> None:
        self.masker = masker
        self.names = names
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        for row, names in enumerate(self.names):
            ids = self.masker.favoured_ids(input_ids[row, self.prompt_length:].tolist(), names)
            scores[row, ids] += self.masker.strength
        return scores
