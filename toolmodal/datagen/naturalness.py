"""How natural a request reads to a language model: its mean per-token negative log-likelihood.

Each text is placed as a user turn after `<bos>` (`<start_of_turn>user\\n{text}`) and only the
text's own tokens are scored, so the turn markup costs nothing and texts of any length compare.
Runs in fp32 under `torch.no_grad`, texts batched (sorted by length to keep padding small,
right-padded, attention-masked). Lower is more natural; the bench
(`bench/query_naturalness.py`) and the validation gate compare it with real users' questions.

Deliberately left out: model loading options (see `toolmodal.model.load_model`) and any
threshold (the gate's bound lives in `ValidationConfig`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from toolmodal.model import load_model, load_tokenizer

TURN_PREFIX = "<start_of_turn>user\n"


def request_nll(model_dir: Path, texts: list[str], batch_size: int = 8) -> list[float]:
    """Mean per-token negative log-likelihood (nats) of each text as a user turn.

    Args:
        model_dir: HF folder of a causal LM with a Gemma-style tokenizer (`<bos>`,
            `<start_of_turn>`), e.g. the prepared base model.
        texts: Requests to score, each non-empty.
        batch_size: Texts per forward pass.

    Returns:
        One value per text, in the order given.

    Raises:
        ValueError: Naming the first text that tokenizes to nothing.
    """
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir)
    prefix = [tokenizer.bos_token_id] + tokenizer.encode(TURN_PREFIX, add_special_tokens=False)
    encoded = [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    for index, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"request_nll: text {index} ({texts[index]!r}) has no tokens")
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    scores: list[float] = [0.0] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch_scores = _score_batch(model, prefix, [encoded[i] for i in chunk],
                                    tokenizer.pad_token_id)
        for index, score in zip(chunk, batch_scores, strict=True):
            scores[index] = score
    return scores


@torch.no_grad()
def _score_batch(model, prefix: list[int], texts: list[list[int]], pad_id: int) -> list[float]:
    """Mean NLL of each text's tokens after the shared prefix (right padding, masked)."""
    width = len(prefix) + max(len(ids) for ids in texts)
    input_ids = torch.full((len(texts), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    scored = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, ids in enumerate(texts):
        end = len(prefix) + len(ids)
        input_ids[row, :end] = torch.tensor(prefix + ids)
        attention[row, :end] = 1
        scored[row, len(prefix):end] = True
    logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
    # position t predicts token t + 1
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), input_ids[:, 1:],
                                            reduction="none")
    mask = scored[:, 1:].float()
    return ((nll * mask).sum(1) / mask.sum(1)).tolist()
