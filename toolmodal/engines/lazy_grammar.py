"""Grammar-constrained greedy decoding on llama.cpp that tests the model's own choice first.

llama-cpp-python's grammar sampler checks every vocabulary token against the grammar at every
step: on 2 cores that costs about as much as the 270M model's decode step itself. Greedy
decoding only needs the likeliest allowed token. So at each step the likeliest token is tested
alone; if the grammar allows it, it is the answer and nothing else is checked; only otherwise
is the whole vocabulary masked (the rule of llama.cpp's own `common_sampler_sample` when the
grammar is not applied first). The chosen token is the one the full mask would give, ties
included (both take the lowest id among equal maxima), so the outputs are the same.

Used as a logits processor (`processor`), last in the list: earlier processors (the call
decision) see the model's own distribution, as with the grammar sampler. The grammar state
advances by the token the previous step appended, read from `input_ids`.
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np

_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)])


class LazyGrammar:
    """One GBNF grammar's llama.cpp sampler and the buffers its checks use."""

    def __init__(self, llama_cpp, vocab, gbnf: str, n_vocab: int) -> None:
        """Build the grammar sampler.

        Args:
            llama_cpp: The imported `llama_cpp` module.
            vocab: The model's `llama_vocab` pointer.
            gbnf: The grammar (root rule `root`).
            n_vocab: Vocabulary size (the length of every logits row).

        Raises:
            ValueError: llama.cpp rejects the grammar.
        """
        self.llama_cpp = llama_cpp
        self.sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self.sampler:
            raise ValueError(f"llama.cpp rejected the GBNF grammar:\n{gbnf}")
        # freed with this object, or at exit while llama_cpp's functions still exist
        weakref.finalize(self, llama_cpp.llama_sampler_free, self.sampler)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._all = (llama_cpp.llama_token_data * n_vocab)()
        self._all_view = np.frombuffer(self._all, dtype=_TOKEN_DATA)
        self._all_view["id"] = np.arange(n_vocab, dtype=np.intc)

    def _apply(self, data, size: int) -> None:
        array = self.llama_cpp.llama_token_data_array(
            data=ctypes.cast(data, self.llama_cpp.llama_token_data_p), size=size, selected=-1,
            sorted=False)
        self.llama_cpp.llama_sampler_apply(self.sampler, ctypes.byref(array))

    def allows(self, token: int) -> bool:
        """Whether the grammar, in its current state, accepts `token` next."""
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._apply(self._one, 1)
        return self._one[0].logit != -np.inf

    def mask(self, scores: np.ndarray) -> np.ndarray:
        """`scores` with every token the grammar refuses now set to -inf."""
        self._all_view["logit"] = scores
        self._apply(self._all, len(scores))
        return self._all_view["logit"].copy()

    def processor(self, prompt_length: int):
        """A logits processor for one generation from a prompt of `prompt_length` tokens
        (resets the grammar to its start)."""
        self.llama_cpp.llama_sampler_reset(self.sampler)

        def constrain(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
            if len(input_ids) > prompt_length:
                self.llama_cpp.llama_sampler_accept(self.sampler, int(input_ids[-1]))
            if not self.allows(int(np.argmax(scores))):
                scores[:] = self.mask(scores)
            return scores

        return constrain
