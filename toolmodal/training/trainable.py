"""Trainable parameters `embeddings_frozen`: the tied 262k-row matrix frozen, tool rows trained.

The embedding matrix of Gemma 3 270M (tied to the output layer) holds 168M of its 268M
parameters. Zeroing its gradient rows with a hook would still compute the full gradient and keep
AdamW state for all of it; here the matrix stays `requires_grad=False` and the tool-token rows
live in a small separate parameter (`rows`, one row per tool token) that both the input
embedding and the output layer read: the embedding swaps those rows in, the output layer
overwrites those logit columns. `merge_tool_rows` writes the rows back into the matrix and
restores the original modules, so the saved model is a plain transformers folder with tying
intact. Deliberately left out: other models' embedding classes (Gemma's scaled embedding is
assumed: its `embed_scale` is applied to the swapped rows too).
"""

from __future__ import annotations

import torch
from torch import nn


class ToolRowsEmbedding(nn.Module):
    """The frozen (scaled) embedding, with the tool-token rows taken from `rows`."""

    def __init__(self, base: nn.Embedding, rows: nn.Parameter, token_ids: list[int]) -> None:
        super().__init__()
        self.base, self.rows = base, rows
        slot = torch.full((base.num_embeddings,), -1, dtype=torch.long)
        slot[torch.tensor(token_ids)] = torch.arange(len(token_ids))
        self.register_buffer("slot", slot, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.base(input_ids)
        slot = self.slot[input_ids]
        tool = (slot >= 0).unsqueeze(-1)
        swapped = self.rows[slot.clamp(min=0)] * self.base.embed_scale.to(out.dtype)
        return torch.where(tool, swapped, out)


class ToolRowsHead(nn.Module):
    """The frozen output layer, with the tool-token logit columns computed from `rows`.

    The layer and `rows` are owned (registered) by the `ToolRowsEmbedding`; held here in a plain
    tuple, they appear once in `state_dict`, so checkpoints (ours and TRL's) save no shared
    tensors.
    """

    def __init__(self, base: nn.Linear, rows: nn.Parameter, token_ids: list[int]) -> None:
        super().__init__()
        self._shared = (base, rows)
        self.register_buffer("token_ids", torch.tensor(token_ids), persistent=False)

    @property
    def base(self) -> nn.Linear:
        """The original (frozen) output layer."""
        return self._shared[0]

    @property
    def rows(self) -> nn.Parameter:
        """The trainable tool-token rows (the embedding wrapper's parameter)."""
        return self._shared[1]

    @property
    def weight(self) -> torch.Tensor:
        """The merged matrix (a differentiable copy), for callers that read the head's weight
        directly, such as TRL's fused log-probability head in GRPO."""
        return self.base.weight.index_copy(0, self.token_ids, self.rows)

    @property
    def bias(self) -> None:
        """No bias (Gemma's output layer has none), for the same callers."""
        return None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.base(hidden)
        return logits.index_copy(-1, self.token_ids, hidden @ self.rows.T)


def freeze_embeddings_except(model, token_ids: list[int]) -> nn.Parameter:
    """Freeze the tied embedding/output matrix of a causal LM; train only `token_ids`' rows.

    Returns:
        The new trainable parameter (initialised from the matrix's rows).

    Raises:
        ValueError: If the output layer is not tied to the embedding.
    """
    embedding, head = model.model.embed_tokens, model.lm_head
    if head.weight is not embedding.weight:
        raise ValueError(f"{type(model).__name__}: trainable=embeddings_frozen needs the output "
                         "layer tied to the embedding")
    embedding.weight.requires_grad_(False)
    rows = nn.Parameter(embedding.weight.detach()[token_ids].clone())
    model.model.embed_tokens = ToolRowsEmbedding(embedding, rows, token_ids)
    model.lm_head = ToolRowsHead(head, rows, token_ids)
    return rows


def has_tool_rows(model) -> bool:
    """Whether `freeze_embeddings_except` wrapped this model."""
    return isinstance(model.lm_head, ToolRowsHead)


@torch.no_grad()
def merge_tool_rows(model) -> None:
    """Write the trained rows into the matrix and put the original modules back (in place)."""
    head = model.lm_head
    head.base.weight[head.token_ids] = head.rows
    model.model.embed_tokens = model.model.embed_tokens.base
    model.lm_head = head.base
    model.lm_head.weight.requires_grad_(True)
