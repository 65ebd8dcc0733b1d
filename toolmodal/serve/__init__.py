"""An OpenAI-compatible chat-completions server for the trained tool-calling model.

- `protocol`: request models and OpenAI error bodies;
- `translate`: OpenAI messages, tools and tool_choice -> our chat prompt, mask and grammar;
- `callstream`: incremental split of the output into content and tool calls;
- `backends`: token-by-token generation on an engine loaded by `toolmodal.engines.load_engine`;
- `worker`: the single generation thread behind a bounded queue;
- `app`: the FastAPI routes (`toolmodal serve` runs them with uvicorn);
- `vllm_format`, `vllm_chat_template.jinja`, `vllm_tool_parser`: the same format on `vllm serve`
  (parsing and grammar as pure functions, the chat template that writes the tools, and the
  thin plugin class that needs vllm).

Deliberately left out: executing calls (the server only parses and returns them).
"""
