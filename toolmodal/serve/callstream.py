"""Incremental parsing of the model's output into content and tool calls, as text arrives.

The output format is `toolmodal.calls`: optional text, then `<tool_call>...</tool_call>` blocks.
`CallStream` is fed text pieces (one decoded token at a time, or the whole output at once) and
returns events: `Content` for text before the first call, `Call` for each block that parses (by
`toolmodal.calls.parse_output`, so JSON and the Python form both work). Text that might be the
start of `<tool_call>` is held back until it is decided, so a client never sees half a
delimiter. A block that does not parse is passed on as content, raw, so nothing the model wrote
is silently lost; text between or after calls is dropped, as `parse_output` drops it. The same
class serves the HTTP server's streaming and non-streaming answers and the vLLM plugin, so all
three split an output the same way.

Deliberately left out: ids and wire formats (`toolmodal.serve.responses`), and any execution of
a call: calls are only parsed.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolmodal.calls import CALL_END, CALL_START, ToolCall, parse_output


@dataclass(frozen=True)
class Content:
    """Text for the message's `content`."""

    text: str


@dataclass(frozen=True)
class Call:
    """A complete call; `index` counts calls from 0 within the output."""

    index: int
    call: ToolCall


Event = Content | Call


def held_back(text: str, delimiter: str = CALL_START) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `delimiter`."""
    for size in range(min(len(text), len(delimiter) - 1), 0, -1):
        if text.endswith(delimiter[:size]):
            return size
    return 0


class CallStream:
    """Splits output text into content and calls while it is being generated."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self._buffer = ""
        self._in_call = False
        self._seen_call = False

    def feed(self, text: str) -> list[Event]:
        """Add generated text; return the events it completes."""
        self._buffer += text
        return self._drain(final=False)

    def finish(self) -> list[Event]:
        """The output ended: flush held-back text and an unterminated call block."""
        events = self._drain(final=True)
        if self._in_call:
            self._in_call = False
            events.append(self._block(self._buffer, terminated=False))
            self._buffer = ""
        return events

    def _drain(self, final: bool) -> list[Event]:
        events: list[Event] = []
        while True:
            if not self._in_call:
                start = self._buffer.find(CALL_START)
                if start < 0:
                    keep = 0 if final else held_back(self._buffer)
                    self._emit_text(self._buffer[:len(self._buffer) - keep], events)
                    self._buffer = self._buffer[len(self._buffer) - keep:]
                    return events
                self._emit_text(self._buffer[:start], events)
                self._buffer = self._buffer[start + len(CALL_START):]
                self._in_call = self._seen_call = True
            end = self._buffer.find(CALL_END)
            if end < 0:
                return events
            events.append(self._block(self._buffer[:end], terminated=True))
            self._buffer = self._buffer[end + len(CALL_END):]
            self._in_call = False

    def _emit_text(self, text: str, events: list[Event]) -> None:
        if text and not self._seen_call:
            events.append(Content(text))

    def _block(self, body: str, terminated: bool) -> Event:
        raw = CALL_START + body + (CALL_END if terminated else "")
        parsed = parse_output(raw)
        if not parsed.calls:
            return Content(raw)
        self.calls.append(parsed.calls[0])
        return Call(len(self.calls) - 1, parsed.calls[0])


def split_output(text: str) -> tuple[str, list[ToolCall]]:
    """The whole output at once: (content with surrounding space stripped, calls)."""
    stream = CallStream()
    events = stream.feed(text) + stream.finish()
    content = "".join(e.text for e in events if isinstance(e, Content)).strip()
    return content, stream.calls
