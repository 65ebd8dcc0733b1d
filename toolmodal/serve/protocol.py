"""The OpenAI chat-completions wire format: request and response models, and error bodies.

Only the fields the server acts on are declared; unknown fields a client sends (`user`, `seed`,
`metadata`...) are ignored, while a declared field of the wrong type is a 400 naming it. Tool
definitions stay plain JSON objects here: they go through the pipeline's own ingester
(`toolmodal.ingest.openai`), whose messages name the tool and field at fault.

Deliberately left out: the legacy `functions`/`function_call` fields, `n` > 1, logprobs, audio
and image content parts (rejected with a 400 naming the field).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionRef(_Lenient):
    """`{"name": ...}` inside a named tool_choice."""

    name: str


class NamedToolChoice(_Lenient):
    """`{"type": "function", "function": {"name": "get_weather"}}`."""

    type: Literal["function"]
    function: FunctionRef


class FunctionCall(_Lenient):
    """A call as OpenAI writes it: the arguments are a JSON string."""

    name: str
    arguments: str


class MessageToolCall(_Lenient):
    """One entry of an assistant message's `tool_calls`."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(_Lenient):
    """A `{"type": "text", "text": ...}` content part (the only kind a text model reads)."""

    type: Literal["text"]
    text: str


class ChatMessage(_Lenient):
    """One message of the conversation, any role."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        """The content as one string ("" when absent)."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Lenient):
    """`stream_options`: whether the last chunk carries usage counts."""

    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    """Body of `POST /v1/chat/completions`."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class Usage(BaseModel):
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RequestError(Exception):
    """A client error, rendered as an OpenAI error body with HTTP `status`.

    Attributes:
        message: What is wrong, naming the value at fault.
        param: The request field at fault (e.g. "messages[2].role", "tools[1]"), or None.
        status: HTTP status (400 bad request, 503 overloaded).
        code: Machine-readable code, e.g. "invalid_value", "context_length_exceeded".
    """

    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.code = message, param, status, code

    def body(self) -> dict:
        """The JSON body OpenAI clients parse (`openai.BadRequestError.body`)."""
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}


def field_path(loc: tuple) -> str:
    """Pydantic's error location as a request path: ("messages", 2, "role") -> messages[2].role."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _is_union_tag(part):
            path += f".{part}" if path else part
    return path


def _is_union_tag(part: str) -> bool:
    """Whether a location part names a union member (`str`, `list[TextPart]`, a class name)."""
    return (part in ("str", "int", "float", "bool", "none") or "[" in part
            or part[:1].isupper() or part.startswith("function-"))


def parse_request(payload: Any) -> ChatCompletionRequest:
    """Validate a decoded JSON body.

    Raises:
        RequestError: The first problem found, naming the field (e.g. `messages[0].role`).
    """
    if not isinstance(payload, dict):
        raise RequestError(f"the body must be a JSON object, got {type(payload).__name__}")
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
        got = repr(first.get("input"))[:80]
        raise RequestError(f"{where}: {first['msg']} (got {got})", param=where) from None
