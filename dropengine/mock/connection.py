"""One stream connection of the mock upstream, whatever its transport: the frames it is sent
(``connected``, ``hot_feed_status`` on SSE, ``initial_state``, then ``odds_update`` per
release and ``heartbeat`` when quiet), its WebSocket subscription and command replies, and
the injected fault that cuts, stalls or closes it.

The transport is a ``write(json_bytes)`` coroutine given by :mod:`dropengine.mock.app`
(SSE wraps each frame in an event, WebSocket sends it as a text message); when the fault is
due :meth:`Conn.serve` raises :class:`FaultNow` and the transport acts it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core.keys import KeyRecord
from ..formats.query import StreamQuery
from .clock import ReplayClock
from .faults import Fault
from .frames import (
    command_reply,
    connected_frame,
    filter_rows,
    heartbeat_frame,
    hot_feed_status_frame,
    initial_state_frame,
    odds_update_frame,
)

__all__ = ["Conn", "ConnectionRecord", "FaultNow", "Writer"]

Writer = Callable[[bytes], Awaitable[None]]
#: A client that floods commands gets no more replies beyond this many queued.
MAX_PENDING_REPLIES = 100
_encode = msgspec.json.encode


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ConnectionRecord:
    """One stream connection attempt, for tests: ``outcome`` is updated when it ends.

    Outcomes: ``open`` (streaming), ``done`` (the client left or the server stopped),
    ``http STATUS`` (refused before the stream: 400/401/403/404/429 or an ``http`` fault),
    ``close CODE`` (WebSocket closed by the mock: auth, cap, bad parameter or a ``close`` fault),
    ``end`` (SSE ended cleanly by a ``close`` fault), ``cut``, ``stall``, ``flap``.
    """

    sport: str
    conn: int
    transport: str
    outcome: str = "open"
    fault: str | None = None


class FaultNow(Exception):
    """Raised by the frame writer when the connection's fault is due; ``data`` is the next frame."""

    def __init__(self, fault: Fault, data: bytes) -> None:
        super().__init__(fault.spec())
        self.fault = fault
        self.data = data


@dataclass(eq=False, slots=True)
class Conn:
    """The mock's side of one open stream: its query, heartbeat, fault and cursor into the
    sport's released list."""

    sport: str
    transport: str
    key: str
    record: KeyRecord
    query: StreamQuery
    heartbeat_s: int
    log: ConnectionRecord
    fault: Fault | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    sent: int = 0
    cursor: int = 0
    subscribed: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    last_send: float = 0.0

    def close(self) -> None:
        """The client left (or the transport failed): the stream loop ends at its next step."""
        self.closed = True
        self.wake.set()

    def command(self, text: str) -> None:
        """Apply one client command; its reply is queued for the stream loop."""
        if len(self.pending) >= MAX_PENDING_REPLIES:
            return
        reply, event_id, changed = command_reply(text, _now_ms())
        if changed:
            self.subscribed = event_id
        self.pending.append(reply)
        self.wake.set()

    async def emit(self, write: Writer, frame: dict[str, Any]) -> None:
        data = _encode(frame)
        fault = self.fault
        if fault is not None and fault.kind in ("cut", "stall", "close") and self.sent >= fault.after:
            raise FaultNow(fault, data)
        await write(data)
        self.sent += 1
        self.last_send = time.monotonic()
        if fault is not None and fault.kind in ("stall", "close") and self.sent >= fault.after:
            raise FaultNow(fault, b"")  # at once: a quiet stream must not delay them to the next heartbeat

    def _initial_state(self, clock: ReplayClock) -> dict[str, Any]:
        """The snapshot for this connection; takes its cursor in the same step (no await)."""
        since = self.query.since
        rows, self.cursor = clock.snapshot(self.sport, since)
        rows = filter_rows(rows, self.query, self.query.event_id)
        return initial_state_frame(self.sport, rows, since, _now_ms())

    async def serve(self, clock: ReplayClock, write: Writer, *, tier: str, start_sports: int,
                    connections: Callable[[], int]) -> None:
        """Send the stream until the connection closes (or its fault raises :class:`FaultNow`).
        ``start_sports``: ``0``, the clock is not this connection's business (``--start now``);
        ``n``, the clock starts once streams of ``n`` different sports, this one's included,
        have taken their ``initial_state`` (:meth:`ReplayClock.connected`)."""
        clock.watch(self.sport, self.wake)
        try:
            await self.emit(write, connected_frame(self.sport, tier, self.query, _now_ms()))
            if self.transport == "sse":
                rows = clock.current_rows(self.sport)
                await self.emit(write, hot_feed_status_frame(self.sport, rows, clock.clock_ms, _now_ms()))
            initial = self._initial_state(clock)
            if start_sports:
                clock.connected(self.sport, start_sports)
            await self.emit(write, initial)
            sent = 0
            while not self.closed:
                self.wake.clear()
                while self.pending and not self.closed:
                    await self.emit(write, self.pending.pop(0))
                rels = clock.released(self.sport)
                while self.cursor < len(rels) and not self.closed and not self.pending:
                    rel = rels[self.cursor]
                    self.cursor += 1
                    rows = filter_rows(rel.rows, self.query, self.subscribed or self.query.event_id)
                    if rows:
                        await self.emit(write, odds_update_frame(self.sport, rows, _now_ms()))
                        sent += 1
                        if sent % 64 == 0:
                            await asyncio.sleep(0)  # a long backlog must not starve the loop
                if self.closed or self.pending or self.cursor < len(clock.released(self.sport)):
                    continue
                left = self.heartbeat_s - (time.monotonic() - self.last_send)
                if left <= 0:
                    await self.emit(write, heartbeat_frame(self.sport, connections(), _now_ms()))
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), left)
        finally:
            clock.unwatch(self.sport, self.wake)

    async def hold(self, max_s: float) -> None:
        """A stalled connection: send nothing until the client leaves (at most ``max_s``)."""
        deadline = time.monotonic() + max_s
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), left)
