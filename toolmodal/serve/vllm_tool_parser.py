"""vLLM tool-parser plugin for toolmodal's output format (`<tool_call>{...}</tool_call>`).

    python -m toolmodal.serve.vllm_format > toolmodal.jinja
    vllm serve MODEL_DIR --chat-template toolmodal.jinja --enable-auto-tool-choice \
        --tool-parser-plugin toolmodal/serve/vllm_tool_parser.py --tool-call-parser toolmodal

(the chat template puts the request's tools into the prompt in our token form; the model's own
template has no place for them).

A thin wrapper: the parsing and the grammar live in `toolmodal.serve.vllm_format` (tested
without vllm). tool_choice "required" and a named function are enforced with our grammar
through vLLM's structured outputs. Written against the `vllm.tool_parsers` layout; the response
classes are reached through the abstract parser's module so the file does not depend on where
a vLLM release keeps its protocol module. Only vllm (and toolmodal) are needed to import it.

Deliberately left out: anything but parsing; the model's output is never executed.
"""

from __future__ import annotations

from collections.abc import Sequence

from vllm.sampling_params import StructuredOutputsParams
from vllm.tool_parsers import abstract_tool_parser as base

from toolmodal.serve import vllm_format


class ToolmodalToolParser(base.ToolParser):
    """Splits our output into content and OpenAI tool calls, streaming or not."""

    # The serving layer's own JSON-list parsing does not fit our format: use ours.
    supports_required_and_named = False

    def __init__(self, tokenizer, *args, **kwargs) -> None:
        super().__init__(tokenizer, *args, **kwargs)
        self.splitter = vllm_format.StreamSplitter()

    def adjust_request(self, request):
        """Enforce tool_choice "required" / a named function with our grammar."""
        tools = [t.model_dump(exclude_none=True) for t in request.tools or []]
        choice = request.tool_choice
        choice = choice if isinstance(choice, str | None) else choice.model_dump()
        grammar = vllm_format.constraint(tools, choice, request.parallel_tool_calls is not False)
        if grammar is not None:
            request.structured_outputs = StructuredOutputsParams(grammar=grammar)
        return request

    def extract_tool_calls(self, model_output: str, request):
        content, calls = vllm_format.extract(model_output)
        return base.ExtractedToolCallInformation(tools_called=bool(calls), tool_calls=calls,
                                                 content=content)

    def extract_tool_calls_streaming(self, previous_text: str, current_text: str,
                                     delta_text: str, previous_token_ids: Sequence[int],
                                     current_token_ids: Sequence[int],
                                     delta_token_ids: Sequence[int], request):
        content, calls = self.splitter.delta(delta_text)
        if content is None and not calls:
            return None
        return base.DeltaMessage(content=content, tool_calls=calls)


base.ToolParserManager.register_module("toolmodal", module=ToolmodalToolParser)
