"""Snapshots of llama.cpp's context right after the tool block, one per recent tool set.

llama-cpp-python keeps the KV cache of the previous evaluation and re-evaluates only what
differs, so a request with the same tools as the one before skips the tool block. With several
applications (tool sets) taking turns that single slot is always stale; these snapshots keep
the state of the last few tool blocks, keyed by their tokens, and put one back (a memory copy)
before generation, so `Llama.generate` then finds the tool block already evaluated.

Only the context state (`llama_state_get_data`: the KV cells in use) and the token ids are
kept; `Llama.save_state` would also copy a (n_batch x vocabulary) score array, 268 MB for this
model. The prompt layout puts the tools right after the fixed system prompt
(`toolmodal.serve.translate`), so the block ends at the last `<tool_end>` token.

Deliberately left out: snapshots of whole conversations (only the tool block repeats across
users), and any use outside the generation thread (the Llama object is not thread-safe).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from toolmodal.tool_tokens import TOOL_END


@dataclass(frozen=True)
class Snapshot:
    """A context state and how many tokens it holds."""

    data: bytes
    n_tokens: int


class ToolPrefixStates:
    """LRU of context snapshots taken at the end of the tool block."""

    def __init__(self, llm, llama_cpp, size: int = 8) -> None:
        """Args: the engine's `Llama` object, the `llama_cpp` module, snapshots kept."""
        self.llm = llm
        self.llama_cpp = llama_cpp
        self.size = size
        (self.tool_end,) = llm.tokenize(TOOL_END.encode("utf-8"), add_bos=False, special=True)
        self._snapshots: OrderedDict[bytes, Snapshot] = OrderedDict()

    def prepare(self, prompt: list[int]) -> str:
        """Leave the context holding the prompt's tool block evaluated.

        Returns:
            "none" (no tools), "warm" (the context already holds it), "restored" (from a
            snapshot) or "evaluated" (computed now and snapshotted).
        """
        end = self.block_end(prompt)
        if end == 0:
            return "none"
        if self.llm.n_tokens >= end and np.array_equal(self.llm.input_ids[:end], prompt[:end]):
            return "warm"
        key = np.asarray(prompt[:end], dtype=np.int32).tobytes()
        if key in self._snapshots:
            self._snapshots.move_to_end(key)
            self._restore(self._snapshots[key], prompt[:end])
            return "restored"
        self.llm.reset()
        self.llm.eval(prompt[:end])
        self._snapshots[key] = self._take()
        if len(self._snapshots) > self.size:
            self._snapshots.popitem(last=False)
        return "evaluated"

    def block_end(self, prompt: list[int]) -> int:
        """Index just past the last `<tool_end>` token (0 when the prompt has none)."""
        positions = np.flatnonzero(np.asarray(prompt) == self.tool_end)
        return int(positions[-1]) + 1 if len(positions) else 0

    def bytes_held(self) -> int:
        """Total size of the snapshots kept."""
        return sum(len(s.data) for s in self._snapshots.values())

    def _take(self) -> Snapshot:
        ctx = self.llm._ctx.ctx
        size = self.llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = self.llama_cpp.llama_state_get_data(ctx, buffer, size)
        return Snapshot(data=bytes(buffer)[:written], n_tokens=self.llm.n_tokens)

    def _restore(self, snapshot: Snapshot, tokens: list[int]) -> None:
        buffer = (ctypes.c_uint8 * len(snapshot.data)).from_buffer_copy(snapshot.data)
        read = self.llama_cpp.llama_state_set_data(self.llm._ctx.ctx, buffer, len(snapshot.data))
        if read != len(snapshot.data):
            raise RuntimeError(f"llama.cpp read {read} of {len(snapshot.data)} snapshot bytes")
        self.llm.input_ids[:snapshot.n_tokens] = tokens
        self.llm.n_tokens = snapshot.n_tokens
