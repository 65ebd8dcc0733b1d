"""The call decision by probability mass: the first token of an answer calls only when the
model gives calling at least `threshold` of its probability.

Why: greedy decoding picks the single most likely first token. On a request no offered tool
serves, a trained model spreads its "no call" mass over several openings ("No", "None", "I",
"Sorry", "This", ...) while a call always starts with the one `<tool_call>` token, so the call
token wins with 40% of the mass against 60% spread over five refusals. Measured on the cpu-long
model (Q4_K_M + correction, 40 rows per set, 2026-11-30): mean P(<tool_call>) at the first
position 0.56 on irrelevance rows, 0.76 on seen and 0.72 on unseen-tool rows; below 0.5 on
13/40 irrelevance rows, 0/40 seen and 2/40 unseen ones, yet greedy called on every one.

With a threshold t, at the first generated position only, the call-start token is removed
when its softmax probability is below t; the model then writes its most likely other opening
(a refusal, or the reasoning line of a prompt that asks for one, after which it may still
call). t = 0.5 compares calling with everything else, which is what "call or not" means; None
(the default) is plain greedy. Later positions are untouched (after a call the choice is
between one more call and end-of-turn, two tokens).

No torch here: the llama.cpp engine runs without it (the transformers engine passes its first
step's logits as an array). Deliberately left out: which token starts a call
(`toolmodal.calls.CALL_START`, looked up by each engine in its own vocabulary) and masks of
later positions (`soft`, `hard`).
"""

from __future__ import annotations

import numpy as np


def call_probability(logits: np.ndarray, call_id: int) -> np.ndarray:
    """Softmax probability of `call_id` per row of `logits` ([..., vocab] -> [...])."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return np.exp(shifted[..., call_id]) / np.exp(shifted).sum(axis=-1)


def withholds_call(logits: np.ndarray, call_id: int, threshold: float) -> np.ndarray:
    """Per row of `logits`: the call-start token is below `threshold` and must be removed."""
    return call_probability(logits, call_id) < threshold
