"""Server-Sent Events, both ways (WHATWG event-stream rules): the one SSE module.

:class:`SSEParser` is a pure, incremental parser. Feed it text as it arrives (any
chunking); it returns complete events. An event is only dispatched on its terminating
blank line, so a partial event cut by a disconnect or by the end of a capture is never
parsed: :meth:`SSEParser.close` discards it and says so.

:func:`encode_event` and :func:`encode_comment` are the encoders every writer uses (the
server's hub, mock-upstream, the simulator's ``.sse`` files): whatever they write, the
parser reads back as the same event, however the bytes are cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..core.errors import ConfigError

__all__ = ["FIELD_NAMES", "LINE_PREFIXES", "SSEEvent", "SSEParser", "encode_comment", "encode_event"]

#: The fields of an SSE event (WHATWG "server-sent events"); any other name is ignored.
FIELD_NAMES: Final = ("data", "event", "id", "retry")
#: How a line of an SSE stream may start: a field, or ``:`` (a comment); format detection
#: (io.recordings) votes with these.
LINE_PREFIXES: Final = (*(f"{name}:" for name in FIELD_NAMES), ":")

_NEWLINE: Final = re.compile(rb"\r\n|\r|\n")


def _field(name: bytes, value: str | None) -> bytes:
    if value is None:
        return b""
    if "\n" in value or "\r" in value:
        # one field is one line: a line break would end it and start another field
        raise ConfigError(f"{name.decode()}: {value!r} must not contain a line break")
    return name + b": " + value.encode() + b"\n"


def encode_event(
    data: bytes | str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """One SSE event as bytes: optional ``event:``, ``id:``, ``retry:`` lines, then ``data``
    as one ``data:`` line per line of it, then the blank line that dispatches it.

    ``data`` may hold line breaks (``\\n``, ``\\r\\n`` or ``\\r``): each line becomes its own
    ``data:`` line, which the parser joins with ``\\n`` (so ``\\r\\n`` and ``\\r`` come back as
    ``\\n``, as in every SSE client). Compact JSON has none, so the common case is the one
    line ``data: <json>``. ``event`` and ``id`` must be one line (``id`` without NUL, which
    clients ignore), ``retry`` a non-negative integer (ms): :class:`ConfigError` otherwise.
    An ``event`` of ``None`` or ``"message"`` writes no ``event:`` line (the default type).
    """
    raw = data.encode() if isinstance(data, str) else data
    if b"\n" in raw or b"\r" in raw:
        body = b"".join(b"data: " + part + b"\n" for part in _NEWLINE.split(raw))
    else:
        body = b"data: " + raw + b"\n"
    if event is None and id is None and retry is None:
        return body + b"\n"  # the hot path: the hub and the mock write one data line per event
    if id is not None and "\x00" in id:
        raise ConfigError(f"id: {id!r} must not contain NUL (clients ignore such an id)")
    if retry is not None and (type(retry) is not int or retry < 0):
        raise ConfigError(f"retry: {retry!r} must be a non-negative integer (ms)")
    head = _field(b"event", None if event == "message" else event) + _field(b"id", id)
    if retry is not None:
        head += b"retry: %d\n" % retry
    return head + body + b"\n"


def encode_comment(text: str = "") -> bytes:
    """A comment block (``:`` lines and a blank line): a heartbeat that keeps proxies and
    clients from timing out. The parser dispatches nothing for it."""
    lines = _NEWLINE.split(text.encode()) if text else [b""]
    return b"".join(b": " + line + b"\n" if line else b":\n" for line in lines) + b"\n"


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

    __slots__ = ("_blocks", "_bom", "_buf", "_cr", "_data", "_event", "_id", "_line", "_pending", "_retry", "_size",
                 "_start")

    def __init__(self) -> None:
        #: The text of the unfinished line, in the pieces it came in: joined once, when the
        #: chunk that ends the line arrives (joining on every chunk made a long line cut into
        #: small chunks cost O(n^2), e.g. a vendor's multi-MB initial_state frame).
        self._buf: list[str] = []
        self._size = 0  # characters in _buf
        self._blocks = 0  # blank lines seen: blocks ended (events, comments)
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
    def unfinished(self) -> int:
        """Characters of the line not ended yet: a reader caps it to refuse a line (an event)
        that never ends without holding it whole first."""
        return self._size

    @property
    def blocks(self) -> int:
        """Blocks ended so far (blank lines: an event dispatched, a comment such as a ping, an
        empty block): a reader's sign of life, which bytes of a line that never ends are not."""
        return self._blocks

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
        if "\n" not in chunk and "\r" not in chunk:  # the line goes on: keep the piece
            self._cr = False
            if chunk:
                self._buf.append(chunk)
                self._size += len(chunk)
            return []
        self._cr = chunk.endswith("\r")
        text = "".join(self._buf) + chunk if self._buf else chunk
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        rest = lines.pop()
        self._buf = [rest] if rest else []
        self._size = len(rest)
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
        self._buf = []
        self._size = 0
        self._reset()
        return partial

    def _reset(self) -> None:
        self._data = []
        self._event = ""
        self._retry = None
        self._pending = False

    def _line_in(self, line: str) -> SSEEvent | None:
        if not line:
            self._blocks += 1
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
