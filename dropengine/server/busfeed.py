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
- **A resume while the log cannot be read** (an election, a node down): never a ``reset``
  (the issue allows one only where the log was trimmed), and never an id behind the
  client's cursor. The choice: :func:`catch_up` retries the look (``info``/``read``) while
  the client stays, sending heartbeats whose id is the position the client already has,
  for up to ``resume_wait_s`` (:data:`RESUME_WAIT_S`, 20 s: an election here takes 4-9 s);
  if the log still cannot be read (or is gone) it ENDS the response, so the client
  reconnects with its own id (here or on another frontend). If the ring catches up
  meanwhile (following resumed), the ring serves it. Counted in
  ``dropengine_resumes_ended_total``. (Rejected: a reset "from now" - it loses alerts the
  log still holds; and waiting with no bound - a client held by a frontend whose bus is
  gone for good never tries another one.)
- **Start-up** (:func:`probe`, :meth:`BusFeed.start`): a bus that does not answer (a
  timeout, no responders, no leader) is waited for with backoff, one warning per outage,
  until SIGINT/SIGTERM; only definite answers fail at once (no alert log yet, a first
  connect that fails within the connect timeout).
- :class:`BusServer` is the HTTP side (:class:`~dropengine.server.app.StreamServer`: routes,
  keys, caps, filters, heartbeats, the live page) over that hub; ``/healthz`` is degraded
  (503) while the bus is unreachable or the log cannot be read.
- **Never less than accepted** (SPEC 7: each connection only post-filters what was detected):
  the log holds only what the detectors detected, so the frontend reads their recorded
  options (:func:`~dropengine.bus.registry.recorded_detectors`, at start and every
  :data:`DETECTORS_EVERY_S`) and refuses with a 400 naming the parameter and the detectors'
  value a request the log cannot honour exactly (the rule, in one place:
  :func:`~dropengine.server.params.check_served`): a ``types`` entry not detected by every
  partition; a ``threshold`` below the largest detector threshold, or any threshold when a
  detector measures in probability points or from an anchor; a ``line_threshold`` below the
  largest detector line threshold (any, with an anchor); a ``direction`` or attribute filter
  outside a detector's own. Every record counts, also one of an older partition count (its
  alerts may still be in the log). With no detector recorded yet every request is accepted
  (``/healthz`` says so under ``detectors``). The ``connected`` frame echoes the steam
  settings when every detector detecting steam has the same ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core.alerts import SIGNALS
from ..core.errors import BusError
from ..core.filters import AlertFilter
from ..core.options import DetectOptions
from .app import CatchUp, StreamServer
from .hub import Cursor, Hub, sse_frame
from .ingest import Metrics, ServeConfig
from .params import ParamError, StreamRequest, agreed_steam, check_served

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..bus.config import BusConfig
    from ..bus.connect import Bus
    from ..bus.log import AlertLog, LogEntry, LogInfo
    from ..bus.registry import DetectorRecord

__all__ = ["BusFeed", "BusServer", "FeedCounters", "catch_up", "needs_log", "probe"]

log = logging.getLogger("dropengine.serve")

#: Log sequences read per backfill step (then the ring is looked at again).
BACKFILL_CHUNK = 1000
#: How long a resume that needs the log waits (heartbeats sent meanwhile) for a log that
#: cannot be read (an election: 4-9 s on a loaded 3-node cluster) before ending the response.
RESUME_WAIT_S = 20.0
#: How often a frontend reads the detectors' recorded options again (seconds).
DETECTORS_EVERY_S = 5.0
#: The first pause between two looks at a log that does not answer (doubling to 1 s).
_RETRY_FIRST_S = 0.1


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
    #: Resumes whose response was ended because the log could not be read (no reset: the
    #: client resumes with its own id).
    resumes_ended: int = 0


