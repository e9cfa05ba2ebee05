"""``dropengine serve --bus``: a stateless frontend fed by the alert log (API13, SPEC 7).

No engine and no state file: the alerts come from the JetStream alert log that the
detectors publish to, and an alert's SSE id is the log's own ``{epoch}-{seq}``, so every
frontend gives it the same id and a client may resume on any of them.

- :class:`BusFeed` follows the log (:meth:`AlertLog.follow`) from ``max(first_seq,
  last_seq - buffer_size + 1)`` into a :class:`~dropengine.server.hub.Hub` numbered by the
  log (the ring is a cache of the log's tail); the hub checks contiguity (a hole becomes a
  ``reset`` for the subscribers it cost alerts). Every ``info_every_s`` it reads the log's
  bounds (lag, retention) and notices a recreated log (a new epoch: every client gets a reset).
- :func:`catch_up` serves a cursor older than the ring: the log's entries after it are read
  in chunks (:meth:`AlertLog.read`) and streamed to the client, the ring re-checked after
  each await, until the ring covers the position reached; then it subscribes, with no await
  in between, so nothing falls between the backfill and the live alerts. Memory stays
  bounded by a chunk, however old the cursor. A cursor trimmed from the log, from another
  epoch or ahead of the log gets a ``reset`` (:meth:`Hub.subscribe` names why).
- :class:`BusServer` is the HTTP side (:class:`~dropengine.server.app.StreamServer`: routes,
  keys, caps, filters, heartbeats, the live page) over that hub; ``/healthz`` is degraded
  (503) while the bus is unreachable or the log cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core.alerts import SIGNALS
from ..core.errors import BusError
from ..core.filters import AlertFilter
from .app import CatchUp, StreamServer
from .hub import Cursor, Hub
from .ingest import Metrics, ServeConfig
from .params import StreamRequest

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..bus.config import BusConfig
    from ..bus.connect import Bus
    from ..bus.log import AlertLog, LogEntry, LogInfo

__all__ = ["BusFeed", "BusServer", "FeedCounters", "catch_up", "needs_log", "probe"]

log = logging.getLogger("dropengine.serve")

#: Log sequences read per backfill step (then the ring is looked at again).
BACKFILL_CHUNK = 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


class LogReader(Protocol):
    """What :func:`catch_up` needs of the alert log (:class:`~dropengine.bus.log.AlertLog`)."""

    async def info(self) -> LogInfo: ...

    def read(self, start_seq: int, stop_seq: int) -> AsyncIterator[LogEntry]: ...


@dataclass(slots=True)
class FeedCounters:
    """The frontend's log counters (``/metrics``)."""

    #: Resumes served (partly) from the log, and the alerts read for them.
    backfills: int = 0
    backfilled: int = 0
    #: The log's newest seq minus the newest one this frontend has (at the last look).
    lag: int = 0
    #: Times the log was found recreated (a new epoch).
    rebases: int = 0
    #: Times following the log failed and was started again.
    follow_restarts: int = 0


def needs_log(hub: Hub, cursor: Cursor | None) -> bool:
    """Whether resuming from ``cursor`` needs the log (:func:`catch_up`): it is older than the
    ring or ahead of this hub. Otherwise :meth:`Hub.subscribe` serves it at once (from the
    ring, or with a reset: no cursor, another epoch)."""
    return cursor is not None and cursor.epoch == hub.epoch and \
        not hub.unbuffered_upto() <= cursor.seq < hub.next_seq


