"""The SSE response of ``dropengine serve``: one coroutine per connection, one shared fan-out.

Why not sse-starlette's ``EventSourceResponse`` (still selectable, ``StreamServer.sse_response``):
it runs a task group of three to four tasks per connection, and each send goes through an
anyio cancel scope (its send timeout), starlette's two ``send`` wrappers and h11, after a
``wait_for`` (a task and a timer) in the frames loop. At 1,000 connections x 10 sends/s that
was about 7x what a bare asyncio server spends per send (benchmarks/server_load.py).

Here, per connection: one :class:`SSEStream` (the ASGI response) whose coroutine sends the
head, the ``connected`` frame, any catch-up and reset, and then *parks* on one future, plus
one parked task reading ``receive()`` for ``http.disconnect``. Nothing is allocated per send:

- The hub calls :meth:`SSEStream.notify` when it queued something; the stream is marked in its
  :class:`Fanout`, which flushes every marked stream in ONE loop callback after the
  publish. A parked stream whose transport accepts data (uvicorn's cycle: not paused for
  writing, not closing, a chunked HTTP/1.1 body) gets its pending frames written straight
  to the transport as one HTTP/1.1 chunk: the bytes h11 would write for the same body
  message. The frames themselves are encoded once per alert by the hub and shared.
- Anything else (the transport paused by a slow reader, no uvicorn cycle, HTTP/1.0, a
  shutdown, a cut) wakes the coroutine, which sends through the ASGI ``send`` as before,
  with the send timeout applied only when the send can block (the transport is paused).
- Heartbeats: one timer per connection, armed once per heartbeat interval, never per send.
  When it fires it checks when the stream last sent; if that was less than ``heartbeat_s``
  ago it re-arms for the remainder, so a heartbeat still goes out exactly ``heartbeat_s``
  after the last frame, as the old ``wait_for`` loop did.
- Disconnect: the ``receive()`` task sees ``http.disconnect``; a direct write never goes to
  a closed transport (checked before each write).
- Shutdown: the server's protocol (:mod:`.asgi`) calls the callable the stream put into
  the scope under :data:`SHUTDOWN_KEY` when uvicorn begins a graceful shutdown: the stream
  sends what is pending and ends its chunked body properly (the client resumes elsewhere).

The wire bytes (head, frames, chunking, the end of the body), ids, heartbeats, resets and
the slow-client policy (cut on overflow or on a send blocked for ``send_timeout_s``) are
those of the sse-starlette response: tests/test_h14_server_*.py compare them byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from .hub import Hub, Subscriber, reset_frame, sse_frame

__all__ = ["CYCLE_KEY", "HEADERS", "SHUTDOWN_KEY", "Fanout", "SSEStream"]

#: The response head, in sse-starlette's order (a test pins it against ``EventSourceResponse``).
HEADERS: Final = [
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
]

#: Scope key under which the outermost ASGI layer puts uvicorn's request-response cycle
#: (its ``send`` is a bound method of it): the transport and its flow control.
CYCLE_KEY: Final = "dropengine.cycle"
#: Scope key of the callable the server's protocol calls when a graceful shutdown begins.
SHUTDOWN_KEY: Final = "dropengine.shutdown"

#: A deferred subscription: frames to send first, then once the subscriber and its reset reason.
CatchUp = AsyncIterator["bytes | tuple[Subscriber, str | None]"]

log = logging.getLogger("dropengine.serve")

_CLOSE_S: Final = 1.0

_END: Final = {"type": "http.response.body", "body": b"", "more_body": False}


def _now_ms() -> int:
    return int(time.time() * 1000)


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk: what h11 writes for a non-empty body message."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class _SendTimeout(Exception):
    """A send blocked (the reader stopped reading) for longer than the send timeout."""


class Fanout:
    """The streams of one server that have something to send, flushed together in one event
    loop callback (scheduled by the first :meth:`mark` after a flush): one pass over the
    connections per publish, no task wake-up per connection."""

    def __init__(self) -> None:
        self._marked: list[SSEStream] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    def mark(self, stream: SSEStream) -> None:
        loop = asyncio.get_running_loop()
        if self._scheduled is not loop:  # (a flush left pending on a loop that stopped never runs)
            self._marked = []
            self._scheduled = loop
            loop.call_soon(self._flush)
        self._marked.append(stream)

    def _flush(self) -> None:
        self._scheduled = None
        marked, self._marked = self._marked, []
        now = asyncio.get_running_loop().time()
        # Chunks built in this flush, by the id of their one queued item: every item queued is alive
        # (in a queue) when the flush starts, so no two of them share an id while it runs.
        chunks: dict[int, bytes] = {}
        for stream in marked:
            try:
                stream._deliver(now, chunks)
            except Exception:  # one stream's failure must not cost the others their alerts
                log.exception("delivering to a stream failed; it is cut")
                stream.end()


class SSEStream:
    """One connection's ``text/event-stream`` response (see the module docstring).

    The server builds it, subscribes (handing :meth:`notify` to the hub) and calls
    :meth:`attach` with the subscriber, or passes ``catch_up`` (a deferred subscription that
    yields frames and then once ``(subscriber, reset reason)``). ``cut`` is the server's
    slow-client cut (counted once, slot freed, socket aborted: it calls :meth:`end`),
    ``timed_out`` the same for a send that timed out, ``release`` frees the slot however the
    response ends (called once here; the server makes it idempotent)."""

    def __init__(
        self, hub: Hub, fanout: Fanout, *, heartbeat_s: float, send_timeout_s: float,
        cut: Callable[[], None], timed_out: Callable[[], None], release: Callable[[], None],
    ) -> None:
        self.hub = hub
        self.sub: Subscriber | None = None
        self.reset: str | None = None
        self._fanout = fanout
        self._first = b""
        self._catch_up: CatchUp | None = None
        self._reset_ms = 0
        self._heartbeat_s = heartbeat_s
        self._send_timeout_s = send_timeout_s
        self._cut = cut
        self._timed_out = timed_out
        self._release = release
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._parked = False  # the coroutine waits on _waiter: deliveries may write directly
        self._marked = False
        self._cycle: Any = None  # uvicorn's cycle (flow control: whether a send can block)
        self._transport: Any = None  # its transport, once direct writes are possible
        self._last = 0.0  # loop time of the last frame sent
        self._timer: asyncio.TimerHandle | None = None
        self._beat = False  # the heartbeat timer asked the coroutine to send a heartbeat
        self._stopping = False  # graceful shutdown: send what is pending, end the body
        self._ended = False  # cut, or the client left: send nothing more
        self._gone = False  # the client left (http.disconnect)
        self._cancelled = False  # we cancelled the coroutine (the client left mid-send)

    # -- called by the server and the hub ---------------------------------------------------
    def start_with(self, first: bytes, catch_up: CatchUp | None, now_ms: int) -> None:
        """The ``connected`` frame, the deferred subscription if any, and the time a reset
        frame (sent after them) carries."""
        self._first, self._catch_up, self._reset_ms = first, catch_up, now_ms

    def attach(self, sub: Subscriber, reset: str | None) -> None:
        """The subscriber (subscribed now, with its backlog) and its up-front reset reason."""
        self.sub, self.reset = sub, reset

    def notify(self) -> None:
        """The hub queued something for this stream (or marked it overflowed)."""
        if not self._marked and not self._ended:
            self._marked = True
            self._fanout.mark(self)

    def end(self) -> None:
        """Send nothing more (the server cut this client); the coroutine returns."""
        self._ended = True
        self._wake()

    def stop(self) -> None:
        """Graceful shutdown: send what is pending, then end the chunked body properly."""
        self._stopping = True
        self._wake()

    # -- fan-out side (event loop callbacks) -----------------------------------------------------
    def _wake(self) -> None:
        self._parked = False  # the coroutine owns the stream again until it parks
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _writable(self) -> bool:
        # (a lost connection's transport is closing; the body is complete only after the coroutine ran)
        t = self._transport
        return t is not None and not self._cycle.flow.write_paused and not t.is_closing()

    def _deliver(self, now: float, chunks: dict[int, bytes]) -> None:
        self._marked = False
        sub = self.sub
        if sub is None or self._ended:
            return
        if sub.overflowed:
            self._cut()  # fell too far behind: cut; the client resumes from its last id
            return
        if not sub.pending or not self._parked:
            return  # (a busy coroutine takes what is pending before it parks again)
        t = self._transport
        if t is None or self._cycle.flow.write_paused or t.is_closing():
            self._wake()  # the general path: an ASGI send, which waits while the transport is paused
            return
        while True:
            entries = self.hub.take(sub)
            if len(entries) == 1:  # the common case: one chunk per alert, built once per flush for all streams
                e = entries[0]
                data = chunks.get(id(e))
                if data is None:
                    data = chunks[id(e)] = chunk(e.frame)
            else:
                data = chunk(b"".join([e.frame for e in entries]))
            t.write(data)
            self._last = now
            if not sub.pending:
                return
            # more than one take's worth (a burst after a reconnect): one chunk per take, as the
            # coroutine writes them; a transport that stops taking data hands the rest to it
            if self._cycle.flow.write_paused or t.is_closing():
                self._wake()
                return

    def _heartbeat_due(self) -> None:
        self._timer = None
        if not self._parked:
            return  # the coroutine is busy; it re-arms the timer when it parks
        loop = self._loop
        assert loop is not None
        now = loop.time()
        due = self._last + self._heartbeat_s
        if due > now:  # something was sent since the timer was armed: a heartbeat is due later
            self._timer = loop.call_at(due, self._heartbeat_due)
            return
        sub = self.sub
        assert sub is not None
        if sub.pending or sub.overflowed or self._stopping or self._ended:
            self._wake()  # an alert came in as the timer fired: it goes before any cursor
            return
        if self._writable():
            self._transport.write(chunk(self._heartbeat_frame(sub)))
            self._last = now
            self._timer = loop.call_at(now + self._heartbeat_s, self._heartbeat_due)
        else:
            self._beat = True
            self._wake()

    def _heartbeat_frame(self, sub: Subscriber) -> bytes:
        hw = str(self.hub.position(sub))  # all of it considered for this client: a safe cursor
        return sse_frame({"type": "heartbeat", "id": hw, "timestamp": _now_ms()}, hw)

    # -- the ASGI response ---------------------------------------------------------------------
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            if scope.get("method", "GET").upper() == "HEAD":  # headers only, no stream (as sse-starlette)
                await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
                await send(_END)
                return
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            scope[SHUTDOWN_KEY] = self.stop
            watcher = self._loop.create_task(self._watch(receive))
            try:
                try:
                    await self._run(scope, send)
                except _SendTimeout:
                    self._timed_out()
                if self._ended and not self._gone:  # cut: its transport is aborted, nothing reaches it, but
                    await self._close(send)  # the response ends (uvicorn logs an error for one that does not)
            finally:
                watcher.cancel()
        except asyncio.CancelledError:
            task = self._task
            if not (self._cancelled and task is not None and task.uncancel() == 0):
                raise  # cancelled by someone else (uvicorn forced out): not ours to swallow
        finally:
            self._ended = True
            self._parked = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if scope.get(SHUTDOWN_KEY) is self.stop:
                del scope[SHUTDOWN_KEY]
            if self.sub is not None:  # (a catch-up may subscribe after a cut already released the slot)
                self.hub.unsubscribe(self.sub)
            self._release()

    async def _close(self, send: Any) -> None:
        """Ends the response of a client that was cut (its transport aborted): uvicorn's send
        waits at most until the abort has reached it."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_S):
                await send(_END)

    async def _watch(self, receive: Any) -> None:
        """Waits for ``http.disconnect``: the client left; the coroutine ends (now, if it waits
        on a send or a catch-up read)."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone = self._ended = True
        if self._parked:
            self._wake()
        elif self._task is not None and not self._task.done():
            self._cancelled = True
            self._task.cancel()

    async def _send(self, send: Any, data: bytes) -> None:
        await self._send_message(send, {"type": "http.response.body", "body": data, "more_body": True})
        assert self._loop is not None
        self._last = self._loop.time()

    async def _send_message(self, send: Any, message: dict[str, Any]) -> None:
        c = self._cycle
        if c is not None and not c.flow.write_paused:
            await send(message)  # uvicorn only waits when the transport is paused: no timeout needed
            return
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await send(message)
        except TimeoutError:
            raise _SendTimeout from None

    async def _run(self, scope: Any, send: Any) -> None:
        loop = self._loop
        assert loop is not None
        cycle = scope.get(CYCLE_KEY)
        if cycle is not None and all(hasattr(cycle, a) for a in ("flow", "transport", "disconnected")):
            self._cycle = cycle  # (for the send timeout; direct writes are decided below)
        await self._send_message(send, {"type": "http.response.start", "status": 200, "headers": HEADERS})
        await self._send(send, self._first)
        if self._catch_up is not None:  # read from the log first; subscribes once the ring covers the rest
            async for item in self._catch_up:
                if isinstance(item, bytes):
                    await self._send(send, item)
                else:
                    self.attach(*item)
            if self._ended:  # (cut or left while reading: nothing to register)
                return
            if self.sub is None:  # the catch-up ended the response (e.g. the log could not be read):
                await self._send_message(send, _END)  # the body ends properly; the client resumes (not a cut)
                return
        sub = self.sub
        assert sub is not None
        if self.reset is not None:
            await self._send(send, reset_frame(self.reset, str(self.hub.position(sub)), self._reset_ms))
        if self._cycle is not None and _chunked(self._cycle):
            self._transport = self._cycle.transport  # from now on, parked deliveries may write directly
        while True:
            if self._ended:
                return
            if sub.overflowed:
                self._cut()
                return  # fell too far behind: cut; the client resumes from its last id
            entries = self.hub.take(sub)
            if entries:
                await self._send(send, b"".join(e.frame for e in entries))
                continue
            if self._beat:
                self._beat = False
                await self._send(send, self._heartbeat_frame(sub))
                continue
            if self._stopping:
                await self._send_message(send, _END)  # shutting down: the body ends properly
                return
            if self._timer is None:
                self._timer = loop.call_at(self._last + self._heartbeat_s, self._heartbeat_due)
            self._waiter = loop.create_future()
            self._parked = True
            try:
                await self._waiter
            finally:
                self._waiter = None
                self._parked = False


def _chunked(cycle: Any) -> bool:
    """Whether uvicorn frames this response's body as HTTP/1.1 chunks (so a direct write of a
    chunk is what its ``send`` would write): h11 chunks a body without content-length for an
    HTTP/1.1 peer; uvicorn's httptools cycle says so itself."""
    conn = getattr(cycle, "conn", None)
    version = getattr(conn, "their_http_version", None)
    if version is not None:
        return bool(version == b"1.1")
    return getattr(cycle, "chunked_encoding", None) is True