def needs_log(hub: Hub, cursor: Cursor | None) -> bool:
    """Whether resuming from ``cursor`` needs the log (:func:`catch_up`): it is older than the
    ring or ahead of this hub. Otherwise :meth:`Hub.subscribe` serves it at once (from the
    ring, or with a reset: no cursor, another epoch)."""
    return cursor is not None and cursor.epoch == hub.epoch and \
        not hub.unbuffered_upto() <= cursor.seq < hub.next_seq


async def catch_up(hub: Hub, flt: AlertFilter, cursor: Cursor, notify: Callable[[], None], reader: LogReader,
                   counters: FeedCounters, *, chunk: int = BACKFILL_CHUNK,
                   now_ms: Callable[[], int] = _now_ms, heartbeat_s: float = 1.0,
                   wait_s: float = RESUME_WAIT_S) -> CatchUp:
    """A resume the ring alone cannot serve (see the module docstring): yields frames (bytes)
    to send first, then ``(subscriber, reset reason or None)`` once - or nothing more, when the
    response is to end (the log could not be read; see below).

    While the log cannot be read (:class:`~dropengine.bus.connect.BusUnavailable`: an
    election, a node down) each look is retried for up to ``wait_s`` seconds, with a
    heartbeat every ``heartbeat_s`` carrying the position the client already has (never an
    id behind its cursor). If the log still cannot be read, or its answer is definite (the
    log deleted), the response ENDS (no reset: nothing was trimmed) and the client resumes
    with its own id, here or on another frontend."""
    from ..bus.connect import BusUnavailable

    def covered() -> bool:  # the ring (or a rebase's plain reset) can serve it now: no log needed
        return cursor.epoch != hub.epoch or hub.unbuffered_upto() <= cursor.seq < hub.next_seq

    def heartbeat(pos: Cursor) -> bytes:
        return sse_frame({"type": "heartbeat", "id": str(pos), "timestamp": now_ms()}, str(pos))

    deadline = time.monotonic() + wait_s

    def ended(what: str, exc: BaseException) -> None:
        """The response ends here (no subscriber: :meth:`StreamServer._stream` ends the body
        properly, not as a cut slow client); the client resumes with its own id."""
        counters.resumes_ended += 1
        log.warning("resume from %s: %s (%s): response ended, the client resumes with its own id", cursor, what, exc)

    got: list[Any] = []
    async for beat in _patiently(reader.info, lambda: heartbeat(cursor), got, heartbeat_s, deadline,
                                 ready=covered):
        yield beat
    if not got:  # the hub caught up while the log could not be read: the ring serves it
        yield hub.subscribe(flt, cursor, notify)
        return
    if isinstance(got[0], BaseException):
        ended("cannot read the alert log", got[0])
        return
    info: LogInfo = got[0]
    if cursor.epoch != hub.epoch or cursor.seq < info.first_seq - 1 or cursor.seq >= hub.next_seq:
        # another epoch, trimmed from the log, or ahead of this frontend (honoured up to the log's last)
        yield hub.subscribe(flt, cursor, notify, log_first=info.first_seq, log_last=info.last_seq)
        return
    pos, epoch, counted = cursor.seq, hub.epoch, False
    while pos < (upto := hub.unbuffered_upto()):
        hi = min(upto, pos + chunk)

        async def entries(lo: int = pos + 1, hi: int = hi) -> list[tuple[int, Any, int]]:
            return [(e.seq, e.alert, e.produced_ms) async for e in reader.read(lo, hi)]

        got = []
        deadline = time.monotonic() + wait_s
        beat_here = functools.partial(heartbeat, Cursor(epoch, pos))  # up to pos is the client's already
        async for beat in _patiently(entries, beat_here, got, heartbeat_s, deadline):
            yield beat
        if isinstance(got[0], BaseException):
            if isinstance(got[0], BusUnavailable) or hub.epoch == epoch:
                ended(f"reading the alert log after {epoch}-{pos} failed", got[0])
                return
            got = [[]]  # (the log was recreated meanwhile: handled below)
        if hub.epoch != epoch:  # the log was recreated meanwhile
            yield hub.subscribe(flt, cursor, notify)
            return
        if not counted:
            counters.backfills += 1
            counted = True
        counters.backfilled += len(got[0])
        items = hub.backfill(pos, hi, got[0], flt, now_ms())
        if items:
            yield b"".join(i.frame for i in items)
        pos = hi
    # the ring holds everything after pos (or pos is its newest): subscribe now, no await since the check
    yield hub.subscribe(flt, Cursor(epoch, pos), notify, log_last=info.last_seq)