async def catch_up(hub: Hub, flt: AlertFilter, cursor: Cursor, notify: Callable[[], None], reader: LogReader,
                   counters: FeedCounters, *, chunk: int = BACKFILL_CHUNK,
                   now_ms: Callable[[], int] = _now_ms) -> CatchUp:
    """A resume the ring alone cannot serve (see the module docstring): yields frames (bytes)
    to send first, then ``(subscriber, reset reason or None)`` once."""
    try:
        info = await reader.info()
    except BusError as exc:
        # where the log is cannot be known: serve what the ring covers, else say why
        ring = hub.unbuffered_upto() <= cursor.seq < hub.next_seq or cursor.epoch != hub.epoch
        if ring:
            yield hub.subscribe(flt, cursor, notify)
        else:
            sub, _ = hub.subscribe(flt, None, notify)
            hub.counters.resets += 1
            yield sub, f"cannot read the alert log to resume {cursor} ({exc}): resuming from now"
        return
    if cursor.epoch != hub.epoch or cursor.seq < info.first_seq - 1 or cursor.seq >= hub.next_seq:
        # another epoch, trimmed from the log, or ahead of this frontend (honoured up to the log's last)
        yield hub.subscribe(flt, cursor, notify, log_first=info.first_seq, log_last=info.last_seq)
        return
    pos, epoch, counted = cursor.seq, hub.epoch, False
    while pos < (upto := hub.unbuffered_upto()):
        hi = min(upto, pos + chunk)
        try:
            entries = [(e.seq, e.alert, e.produced_ms) async for e in reader.read(pos + 1, hi)]
        except BusError as exc:
            sub, _ = hub.subscribe(flt, None, notify)
            hub.counters.resets += 1
            yield sub, f"reading the alert log after {epoch}-{pos} failed ({exc}): resuming from now"
            return
        if hub.epoch != epoch:  # the log was recreated meanwhile
            yield hub.subscribe(flt, cursor, notify)
            return
        if not counted:
            counters.backfills += 1
            counted = True
        counters.backfilled += len(entries)
        items = hub.backfill(pos, hi, entries, flt, now_ms())
        if items:
            yield b"".join(i.frame for i in items)
        pos = hi
    # the ring holds everything after pos (or pos is its newest): subscribe now, no await since the check
    yield hub.subscribe(flt, Cursor(epoch, pos), notify, log_last=info.last_seq)


