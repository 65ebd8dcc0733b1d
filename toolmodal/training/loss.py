"""The supervised loss: logits only where a token is supervised, on plain or packed batches.

With a 262k-token vocabulary the output layer costs more than the whole decoder body, yet only
the assistant completion is supervised. So the decoder body runs on the batch (plain rows with a
padding mask, or packed sequences with their own masks and position ids, see
`toolmodal.training.packing`), and the output layer (with Gemma's final logit soft-capping) is
applied only at positions whose next token is supervised. Both batch kinds carry per-position
`targets` (next-token label or IGNORE) and `target_kinds`.

Normalisation: a step's loss is the weighted sum of token cross-entropies divided by the sum of
the token weights (tool/argument phase weights shift the balance between tokens, not the step
size); with uniform weights (0.5/0.5) it is TRL's completion-only loss. The unweighted mean NLL
is returned beside it. Deliberately left out: the optimizer loop (`toolmodal.training.sft`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from peft import PeftModel

from toolmodal.training.masks import ARGS, DECISION, IGNORE, NAME, TEXT
from toolmodal.training.packing import attention_masks


class LossParts(NamedTuple):
    """Sums over a batch's supervised tokens (divide by the step's totals, not the batch's)."""

    weighted: torch.Tensor  # sum of weight * cross-entropy (differentiable)
    plain: float  # sum of cross-entropy
    tokens: int  # supervised tokens
    weight: float  # sum of token weights


def weight_table(tool_weight: float, argument_weight: float, decision_weight: float = 1.0,
                 device=None) -> torch.Tensor:
    """Weight per token kind: 0 unsupervised, 1 text, 2*tool on names, 2*argument on args,
    `decision_weight` on decision tokens (call or not, one more call or stop)."""
    table = torch.zeros(DECISION + 1, device=device)  # DECISION is the last kind
    table[TEXT], table[NAME], table[ARGS] = 1.0, 2.0 * tool_weight, 2.0 * argument_weight
    table[DECISION] = decision_weight
    return table


def batch_weight(batch: dict[str, torch.Tensor], tool_weight: float,
                 argument_weight: float, decision_weight: float = 1.0) -> float:
    """Sum of the token weights of a batch (known before the forward pass)."""
    table = weight_table(tool_weight, argument_weight, decision_weight)
    return float(table[batch["target_kinds"]].sum())


def causal_lm_of(model):
    """The transformers causal LM inside a (possibly peft-wrapped) model."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def hidden_states(causal_lm, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The decoder body's last hidden states; a packed batch (with `branch`) gets its masks."""
    device = causal_lm.device
    input_ids = batch["input_ids"].to(device)
    if "branch" not in batch:
        return causal_lm.model(input_ids=input_ids,
                               attention_mask=batch["attention_mask"].to(device)).last_hidden_state
    position_ids = batch["position_ids"].to(device)
    masks = attention_masks(batch["branch"].to(device), position_ids,
                            causal_lm.config.sliding_window, causal_lm.dtype)
    return causal_lm.model(input_ids=input_ids, attention_mask=masks,
                           position_ids=position_ids).last_hidden_state


def selected_logits(causal_lm, hidden: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Soft-capped fp32 logits at the `selected` positions only."""
    logits = causal_lm.lm_head(hidden[selected]).float()
    cap = causal_lm.config.final_logit_softcapping
    return logits if cap is None else torch.tanh(logits / cap) * cap


def supervised_loss(model, batch: dict[str, torch.Tensor], tool_weight: float = 0.5,
                    argument_weight: float = 0.5, decision_weight: float = 1.0) -> LossParts:
    """Weighted and plain cross-entropy sums over the batch's supervised tokens."""
    causal_lm = causal_lm_of(model)
    hidden = hidden_states(causal_lm, batch)
    targets = batch["targets"].to(hidden.device)
    selected = targets != IGNORE
    token_loss = F.cross_entropy(selected_logits(causal_lm, hidden, selected), targets[selected],
                                 reduction="none")
    table = weight_table(tool_weight, argument_weight, decision_weight, hidden.device)
    weights = table[batch["target_kinds"].to(hidden.device)[selected]]
    return LossParts((token_loss * weights).sum(), float(token_loss.detach().sum()),
                     int(selected.sum()), float(weights.sum()))


class SupervisedLoss(torch.nn.Module):
    """`supervised_loss` as a module, so DDP's forward (and its gradient hooks) wraps it."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], tool_weight: float,
                argument_weight: float, decision_weight: float = 1.0) -> LossParts:
        return supervised_loss(self.model, batch, tool_weight, argument_weight, decision_weight)