async def _patiently(call: Callable[[], Awaitable[Any]], beat: Callable[[], bytes], out: list[Any],
                     heartbeat_s: float, deadline: float, *,
                     ready: Callable[[], bool] | None = None) -> AsyncIterator[bytes]:
    """``await call()`` for :func:`catch_up`, yielding ``beat()`` every ``heartbeat_s`` while
    it runs or waits to be tried again. Appends to ``out`` the result, or the exception when
    it is definite or the log still does not answer at ``deadline``; nothing when
    ``ready()`` says the log is not needed any more. Ends early when the client leaves (the
    generator is closed: the attempt is cancelled)."""
    from ..bus.connect import BusUnavailable

    pause = _RETRY_FIRST_S
    next_beat = time.monotonic() + heartbeat_s

    async def until(done: asyncio.Future[Any] | None, end: float) -> AsyncIterator[bytes]:
        """Wait for ``done`` (or until ``end``), a heartbeat whenever one is due."""
        nonlocal next_beat
        while (done is None or not done.done()) and (now := time.monotonic()) < end:
            wake = min(end, next_beat)
            if done is None:
                await asyncio.sleep(max(0.0, wake - now))
            else:
                await asyncio.wait({done}, timeout=max(0.0, wake - now))
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + heartbeat_s
                yield beat()

    while True:
        if ready is not None and ready():
            return
        task = asyncio.ensure_future(call())
        try:
            async for frame in until(task, float("inf")):
                yield frame
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, BusError):
                    await task
        exc = task.exception()
        if exc is None:
            out.append(task.result())
            return
        if not isinstance(exc, BusUnavailable) or time.monotonic() >= deadline:
            out.append(exc)
            return
        async for frame in until(None, time.monotonic() + pause):
            yield frame
        pause = min(pause * 2, 1.0)


