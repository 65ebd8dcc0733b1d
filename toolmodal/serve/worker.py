"""One generation thread behind a bounded queue, talking to the event loop through events.

The model is not thread-safe, so every generation runs on one worker thread, one request at a
time; the asyncio event loop only validates, queues and streams, and stays responsive. `submit`
refuses a request at once (503, `server_overloaded`) when `limit` requests are already queued or
running, so an overloaded server answers quickly instead of hanging. A job's events reach its
asyncio queue via `call_soon_threadsafe`:

    ("first", None)       the first token exists (streaming sends the role chunk then)
    ("event", Content|Call)  from `toolmodal.serve.callstream.CallStream`
    ("done", Outcome)     the final counts, content and calls
    ("error", exception)  a RequestError (e.g. the prompt does not fit) or a server fault

Setting `job.cancelled` (client gone) stops generation at the next token.

Deliberately left out: HTTP (`toolmodal.serve.app`), batching several requests in one pass.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from toolmodal.calls import ToolCall
from toolmodal.chat import build_prompt
from toolmodal.serve.backends import Backend
from toolmodal.serve.callstream import Call, CallStream, Content, Event
from toolmodal.serve.protocol import RequestError
from toolmodal.serve.translate import Plan

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one generation produced."""

    content: str
    calls: list[ToolCall]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass
class Job:
    """A queued Plan and the channel its events go back through."""

    plan: Plan
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def post(self, kind: str, payload: object = None) -> None:
        """Hand an event to the event loop (called from the worker thread)."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, payload))


def check_fits(backend: Backend, plan: Plan, prompt: list[int]) -> None:
    """Raise a 400 naming `tools` or `messages` when the prompt leaves no room to answer."""
    if len(prompt) < backend.context_length:
        return
    tool_tokens = len(backend.prompt_ids(build_prompt("", plan.tools, "")))
    if tool_tokens >= backend.context_length:
        raise RequestError(f"tools: the {len(plan.tools)} tools take {tool_tokens} tokens, more "
                           f"than this model's context of {backend.context_length} tokens; "
                           "send fewer tools", param="tools", code="context_length_exceeded")
    raise RequestError(f"messages: the prompt is {len(prompt)} tokens ({tool_tokens} of them "
                       f"tools), more than this model's context of {backend.context_length}",
                       param="messages", code="context_length_exceeded")


def run_plan(backend: Backend, plan: Plan, job: Job) -> Outcome:
    """Generate for one Plan, posting events as text arrives; returns the Outcome."""
    started = time.perf_counter()
    prompt = backend.prompt_ids(plan.messages)
    check_fits(backend, plan, prompt)
    budget = min(plan.max_tokens, backend.context_length - len(prompt))
    stream, ids, text, ended = CallStream(), [], "", False
    events: list[Event] = []
    for token in backend.tokens(plan, prompt):
        ids.append(token)
        if len(ids) == 1:
            job.post("first")
        full = backend.detokenize(ids)
        if not full.endswith("\ufffd"):  # wait for the rest of a split character
            for event in stream.feed(full[len(text):]):
                job.post("event", event)
                events.append(event)
            text = full
        if job.cancelled.is_set() or len(ids) >= budget or (
                plan.max_calls is not None and len(stream.calls) >= plan.max_calls):
            break
    else:
        ended = True
        if not ids:
            job.post("first")
    for event in stream.finish():
        job.post("event", event)
        events.append(event)
    return _outcome(stream, events, ended, len(ids) >= budget, len(prompt), len(ids), started)


def _outcome(stream: CallStream, events: list[Event], ended: bool, exhausted: bool,
             prompt_tokens: int, generated: int, started: float) -> Outcome:
    finish = "length" if exhausted and not ended else "tool_calls" if stream.calls else "stop"
    content = "".join(e.text for e in events if isinstance(e, Content)).strip()
    return Outcome(content=content, calls=[e.call for e in events if isinstance(e, Call)],
                   finish_reason=finish, prompt_tokens=prompt_tokens,
                   completion_tokens=generated + ended, seconds=time.perf_counter() - started)


class Worker:
    """The generation thread and its bounded queue."""

    def __init__(self, backend: Backend, limit: int) -> None:
        """Start the thread.

        Args:
            backend: Where tokens come from (used only on the worker thread).
            limit: Requests queued or running at most; more get a 503 at once.
        """
        self.backend = backend
        self.limit = limit
        self.in_flight = 0  # read and written on the event loop only
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._serve, name="toolmodal-generation",
                                        daemon=True)
        self._thread.start()

    def submit(self, plan: Plan) -> Job:
        """Queue a Plan (call on the event loop).

        Raises:
            RequestError: 503 `server_overloaded` when `limit` requests are in flight.
        """
        if self.in_flight >= self.limit:
            raise RequestError(f"server busy: {self.in_flight} requests queued or running "
                               f"(limit {self.limit}); retry shortly", status=503,
                               code="server_overloaded")
        self.in_flight += 1
        job = Job(plan, asyncio.get_running_loop())
        self._jobs.put(job)
        return job

    def stop(self) -> None:
        """Cancel the running job and let the thread end after the jobs already queued."""
        if self._current is not None:
            self._current.cancelled.set()
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _release(self) -> None:
        self.in_flight -= 1

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._current = job
            try:
                if job.cancelled.is_set():
                    job.post("error", RequestError("cancelled before it started"))
                else:
                    job.post("done", run_plan(self.backend, job.plan, job))
            except RequestError as exc:
                job.post("error", exc)
            except Exception as exc:  # the server must keep serving; the client gets a 500
                logger.exception("generation failed")
                job.post("error", exc)
            finally:
                job.loop.call_soon_threadsafe(self._release)