class BusFeed:
    """Follows the alert log into ``hub`` (a :class:`Hub` numbered by the log) and watches the
    log's bounds. Built by :meth:`start`, which reads where the log is."""

    def __init__(self, bus: Bus, alert_log: AlertLog, hub: Hub, info: LogInfo, *, info_every_s: float = 1.0) -> None:
        self.bus = bus
        self.log = alert_log
        self.hub = hub
        self.info = info
        self.info_every_s = info_every_s
        self.counters = FeedCounters()
        #: Why reading the log failed last (cleared when it works again).
        self.info_error = ""
        self.follow_error = ""
        self._batch: list[tuple[int, Any, int]] = []
        self._flushing = False
        self._follow_task: asyncio.Task[None] | None = None
        self._info_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, bus: Bus, config: ServeConfig, *, info_every_s: float = 1.0) -> BusFeed:
        """Read the log's bounds and epoch, build the hub (its ring to be filled with the log's
        newest ``buffer_size`` alerts) and start following."""
        from ..bus.log import AlertLog

        alert_log = AlertLog(bus)
        info = await alert_log.info()
        hub = await cls._new_hub(alert_log, info, config)
        feed = cls(bus, alert_log, hub, info, info_every_s=info_every_s)
        feed._follow_task = asyncio.create_task(feed._follow(), name="follow the alert log")
        feed._info_task = asyncio.create_task(feed._watch(), name="watch the alert log")
        return feed

    @staticmethod
    async def _new_hub(alert_log: AlertLog, info: LogInfo, config: ServeConfig) -> Hub:
        start = max(info.first_seq, info.last_seq - config.buffer_size + 1, 1)
        # ``since`` can be served from the ring only after the newest alert it does not hold
        # (the one before ``start``, or, trimmed, the log's first minus a ms): its time
        evicted = -1
        probe = start - 1 if start - 1 >= info.first_seq else (start if start > 1 and start <= info.last_seq else 0)
        if probe:
            async for e in alert_log.read(probe, probe):
                evicted = e.produced_ms if probe < start else e.produced_ms - 1
        elif start > 1:  # everything before was trimmed and the log is empty: nothing older is known
            evicted = _now_ms()
        return Hub(info.epoch, next_seq=start, buffer_size=config.buffer_size,
                   buffer_age_ms=int(config.buffer_age_s * 1000), max_pending=config.max_pending,
                   evicted_ms=evicted, logged=True)

    async def stop(self) -> None:
        for task in (self._follow_task, self._info_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # -- following -------------------------------------------------------------------------------
    async def _follow(self) -> None:
        """Feed the hub from the log, forever; a failure (the log recreated, the bus gone for
        longer than the client rides out) is logged and following starts again after the
        newest seq the hub has (what the log skipped meanwhile becomes a hole: resets), once
        the log's epoch is checked (a recreated log is a rebase, never numbers of the new
        log under the old epoch)."""
        while True:
            try:
                async for e in self.log.follow(self.hub.next_seq):
                    self._batch.append((e.seq, e.alert, e.produced_ms))
                    if not self._flushing:  # entries already received are published together
                        self._flushing = True
                        asyncio.get_running_loop().call_soon(self._flush)
                self._flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._flush()
                self.counters.follow_restarts += 1
                if not self.follow_error:
                    log.warning("following the alert log failed (%s); starting again after %s", exc,
                                self.hub.high_water)
                self.follow_error = str(exc)
                await asyncio.sleep(min(1.0, self.info_every_s))
                while True:  # the log's epoch before following again
                    try:
                        info = await self.log.info()
                        break
                    except BusError as again:
                        self.info_error = str(again)
                        await asyncio.sleep(min(1.0, self.info_every_s))
                self._rebase(info)

    def _flush(self) -> None:
        self._flushing = False
        batch, self._batch = self._batch, []
        if batch:
            self.hub.publish_logged(batch, _now_ms())
            if self.follow_error:
                log.warning("following the alert log again (at %s)", self.hub.high_water)
                self.follow_error = ""

    def _rebase(self, info: LogInfo) -> bool:
        """A recreated log (another epoch): every client gets a reset and the hub goes on from
        the new log's first seq. ``False`` when the epoch is the hub's (nothing to do)."""
        if info.epoch == self.hub.epoch:
            return False
        log.warning("the alert log was recreated (epoch %s -> %s): every client gets a reset",
                    self.hub.epoch, info.epoch)
        self.counters.rebases += 1
        self._batch = []
        self.hub.rebase(info.epoch, info.first_seq if info.last_seq >= info.first_seq else info.last_seq + 1,
                        _now_ms())
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.info_every_s)
            await self.look()

    async def look(self) -> None:
        """Read the log's bounds once: lag, reachability, and a recreated log (rebase)."""
        try:
            info = await self.log.info()
        except BusError as exc:
            if not self.info_error:
                log.warning("cannot read the alert log: %s", exc)
            self.info_error = str(exc)
            return
        if self.info_error:
            log.warning("the alert log can be read again")
            self.info_error = ""
        self.info = info
        if info.epoch != self.hub.epoch:
            task = self._follow_task
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            self._rebase(info)
            self._follow_task = asyncio.create_task(self._follow(), name="follow the alert log")
        self.counters.lag = max(0, info.last_seq - (self.hub.next_seq - 1))

    def problem(self) -> str | None:
        """Why this frontend is degraded (``/healthz`` 503), ``None`` when fine."""
        if not self.bus.is_connected:
            return f"the alert bus is unreachable ({self.bus.config.display()}): reconnecting; serving the ring"
        if self.info_error:
            return f"cannot read the alert log: {self.info_error}"
        if self.follow_error:
            return f"following the alert log failed: {self.follow_error}"
        return None


async def probe(bus_config: BusConfig) -> str:
    """Connect, read the alert log's bounds, disconnect: what ``serve --bus`` checks before it
    starts (:class:`BusError` when no server answers or the log does not exist yet)."""
    from ..bus.connect import connect
    from ..bus.log import AlertLog

    async with await connect(bus_config, name="dropengine-serve-probe") as bus:
        try:
            info = await AlertLog(bus).info()
        except BusError as exc:
            raise BusError(f"{exc} (no alert log {bus_config.alert_stream} yet? `dropengine detect` creates it)") \
                from None
    return f"epoch {info.epoch}, seq {info.first_seq}..{info.last_seq}"


