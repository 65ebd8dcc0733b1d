"""Shared-prefix packing: the rows of one group train as one sequence, prefix once.

Rows that offer the same system prompt and tools start with the same tokens (the system message
is folded into the first user turn). A packed sequence holds that common token prefix once, then
each row's remainder (request + completion) as a branch: every branch token attends to the
prefix and to earlier tokens of its own branch only, and its position ids continue from the
prefix length, exactly as in the row alone. Gemma 3's sliding-window layers get their own mask,
windowed on those position ids, so every token sees exactly the keys it sees unpacked: loss and
gradients equal those of the rows trained separately (tests/test_packing.py).

Targets are stored per position (the next token's label, IGNORE where none), because the token
after the prefix differs per branch; the prefix therefore always ends before the token that
predicts the first supervised token of any member.

Grouping uses the `group` column when the data has one, else the first prompt message (system
prompt + tools); the shared prefix is always the longest common token prefix of the members, so a
coarse group key costs speed, never correctness. Deliberately left out: packing unrelated rows
into one sequence (no prefix to share; padding is already cut by length bucketing) and the loss
(`toolmodal.training.sft`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from toolmodal.training.masks import IGNORE, NONE, EncodedExample

PAD_BRANCH = -1  # branch id of padding; the prefix is branch 0, rows are branches 1..n


@dataclass(frozen=True)
class PackedSequence:
    """One shared prefix and its branches, flattened; all lists have one entry per token."""

    input_ids: list[int]
    position_ids: list[int]
    branch: list[int]
    targets: list[int]
    target_kinds: list[int]


def group_keys(rows: Sequence[dict]) -> list[str]:
    """Group key per row: the `group` column when present, else the first prompt message."""
    if rows and "group" in rows[0]:
        return [str(row["group"]) for row in rows]
    return [json.dumps(row["prompt"][0], sort_keys=True) for row in rows]


def _targets(example: EncodedExample) -> tuple[list[int], list[int]]:
    return example.labels[1:] + [IGNORE], example.kinds[1:] + [NONE]


def shared_prefix(examples: Sequence[EncodedExample]) -> int:
    """Length of the prefix the examples can share: their common tokens, ending before the
    position that predicts any member's first supervised token."""
    first = examples[0].input_ids
    n = min(len(e.input_ids) for e in examples)
    for example in examples[1:]:
        n = next((i for i in range(n) if example.input_ids[i] != first[i]), n)
    for example in examples:
        supervised = [i for i, label in enumerate(example.labels) if label != IGNORE]
        if supervised:
            n = min(n, supervised[0] - 1)
    return max(n, 0)


def pack(examples: Sequence[EncodedExample]) -> PackedSequence:
    """Pack examples (expected to share a prompt prefix) into one sequence."""
    n_prefix = shared_prefix(examples)
    head = examples[0]
    head_targets, head_kinds = _targets(head)
    ids, pos = list(head.input_ids[:n_prefix]), list(range(n_prefix))
    branch = [0] * n_prefix
    targets, kinds = head_targets[:n_prefix], head_kinds[:n_prefix]
    for b, example in enumerate(examples, start=1):
        t, k = _targets(example)
        ids += example.input_ids[n_prefix:]
        pos += range(n_prefix, len(example.input_ids))
        branch += [b] * (len(example.input_ids) - n_prefix)
        targets += t[n_prefix:]
        kinds += k[n_prefix:]
    return PackedSequence(ids, pos, branch, targets, kinds)


def pack_batch(examples: Sequence[EncodedExample], keys: Sequence[str]) -> list[PackedSequence]:
    """One packed sequence per distinct key among `examples` (first-seen order)."""
    groups: dict[str, list[EncodedExample]] = {}
    for example, key in zip(examples, keys, strict=True):
        groups.setdefault(key, []).append(example)
    return [pack(members) for members in groups.values()]


