"""Inference engines: one interface, chosen by name, each returning the raw generated text.

The interface every engine implements (the export engineer's `llamacpp.py` included):

    class MyEngine:
        def __init__(self, model: Path, config: EngineConfig) -> None: ...
        def generate(self, requests: list[Request]) -> list[Generation]: ...

- A `Request` is the prompt as chat messages (from `toolmodal.chat.build_prompt`), the tools
  offered in that prompt, and the mask mode: "none", "soft" (logit bias towards the offered tool
  names, `config.soft_bias`) or "hard" (grammar: only the output format, offered tool names,
  their parameter names, values of the declared types/enums; "no call" stays reachable).
  Grammars for hard mode come from `toolmodal.masking.grammar` (JSON schema of one call,
  xgrammar/GBNF-style EBNF, Lark), so every engine constrains to the same language.
- A `Generation` is the raw text (special tokens removed, the calls.py format intact), the
  number of generated tokens, the request's latency in seconds (from the start of its batch to
  its last token; throughput is the caller's wall clock over many requests) and whether it
  ended at end-of-turn.
- `generate` returns one Generation per request, in order; it decodes greedily and stops at the
  chat template's end-of-turn. Parsing is NOT the engine's job: callers use
  `toolmodal.calls.parse_output` on `Generation.text`.

Engines: `transformers` (default, fp32 CPU, batched, `toolmodal.engines.transformers_engine`),
`vllm` (`toolmodal.engines.vllm_engine`, needs vllm installed), `llamacpp` (GGUF files,
`toolmodal.engines.llamacpp`). `load_engine` imports only the selected one.

Deliberately left out: sampling (evaluation is greedy), scoring, prompt construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from toolmodal.schema import Tool

MaskMode = Literal["none", "soft", "hard"]
MASK_MODES: tuple[str, ...] = ("none", "soft", "hard")
EngineName = Literal["transformers", "vllm", "llamacpp"]
HardBackend = Literal["xgrammar", "outlines", "llguidance"]


class EngineConfig(BaseModel):
    """Settings shared by all engines.

    Attributes:
        max_new_tokens: Generation budget per request.
        batch_size: Requests decoded together (engines that cannot batch ignore it).
        soft_bias: Logit added to tokens that continue an offered tool name (soft mode).
        hard_backend: Constrained-decoding library for hard mode (transformers engine).
        hard_reasoning: Text allowed before the calls in hard mode: "none", "line" (one line,
            the default) or "free" (see `toolmodal.masking.grammar`).
        any_order: Whether hard mode lets arguments appear in any order (else schema order).
        lora: llama.cpp only: a LoRA adapter GGUF applied to the model at load, e.g. the
            Q4_K_M correction written by `toolmodal.export` (other engines refuse it).
        prefix_cache: Reuse the KV cache of prompt prefixes shared by requests (the system
            prompt and tool block) and order requests so that they are adjacent; False is the
            former one-prompt-at-a-time path (the throughput bench compares the two).
        call_threshold: The call decision by probability mass (`toolmodal.masking.decision`):
            the answer's first token may start a call only when the model gives the call-start
            token at least this probability; None is plain greedy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = 256
    batch_size: int = 8
    soft_bias: float = 5.0
    hard_backend: HardBackend = "xgrammar"
    hard_reasoning: Literal["none", "line", "free"] = "line"
    any_order: bool = False
    lora: Path | None = None
    prefix_cache: bool = True
    call_threshold: float | None = Field(default=None, gt=0.0, le=1.0)


@dataclass(frozen=True)
class Request:
    """One prompt to complete.

    Attributes:
        messages: Chat messages ending with the user turn (no assistant turn yet).
        tools: Tools offered in the prompt (what masking allows).
        mask: "none", "soft" or "hard".
    """

    messages: list[dict]
    tools: list[Tool] = field(default_factory=list)
    mask: MaskMode = "none"


@dataclass(frozen=True)
class Generation:
    """Raw output of one request.

    Attributes:
        text: Generated text up to (not including) the end-of-turn token.
        n_new_tokens: Generated tokens, the end-of-turn token included.
        seconds: This request's latency: from the start of its batch until its last token.
        ended: Generation stopped at end-of-turn (False: it ran out of `max_new_tokens`).
    """

    text: str
    n_new_tokens: int
    seconds: float
    ended: bool


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all sequences."""
    first, length = sequences[0], min(len(s) for s in sequences)
    for k in range(length):
        if any(s[k] != first[k] for s in sequences):
            return k
    return length


class Engine(Protocol):
    """What the evaluator needs from an engine."""

    def generate(self, requests: list[Request]) -> list[Generation]:
        """Complete each request greedily; one Generation per request, same order."""
        ...


def load_engine(name: EngineName, model: Path, config: EngineConfig) -> Engine:
    """Import and build the named engine (only that engine's dependencies are imported).

    Args:
        name: "transformers", "vllm" or "llamacpp".
        model: HF model folder (transformers, vllm) or .gguf file (llamacpp).
        config: Shared engine settings.

    Raises:
        ValueError: `config.lora` is set for an engine other than llamacpp.
    """
    if config.lora is not None and name != "llamacpp":
        raise ValueError(f"engine {name!r} cannot apply the LoRA GGUF {config.lora} "
                         "(EngineConfig.lora is for llamacpp)")
    if name == "transformers":
        from toolmodal.engines.transformers_engine import TransformersEngine

        return TransformersEngine(model, config)
    if name == "vllm":
        from toolmodal.engines.vllm_engine import VLLMEngine

        return VLLMEngine(model, config)
    if name == "llamacpp":
        from toolmodal.engines.llamacpp import LlamaCppEngine

        return LlamaCppEngine(model, config)
    raise ValueError(f"unknown engine {name!r}; expected transformers, vllm or llamacpp")