class BusServer(StreamServer):
    """The stateless frontend: ``self.app`` is the ASGI app. Connects to the bus in its
    lifespan (``bus_config``); see the module docstring."""

    def __init__(self, bus_config: BusConfig, config: ServeConfig | None = None, *, info_every_s: float = 1.0,
                 name: str = "dropengine-serve") -> None:
        self.bus_config = bus_config
        self.config = config if config is not None else ServeConfig()
        if self.config.state_path is not None:
            from ..core.errors import ConfigError

            raise ConfigError(f"state_path: {str(self.config.state_path)!r}: a frontend on the bus keeps no state "
                              f"(the alert log is the state)")
        self.metrics = Metrics()
        self.info_every_s = info_every_s
        self.name = name
        #: Until the lifespan connects: a hub with nothing (no request is served before it).
        self.hub = Hub("0", logged=True)
        self.feed: BusFeed | None = None
        self._bus: Bus | None = None
        self._init_routes()

    def __repr__(self) -> str:
        return f"BusServer(bus={self.bus_config.display()!r}, {self.hub!r})"

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        from ..bus.connect import connect
        from .app import _gc_tuned

        bus = await connect(self.bus_config, name=self.name)
        try:
            self.feed = await BusFeed.start(bus, self.config, info_every_s=self.info_every_s)
        except BaseException:
            await bus.close()
            raise
        self._bus, self.hub = bus, self.feed.hub
        log.info("following the alert log %s at %s (epoch %s, seq %d..%d)", self.bus_config.alert_stream,
                 self.bus_config.display(), self.hub.epoch, self.feed.info.first_seq, self.feed.info.last_seq)
        try:
            with _gc_tuned(self.config.gc_threshold0):
                yield
        finally:
            await self.feed.stop()
            await bus.close()

    def _catch_up(self, req: StreamRequest, notify: Callable[[], None]) -> CatchUp | None:
        cursor, hub = req.cursor, self.hub
        if cursor is None or not needs_log(hub, cursor):
            return None  # the ring (or a plain reset) serves it: subscribe now
        assert self.feed is not None
        return catch_up(hub, req.filter, cursor, notify, self.feed.log, self.feed.counters)

    def status(self) -> dict[str, Any]:
        hub, feed = self.hub, self.feed
        total, largest = hub.queue_depths()
        c = hub.counters
        problem = feed.problem() if feed is not None else "not started"
        info = feed.info if feed is not None else None
        return {
            "status": "ok" if problem is None else "degraded",
            **({"reason": problem} if problem is not None else {}),
            "bus": {"servers": self.bus_config.display(), "prefix": self.bus_config.prefix,
                    "stream": self.bus_config.alert_stream,
                    "connected": bool(self._bus is not None and self._bus.is_connected),
                    "reconnects": self._bus.reconnects if self._bus is not None else 0},
            "log": {"first_seq": info.first_seq if info else None, "last_seq": info.last_seq if info else None,
                    "lag": feed.counters.lag if feed else None},
            "epoch": hub.epoch,
            "high_water": str(hub.high_water),
            "connections": len(hub.subscribers),
            "alerts_followed": c.produced,
            "alerts_by_type": {t: c.by_type.get(t, 0) for t in SIGNALS},
            "alerts_delivered": c.delivered,
            "buffered": len(hub.buffer),
            "queue_depth_total": total,
            "queue_depth_max": largest,
            "slow_clients_cut": self.metrics.slow_clients_cut,
            "holes": c.holes,
            "hole_alerts": c.hole_alerts,
            "backfills": feed.counters.backfills if feed else 0,
        }

    def _metric_lines(self, st: dict[str, Any]) -> list[tuple[str, str, str, object]]:
        c = self.hub.counters
        fc = self.feed.counters if self.feed is not None else FeedCounters()
        return [
            ("dropengine_bus_connected", "gauge", "1 while connected to the bus", int(st["bus"]["connected"])),
            ("dropengine_bus_reconnects_total", "counter", "reconnects to the bus", st["bus"]["reconnects"]),
            ("dropengine_log_lag", "gauge", "alerts in the log this frontend has not followed yet (last look)",
             fc.lag),
            ("dropengine_log_holes_total", "counter", "holes in the log's sequence (resets for clients)", c.holes),
            ("dropengine_log_hole_alerts_total", "counter", "log sequences missing in those holes", c.hole_alerts),
            ("dropengine_log_duplicates_total", "counter", "log entries received twice (dropped)", c.duplicates),
            ("dropengine_backfills_total", "counter", "resumes served from the log (older than the ring)",
             fc.backfills),
            ("dropengine_backfilled_alerts_total", "counter", "log entries read for those resumes", fc.backfilled),
            ("dropengine_log_rebases_total", "counter", "times the log was found recreated (new epoch)",
             fc.rebases),
            ("dropengine_log_follow_restarts_total", "counter", "times following the log started again",
             fc.follow_restarts),
        ]