def shuffled_groups(keys: Sequence[str], rng: random.Random) -> list[list[int]]:
    """Row indices per distinct key, the groups shuffled, then the members within each."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    members = list(groups.values())
    rng.shuffle(members)
    for group in members:
        rng.shuffle(group)
    return members


def group_batches(keys: Sequence[str], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of row indices made of whole groups where they fit.

    Groups are shuffled, then members within each group; a group larger than `batch_size` is cut
    into pieces of `batch_size` (and a remainder). Each piece goes into the first batch with room
    for it (first fit), so a batch holds at most `batch_size` rows and a group's shared prefix is
    computed once per batch it is in, not once per batch boundary it straddles. A batch may hold
    fewer rows (a group of 7 where no other piece fits beside it); the loss is normalised per
    step, so a short batch makes a step of its own size. The batches are shuffled.
    """
    rng = random.Random(seed)
    batches: list[list[int]] = []
    for group in shuffled_groups(keys, rng):
        for start in range(0, len(group), batch_size):
            piece = group[start:start + batch_size]
            room = next((b for b in batches if len(b) + len(piece) <= batch_size), None)
            if room is None:
                batches.append(piece)
            else:
                room.extend(piece)
    rng.shuffle(batches)
    return batches


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding), and the
    per-position next-token `targets` and `target_kinds` the loss reads."""
    width = max(len(e.input_ids) for e in examples)

    def pad(seq: list[int], value: int) -> list[int]:
        return seq + [value] * (width - len(seq))

    labels = torch.tensor([pad(e.labels, IGNORE) for e in examples])
    kinds = torch.tensor([pad(e.kinds, NONE) for e in examples])
    return {
        "input_ids": torch.tensor([pad(e.input_ids, pad_id) for e in examples]),
        "attention_mask": torch.tensor([pad([1] * len(e.input_ids), 0) for e in examples]),
        "labels": labels,
        "targets": torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE),
        "target_kinds": torch.nn.functional.pad(kinds[:, 1:], (0, 1), value=NONE),
    }


def collate_packed(sequences: Sequence[PackedSequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors of packed sequences (targets IGNORE and branch -1 on padding)."""
    width = max(len(s.input_ids) for s in sequences)

    def pad(values: list[int], value: int) -> list[int]:
        return values + [value] * (width - len(values))

    return {
        "input_ids": torch.tensor([pad(s.input_ids, pad_id) for s in sequences]),
        "position_ids": torch.tensor([pad(s.position_ids, 0) for s in sequences]),
        "branch": torch.tensor([pad(s.branch, PAD_BRANCH) for s in sequences]),
        "targets": torch.tensor([pad(s.targets, IGNORE) for s in sequences]),
        "target_kinds": torch.tensor([pad(s.target_kinds, NONE) for s in sequences]),
    }


def attention_masks(branch: torch.Tensor, position_ids: torch.Tensor, sliding_window: int | None,
                    dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """4D additive masks (batch, 1, query, key) for Gemma 3's two layer types.

    A query sees a key when the key is not later in the sequence and lies in the prefix or in the
    query's own branch; sliding layers also need `query position - key position < window`
    (transformers' rule). Padding sees only itself, so no softmax row is empty.
    """
    q_branch, k_branch = branch[:, :, None], branch[:, None, :]
    length = branch.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=branch.device).tril()
    allowed = (causal & ((k_branch == 0) | (k_branch == q_branch))
               & (k_branch != PAD_BRANCH) & (q_branch != PAD_BRANCH))
    own = torch.eye(length, dtype=torch.bool, device=branch.device)
    full = allowed | own
    sliding = full
    if sliding_window is not None:
        distance = position_ids[:, :, None] - position_ids[:, None, :]
        sliding = (allowed & (distance < sliding_window)) | own

    def additive(mask: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        return torch.where(mask, zero, torch.finfo(dtype).min)[:, None]

    return {"full_attention": additive(full), "sliding_attention": additive(sliding)}


def supervised_count(batch: dict[str, torch.Tensor]) -> int:
    """Supervised targets in a packed batch."""
    return int((batch["targets"] != IGNORE).sum())