class BusFeed:
    """Follows the alert log into ``hub`` (a :class:`Hub` numbered by the log) and watches the
    log's bounds. Built by :meth:`start`, which reads where the log is."""

    def __init__(self, bus: Bus, alert_log: AlertLog, hub: Hub, info: LogInfo, *, info_every_s: float = 1.0,
                 detectors: list[DetectorRecord] | None = None, detectors_every_s: float = DETECTORS_EVERY_S) -> None:
        self.bus = bus
        self.log = alert_log
        self.hub = hub
        self.info = info
        self.info_every_s = info_every_s
        #: The detectors' recorded options (:func:`~dropengine.bus.registry.recorded_detectors`),
        #: read at start and every ``detectors_every_s``: what :func:`check_served` judges
        #: requests by (``[]``: none recorded yet, every request accepted).
        self.detectors: list[DetectorRecord] = detectors if detectors is not None else []
        self.detectors_every_s = detectors_every_s
        self.detectors_error = ""
        self._detectors_at = time.monotonic()
        self.counters = FeedCounters()
        #: Why reading the log failed last (cleared when it works again).
        self.info_error = ""
        self.follow_error = ""
        self._batch: list[tuple[int, Any, int]] = []
        self._flushing = False
        self._follow_task: asyncio.Task[None] | None = None
        self._info_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, bus: Bus, config: ServeConfig, *, info_every_s: float = 1.0,
                    detectors_every_s: float = DETECTORS_EVERY_S) -> BusFeed:
        """Read the log's bounds and epoch, build the hub (its ring to be filled with the log's
        newest ``buffer_size`` alerts) and start following. A bus that does not answer is
        waited for (the caller cancels to give up); :class:`BusError` for a definite answer
        (no alert log)."""
        from ..bus.connect import retry_unavailable
        from ..bus.log import AlertLog
        from ..bus.registry import recorded_detectors

        alert_log = AlertLog(bus)

        async def bounds() -> tuple[LogInfo, Hub, list[DetectorRecord]]:
            info = await alert_log.info()
            return info, await cls._new_hub(alert_log, info, config), await recorded_detectors(bus)

        # a bus that does not answer (an election) is waited for, as while following; the
        # detectors' options are read before the first request is served (never judged blind)
        info, hub, detectors = await retry_unavailable(f"read the alert log {bus.config.alert_stream}", bounds,
                                                       logger=log)
        feed = cls(bus, alert_log, hub, info, info_every_s=info_every_s, detectors=detectors,
                   detectors_every_s=detectors_every_s)
        feed._log_detectors()
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
            if evicted < 0:  # the probed message was deleted: its time is unknown, so the ring
                evicted = _now_ms()  # covers `since` from now on (a reset before; never a silent gap)
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
            if time.monotonic() - self._detectors_at >= self.detectors_every_s:
                await self.look_at_detectors()

    async def look_at_detectors(self) -> None:
        """Read the detectors' recorded options again (a detector restarted with other options,
        a partition added). When they cannot be read, the last ones read stay in force."""
        from ..bus.registry import recorded_detectors

        self._detectors_at = time.monotonic()
        try:
            records = await recorded_detectors(self.bus)
        except Exception as exc:  # (never the watch task's end: lag and rebases are looked at here too)
            if not self.detectors_error:
                log.warning("cannot read the detectors' options (%s): judging requests by the last ones read", exc)
            self.detectors_error = str(exc)
            return
        self.detectors_error = ""
        if records != self.detectors:
            self.detectors = records
            self._log_detectors()

    def _log_detectors(self) -> None:
        if not self.detectors:
            log.info("no detector has recorded its options yet: every request is accepted")
            return
        for r in self.detectors:
            log.info("detector %d/%d detects %s", r.partition, r.partitions, r.options.as_dict())

    def detector_options(self) -> list[DetectOptions]:
        """The options requests are judged by (:func:`check_served`): every recorded detector's."""
        return [r.options for r in self.detectors]

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


async def probe(bus_config: BusConfig, stop: asyncio.Event | None = None) -> str | None:
    """Connect, read the alert log's bounds, disconnect: what ``serve --bus`` checks before it
    starts. :class:`BusError` for a definite answer: no server answers the first connect
    (within its connect timeout), or the log does not exist yet. A bus that answers nothing
    else (a request timed out, no leader during an election) is waited for (a warning per
    outage) until it answers, or until ``stop`` is set: then ``None``, also during the first
    connect (before session 18 a stop there waited for it, up to its connect timeout)."""
    from ..bus.connect import StreamNotFound, connect, connect_unless, retry_unavailable, unless_stopped
    from ..bus.log import AlertLog

    name = "dropengine-serve-probe"
    first = await (connect(bus_config, name=name) if stop is None else connect_unless(bus_config, stop, name=name))
    if first is None:  # (stopped during the first connect)
        return None
    async with first as bus:
        alert_log = AlertLog(bus)
        reading = await unless_stopped(
            retry_unavailable(f"read the alert log {bus_config.alert_stream}", alert_log.info, logger=log), stop)
        if reading is None:
            return None
        try:
            info = reading.result()
        except StreamNotFound as exc:
            raise StreamNotFound(f"{exc}: no alert log yet (`dropengine detect` creates it)") from None
    return f"epoch {info.epoch}, seq {info.first_seq}..{info.last_seq}"


