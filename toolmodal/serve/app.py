"""The HTTP server: FastAPI routes in OpenAI's shape over the generation worker.

Routes: `POST /v1/chat/completions` (JSON or server-sent events), `GET /v1/models`,
`GET /health`. The body is read and validated here rather than by FastAPI's own body parsing,
so every client error (too large, not JSON, a wrong field type, a rejected tool schema, a prompt
over the context) is a 400 in OpenAI's error shape naming the field or tool; a full queue is a
503 with `Retry-After`. Streaming sends a role chunk when the first token exists (so time to
first chunk is time to first token), then content deltas and one delta per complete tool call
(`{"index", "id", "type", "function": {"name", "arguments"}}`, arguments as a JSON string),
then the finish reason, usage when `stream_options.include_usage` is set, and `[DONE]`.

Deliberately left out: authentication (bind to 127.0.0.1 or put a proxy in front), CORS, and
executing calls: calls are parsed and returned, never run.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from toolmodal.calls import ToolCall
from toolmodal.serve.backends import Backend
from toolmodal.serve.callstream import Call, Content
from toolmodal.serve.protocol import ChatCompletionRequest, RequestError, parse_request
from toolmodal.serve.translate import ServeConfig, ToolCache, plan_request
from toolmodal.serve.worker import Job, Outcome, Worker

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000


def tool_call_json(call: ToolCall, index: int | None = None) -> dict:
    """One call in OpenAI's shape, with a fresh id (and `index` in a stream delta)."""
    body = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call.name,
                         "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
    return body if index is None else {"index": index, **body}


def usage_json(outcome: Outcome) -> dict:
    """OpenAI's usage counts."""
    return {"prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.completion_tokens}


def completion_json(outcome: Outcome, completion_id: str, model: str) -> dict:
    """A non-streamed `chat.completion` object."""
    message: dict = {"role": "assistant", "content": outcome.content or None}
    if outcome.calls:
        message["tool_calls"] = [tool_call_json(c) for c in outcome.calls]
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                         "finish_reason": outcome.finish_reason}],
            "usage": usage_json(outcome)}


def _chunk(completion_id: str, model: str, delta: dict, finish: str | None = None,
           usage: dict | None = None) -> str:
    choices = [] if usage is not None else [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}]
    body = {"id": completion_id, "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _error_body(exc: Exception) -> tuple[int, dict]:
    if isinstance(exc, RequestError):
        return exc.status, exc.body()
    return 500, RequestError(f"generation failed: {type(exc).__name__}: {exc}", status=500,
                             code="server_error").body()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the request body is {declared} bytes, over this server's limit "
                           f"of {limit}", code="body_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the request body is over this server's limit of {limit} bytes",
                               code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes) -> ChatCompletionRequest:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    return parse_request(payload)


async def _stream(job: Job, first: tuple, request: ChatCompletionRequest, completion_id: str,
                  model: str) -> AsyncIterator[str]:
    """Server-sent events for one job; cancels generation if the client goes away."""
    include_usage = request.stream_options is not None and request.stream_options.include_usage
    kind, payload = first
    try:
        while True:
            if kind == "first":
                yield _chunk(completion_id, model, {"role": "assistant", "content": ""})
            elif kind == "event" and isinstance(payload, Content):
                yield _chunk(completion_id, model, {"content": payload.text})
            elif kind == "event" and isinstance(payload, Call):
                yield _chunk(completion_id, model, {"tool_calls": [
                    tool_call_json(payload.call, payload.index)]})
            elif kind == "done":
                yield _chunk(completion_id, model, {}, payload.finish_reason)
                if include_usage:
                    yield _chunk(completion_id, model, {}, usage=usage_json(payload))
                break
            else:  # an error after the stream started
                yield f"data: {json.dumps(_error_body(payload)[1])}\n\n"
                break
            kind, payload = await job.events.get()
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled.set()


def create_app(backend: Backend, config: ServeConfig, model_name: str, max_queue: int = 16,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """Build the FastAPI app around one backend (its worker thread starts now).

    Args:
        backend: Token generation on the loaded model.
        config: Prompt, mask and budget settings.
        model_name: The id `/v1/models` lists and responses carry.
        max_queue: Requests queued or running at most; more get a 503 at once.
        max_body_bytes: Larger request bodies get a 400.
    """
    worker = Worker(backend, max_queue)
    tool_cache = ToolCache()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        worker.stop()

    app = FastAPI(title="toolmodal", lifespan=lifespan)
    app.state.worker = worker

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": model_name, "in_flight": worker.in_flight,
                "queue_limit": worker.limit, **backend.stats()}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model",
                                            "created": 0, "owned_by": "toolmodal"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(http: Request):
        request = _decode(await _read_body(http, max_body_bytes))
        job = worker.submit(plan_request(request, config, tool_cache))
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        try:
            kind, payload = await job.events.get()
            while not request.stream and kind not in ("done", "error"):
                kind, payload = await job.events.get()
        except BaseException:  # the client went away while waiting
            job.cancelled.set()
            raise
        if kind == "error":
            status, body = _error_body(payload)
            return JSONResponse(body, status_code=status)
        if not request.stream:
            return JSONResponse(completion_json(payload, completion_id, model_name))
        return StreamingResponse(_stream(job, (kind, payload), request, completion_id,
                                         model_name), media_type="text/event-stream")

    return app
