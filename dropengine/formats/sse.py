"""A pure, incremental Server-Sent Events parser (WHATWG event-stream rules).

Feed it text as it arrives (any chunking); it returns complete events. An event is only
dispatched on its terminating blank line, so a partial event cut by a disconnect or by
the end of a capture is never parsed: :meth:`SSEParser.close` discards it and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. ``line`` is the 1-based line on which its block started."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    line: int = 0


class SSEParser:
    """Incremental parser: ``feed(chunk) -> [SSEEvent]``; ``close() -> bool`` (partial dropped)."""

    __slots__ = ("_bom", "_buf", "_cr", "_data", "_event", "_id", "_line", "_pending", "_retry", "_start")

    def __init__(self) -> None:
        self._buf = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._line = 0
        self._start = 0
        self._pending = False  # any field seen since the last dispatch
        self._cr = False  # last chunk ended in '\r' (a '\n' may follow in the next chunk)
        self._bom = True  # nothing fed yet: a leading BOM is still to be stripped

    @property
    def last_event_id(self) -> str | None:
        """The last ``id:`` seen (it persists across events, as in the WHATWG spec)."""
        return self._id

    def feed(self, chunk: str) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._bom:
            self._bom = False
            if chunk.startswith("\ufeff"):  # WHATWG: one leading BOM is ignored
                chunk = chunk[1:]
        if self._cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        self._cr = chunk.endswith("\r")
        text = self._buf + chunk
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buf = lines.pop()
        out: list[SSEEvent] = []
        for line in lines:
            self._line += 1
            ev = self._line_in(line)
            if ev is not None:
                out.append(ev)
        return out

    def close(self) -> bool:
        """End of input. Returns True when a partial (undispatched) event was discarded."""
        partial = self._pending or bool(self._buf)
        self._buf = ""
        self._reset()
        return partial

    def _reset(self) -> None:
        self._data = []
        self._event = ""
        self._retry = None
        self._pending = False

    def _line_in(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._pending:
                return None
            ev = None
            if self._data:
                ev = SSEEvent(
                    "\n".join(self._data), self._event or "message", self._id, self._retry, self._start
                )
            self._reset()
            return ev
        if line.startswith(":"):
            return None  # comment
        if not self._pending:
            self._start = self._line
        self._pending = True
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None