async def _unless_signalled(start: Coroutine[Any, Any, BusFeed]) -> BusFeed | None:
    """``await start``, or ``None`` when SIGINT/SIGTERM comes first.

    uvicorn handles those signals itself but does not interrupt a lifespan's start-up (it
    only stops serving once the start-up has returned), and :meth:`BusFeed.start` waits for
    a bus that does not answer. So while it waits, the signals (in the main thread: the CLI)
    also reach this wait, after uvicorn's own handler has seen them."""
    task = asyncio.ensure_future(start)
    if threading.current_thread() is not threading.main_thread():
        return await task  # (tests: a server in a thread; cancelled with its loop)
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(signalled.set)
        prev = previous.get(signal.Signals(signum))
        if callable(prev):
            prev(signum, frame)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    stopped = asyncio.ensure_future(signalled.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()


class BusServer(StreamServer):
    """The stateless frontend: ``self.app`` is the ASGI app. Connects to the bus in its
    lifespan (``bus_config``); see the module docstring."""

    def __init__(self, bus_config: BusConfig, config: ServeConfig | None = None, *, info_every_s: float = 1.0,
                 name: str = "dropengine-serve", resume_wait_s: float = RESUME_WAIT_S,
                 detectors_every_s: float = DETECTORS_EVERY_S) -> None:
        self.bus_config = bus_config
        self.resume_wait_s = resume_wait_s
        self.detectors_every_s = detectors_every_s
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
            feed = await _unless_signalled(BusFeed.start(bus, self.config, info_every_s=self.info_every_s,
                                                         detectors_every_s=self.detectors_every_s))
        except BaseException:
            await bus.close()
            raise
        if feed is None:  # SIGINT/SIGTERM while the bus did not answer: the server stops before serving
            try:
                yield
            finally:
                await bus.close()
            return
        self.feed = feed
        self._bus, self.hub = bus, self.feed.hub
        log.info("following the alert log %s at %s (epoch %s, seq %d..%d)", self.bus_config.alert_stream,
                 self.bus_config.display(), self.hub.epoch, self.feed.info.first_seq, self.feed.info.last_seq)
        try:
            with _gc_tuned(self.config.gc_threshold0):
                yield
        finally:
            await self.feed.stop()
            await bus.close()

    def refuse(self, req: StreamRequest) -> ParamError | None:
        """A request the alert log cannot serve exactly (:func:`check_served`, judged by the
        detectors' recorded options; none recorded yet: accepted)."""
        if self.feed is None:
            return None
        try:
            check_served(req.filter, self.feed.detector_options())
        except ParamError as exc:
            return exc
        return None

    def steam_settings(self) -> dict[str, Any] | None:
        """The detectors' steam settings when they all agree (:func:`agreed_steam`), else ``None``."""
        return agreed_steam(self.feed.detector_options()) if self.feed is not None else None

    def _catch_up(self, req: StreamRequest, notify: Callable[[], None]) -> CatchUp | None:
        cursor, hub = req.cursor, self.hub
        if cursor is None or not needs_log(hub, cursor):
            return None  # the ring (or a plain reset) serves it: subscribe now
        assert self.feed is not None
        return catch_up(hub, req.filter, cursor, notify, self.feed.log, self.feed.counters,
                        heartbeat_s=req.heartbeat_s, wait_s=self.resume_wait_s)

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
            "detectors": self._detectors_status(),
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

    def _detectors_status(self) -> dict[str, Any]:
        """``/healthz``'s word on what requests are judged by (the detectors' recorded options)."""
        feed = self.feed
        records = feed.detectors if feed is not None else []
        out: dict[str, Any] = {
            "recorded": [{"partition": f"{r.partition}/{r.partitions}", "saved_ms": r.saved_ms,
                          "options": r.options.as_dict()} for r in records],
        }
        if not records:
            out["note"] = "no detector has recorded its options yet: every request is accepted"
        if feed is not None and feed.detectors_error:
            out["error"] = f"cannot read them (judging by the last ones read): {feed.detectors_error}"
        return out

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
            ("dropengine_resumes_ended_total", "counter",
             "resumes ended because the log could not be read (the client retries with its own id)",
             fc.resumes_ended),
        ]

