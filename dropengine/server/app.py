"""The reference ``/v1/odds-drop`` server (SPEC section 7) on starlette + sse-starlette.

:class:`DropServer` owns one :class:`~dropengine.core.engine.DropEngine` (threshold 1 cent,
``reference=last``, so every connection's threshold and direction are exact post-filters)
and one :class:`~dropengine.server.hub.Hub`. A *source* (a replayed recording or the live
upstream) feeds quotes through :meth:`DropServer.ingest`; detection runs once and the hub
fans alerts out. Each connection only filters, holds a bounded queue and is cut when it
stops reading (counted once, its slot freed and its socket closed at once). Keys are
checked in constant time and never written anywhere. With ``--state`` the engine, the ring
and the source cursors are saved periodically without stalling the streams (a forked
child writes the snapshot), and alert ids are reserved durably before use, so a restart
after a crash never reuses one (:mod:`.state`). Engine keys are evicted by data time
(``evict_idle_s``, ``evict_started_s``); ``/healthz`` says degraded (503) with a reason when
the source stopped or the upstream has been down for two heartbeat intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets as _secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..core.alerts import Drop
from ..core.dataclock import DataClock
from ..core.engine import DropEngine
from ..core.errors import ConfigError
from ..core.keys import TIERS, KeyRecord, KeyTable
from ..core.quote import Quote
from .hub import Hub, new_epoch, sse_frame
from .page import PAGE_HTML
from .params import ParamError, parse_request
from .state import (
    encode_state,
    fork_save,
    ids_path,
    load_state,
    read_reservation,
    save_state,
    tmp_path,
    write_reservation,
)

__all__ = ["DropServer", "ServeConfig", "Source"]

log = logging.getLogger("dropengine.serve")


def _now_ms() -> int:
    return int(time.time() * 1000)


class Source(Protocol):
    """Something that feeds the server: ``run`` calls ``ingest(quotes, now_ms)`` until done.

    It may also have ``problem() -> str | None``: why it is degraded right now (``/healthz``
    then answers 503 with that reason), e.g. the upstream down for two heartbeats."""

    name: str

    async def run(self, ingest: Callable[[list[Quote], int], object], cursors: dict[str, int]) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def cursors(self) -> dict[str, int]: ...

    @property
    def reconnects(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Server settings (the ``serve`` flags)."""

    keys: KeyTable | None = None
    buffer_size: int = 10_000
    buffer_age_s: float = 300.0
    max_pending: int = 2_000
    send_timeout_s: float = 10.0
    retry_after_s: int = 5
    state_path: Path | None = None
    state_every_s: float = 30.0
    state_max_age_s: float = 600.0
    #: Young-generation threshold of Python's garbage collector while serving (``None``:
    #: leave it). Fan-out creates short-lived objects per send for every connection at once;
    #: with the default (700) they get promoted and full collections pause every stream for
    #: 150 ms (benchmarks/README.md, "Server load").
    gc_threshold0: int | None = 50_000
    #: Forget engine keys not updated for this many seconds of data time (0: never).
    evict_idle_s: float = 21_600.0
    #: Forget engine keys whose event started this many seconds ago, data time (0: never).
    evict_started_s: float = 43_200.0
    #: Periodic saves from a forked child (no pause; memory grows by what the child copies,
    #: up to about the engine's size during a save). ``False``: a worker thread, ingestion
    #: held while it encodes. Ignored where ``os.fork`` does not exist.
    state_fork: bool = True

    def __post_init__(self) -> None:
        if self.buffer_size < 1 or self.max_pending < 1:
            raise ConfigError("--buffer-size and --max-pending must be >= 1")
        if not self.buffer_age_s >= 0 or not self.send_timeout_s > 0 or not self.state_every_s > 0:
            raise ConfigError("--buffer-age, --send-timeout and --state-every must be positive")
        if self.retry_after_s < 0:
            raise ConfigError("--retry-after must be >= 0")
        if self.gc_threshold0 is not None and self.gc_threshold0 < 1:
            raise ConfigError("gc_threshold0 must be >= 1")
        for name in ("evict_idle_s", "evict_started_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"{name}: {value!r} must be a number of seconds >= 0 (0 disables it)")


@dataclass(slots=True)
class _Metrics:
    connections_total: int = 0
    rejected_400: int = 0
    rejected_401: int = 0
    rejected_403: int = 0
    rejected_429: int = 0
    send_timeouts: int = 0
    slow_clients_cut: int = 0
    state_saves: int = 0
    state_save_failures: int = 0
    keys_evicted: int = 0


class _Stop:
    """The ``shutdown_event`` handed to sse-starlette: setting it wakes the stream to end."""

    def __init__(self, wake: asyncio.Event) -> None:
        self.requested = False
        self._wake = wake

    def set(self) -> None:
        self.requested = True
        self._wake.set()

    def is_set(self) -> bool:
        return self.requested


_TRANSPORT = "dropengine.transport"


class _WithTransport:
    """The outermost ASGI layer: puts the connection's transport into the scope, so a cut
    slow client's socket can be closed at once (``abort``), not when its unread data would
    have drained. uvicorn's ``send`` is a method of the connection's cycle, which holds it;
    another server simply gets no transport (the client is then cut by ending its body)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # uvicorn forced out (a second Ctrl-C) cancels the lifespan at the loop's end: the
            # shutdown (final save) still runs in its ``finally``, and that is no failure to log
            # with a traceback (Starlette reports the cancellation as "shutdown failed")
            async def quiet(message: Any) -> None:
                task = asyncio.current_task()
                if message.get("type") == "lifespan.shutdown.failed" and task is not None and task.cancelling():
                    message = {"type": "lifespan.shutdown.complete"}
                await send(message)

            with contextlib.suppress(asyncio.CancelledError):
                await self.app(scope, receive, quiet)
            return
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None and hasattr(transport, "abort"):
                scope[_TRANSPORT] = transport
        await self.app(scope, receive, send)


class _Tracked:
    """An ASGI response wrapper that runs ``release`` however the response ends, and
    ``on_timeout`` when a send timed out (a reader that stopped reading)."""

    def __init__(self, response: Response, release: Callable[[], None], on_timeout: Callable[[], None]) -> None:
        self._response = response
        self._release = release
        self._on_timeout = on_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from sse_starlette.sse import SendTimeoutError

        try:
            await self._response(scope, receive, send)
        except SendTimeoutError:
            self._on_timeout()
        finally:
            self._release()


class DropServer:
    """The server: ``self.app`` is the ASGI app (serve it with uvicorn)."""

    def __init__(self, source: Source, config: ServeConfig | None = None) -> None:
        self.source = source
        self.config = config if config is not None else ServeConfig()
        #: Periodic saves from a forked child where ``fork`` exists (see :meth:`save_async`).
        self.fork_saves = self.config.state_fork
        self.engine = DropEngine(threshold=1)
        self._ids = ids_path(self.config.state_path) if self.config.state_path is not None else None
        self._reserve_failing = False
        self.hub = self._new_hub()
        self.metrics = _Metrics()
        #: Quotes that arrived while a consistent snapshot was being taken (ingested after it).
        self._held: list[tuple[list[Quote], int]] | None = None
        #: The child process writing a periodic save, while one runs.
        self._saving_pid: int | None = None
        self._finished = False
        #: A saving child still running after this long is killed (a stalled disk must not
        #: stop every later save); the save is reported failed and tried again next period.
        self.save_timeout_s = max(120.0, 4 * self.config.state_every_s)
        #: Data time (``dropengine.core.dataclock``: the newest ``last_update`` ingested, capped, jumps
        #: confirmed); eviction is due when it passes the next mark.
        limits = [x for x in (self.config.evict_idle_s, self.config.evict_started_s) if x > 0]
        self._clock = DataClock(int(min(limits) * 1000) if limits else None)
        self._next_evict_ms = -1
        self._evicting: asyncio.Task[int] | None = None
        #: Keys judged per eviction step on the event loop (see :meth:`evict`).
        self.evict_chunk = 20_000
        self.restore_message = ""
        self._open: dict[str, int] = {}
        self._source_task: asyncio.Task[None] | None = None
        self._source_error: str = ""
        self._cursors: dict[str, int] = {}
        self.starlette = Starlette(
            routes=[
                Route("/", self._page),
                Route("/healthz", self._healthz),
                Route("/metrics", self._metrics),
                Route("/v1/odds-drop/all", self._all),
                Route("/v1/odds-drop/multi", self._multi),
                Route("/v1/odds-drop/{sport_key}", self._one),
            ],
            lifespan=self._lifespan,
        )
        #: The ASGI app to serve (uvicorn): the routes above, plus the transport hook.
        self.app = _WithTransport(self.starlette)

    def __repr__(self) -> str:
        return f"DropServer(source={self.source.name!r}, {self.hub!r})"

    def _hub_settings(self) -> dict[str, Any]:
        return {"buffer_size": self.config.buffer_size, "buffer_age_ms": int(self.config.buffer_age_s * 1000),
                "max_pending": self.config.max_pending,
                "reserve": self._reserve if self._ids is not None else None}

    def _new_hub(self) -> Hub:
        return Hub(new_epoch(_secrets.randbits(60)), **self._hub_settings())

    def _reserve(self, upto: int) -> bool:
        """The hub's reservation hook: ids up to ``upto`` written durably before they are used
        (a few ms, once per block of ids). ``False`` when it could not be written (disk full,
        read-only): alerts keep flowing and the hub asks again at its next alert. The old file
        is removed meanwhile, since a restart that trusted it would reuse the ids issued past
        it; without it a restart starts a new epoch. Logged once per outage, not per alert."""
        assert self._ids is not None
        try:
            write_reservation(self._ids, self.hub.epoch, upto)
        except OSError as exc:
            if not self._reserve_failing:
                self._reserve_failing = True
                try:
                    self._ids.unlink(missing_ok=True)
                    after = "a restart before it is written again starts a new epoch"
                except OSError as gone:
                    after = f"and it cannot be removed either ({gone.strerror or gone}): a restart before " \
                            f"it is written again may reuse alert ids; remove {self._ids} before restarting"
                log.error("could not reserve alert ids in %s (%s); alerts go on, %s", self._ids,
                          exc.strerror or exc, after)
            return False
        if self._reserve_failing:
            self._reserve_failing = False
            log.warning("alert id reservation %s written again (ids up to %s)", self._ids, upto)
        return True

    # -- detection -----------------------------------------------------------------------------
    def ingest(self, quotes: list[Quote], now_ms: int) -> list[Drop]:
        """Detect once over ``quotes`` and fan the alerts out (called by the source). While a
        snapshot is being taken the quotes wait (in order) and ``[]`` is returned."""
        if self._held is not None:
            self._held.append((quotes, now_ms))
            return []
        drops = self.engine.observe_many(quotes, now_ms)
        if drops:
            self.hub.publish(drops, now_ms)
        if quotes and self._clock.advance(quotes, now_ms) and self._clock.ms >= self._next_evict_ms:
            self._schedule_eviction()
        return drops

    @property
    def _data_ms(self) -> int:
        """Data time, -1 before any quote (see :class:`~dropengine.core.dataclock.DataClock`)."""
        return self._clock.ms

    @_data_ms.setter
    def _data_ms(self, value: int) -> None:
        self._clock.ms = value

    # -- memory bounds ---------------------------------------------------------------------------
    def _evict_step_ms(self) -> int:
        """Data time between two evictions: a twelfth of the shorter limit, 1 s to 30 min."""
        limits = [x for x in (self.config.evict_idle_s, self.config.evict_started_s) if x > 0]
        return int(min(max(min(limits) / 12, 1.0), 1800.0) * 1000) if limits else 2**62

    def _bounds(self) -> tuple[int, int | None]:
        """``evict`` arguments for the current data time (``before_ms`` -1: no idle bound)."""
        idle, started = self.config.evict_idle_s, self.config.evict_started_s
        before = self._data_ms - int(idle * 1000) if idle > 0 else -1
        return before, (self._data_ms - int(started * 1000) if started > 0 else None)

    def _schedule_eviction(self) -> None:
        self._next_evict_ms = self._data_ms + self._evict_step_ms()
        if self._evicting is not None and not self._evicting.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop (an embedding process): evict in line
            before, started = self._bounds()
            n = self.engine.evict(before, started_before_ms=started)
            self.metrics.keys_evicted += n
            return
        self._evicting = loop.create_task(self.evict(), name="evict")

    async def evict(self) -> int:
        """Forget engine keys not updated for ``evict_idle_s`` or whose event started more than
        ``evict_started_s`` ago, both in data time (the newest ``last_update`` ingested), so
        a replay at any speed evicts what a live run would. Runs by itself as data time
        advances, on the event loop in steps of :attr:`evict_chunk` keys
        (:meth:`DropEngine.evict_iter`): between steps the loop ingests, detects and sends as
        usual (no lock, no thread), and a key refreshed before its step comes is kept.
        Returns the keys dropped. A snapshot read in a thread (a save without fork) stops it
        after its current step (it runs again when data time next advances); a shutdown
        cancels it between steps. ``keys_evicted`` counts each step as it is done."""
        if self._held is not None:  # a snapshot is reading the engine in a thread: next time
            self._next_evict_ms = self._data_ms
            return 0
        before, started = self._bounds()
        dropped = 0
        try:
            for n in self.engine.evict_iter(before, started_before_ms=started, chunk=self.evict_chunk):
                self.metrics.keys_evicted += n - dropped
                dropped = n
                await asyncio.sleep(0)  # ingestion, fan-out and saves run between steps
                if self._held is not None:  # a snapshot began reading the engine in a thread
                    self._next_evict_ms = self._data_ms
                    break
        finally:
            if dropped:
                log.info("evicted %d keys (data time %d; idle > %g s or started > %g s ago); %d held", dropped,
                         self._data_ms, self.config.evict_idle_s, self.config.evict_started_s, self.engine.keys_held)
        return dropped

    # -- lifecycle -----------------------------------------------------------------------------
    def restore(self, now_ms: int) -> str:
        """Load ``--state`` if it is there and fresh enough; returns what happened."""
        path = self.config.state_path
        if path is None:
            self.restore_message = "no --state: starting empty"
            return self.restore_message
        state, message = load_state(path, now_ms, self.config.state_max_age_s, **self._hub_settings())
        if state is not None:
            self.engine = state.engine
            hub = state.hub
            assert self._ids is not None
            reservation, why = read_reservation(self._ids)
            last = hub.next_seq - 1
            if reservation is None or reservation.epoch != hub.epoch or reservation.reserved < last:
                # which ids the last run issued is unknown: a new epoch, so none is ever reused
                # (the prices are kept; clients resuming the old epoch get a reset)
                why = why if reservation is None else f"for epoch {reservation.epoch} up to {reservation.reserved}"
                hub = self._new_hub()
                message += f"; alert id reservation {self._ids} {why}: new epoch {hub.epoch}"
            else:
                skipped = hub.skip_lost(reservation.reserved, now_ms)
                if skipped is not None:
                    message += f"; the last run stopped without its final save (killed or crashed): ids " \
                               f"{hub.epoch}-{skipped[0] + 1}..{skipped[1]} are skipped, a client resuming from " \
                               f"one of them gets a reset"
            self.hub = hub
            self.hub.trim(now_ms)
            self._cursors = state.cursors
        self.restore_message = message
        return message

    def _snapshot(self, now_ms: int | None = None, cursors: dict[str, int] | None = None) -> bytes:
        """The state file's bytes; the engine and hub must not change while it runs.
        ``cursors``: the source position, when taken earlier (on the loop, see save_async)."""
        if cursors is None:
            cursors = {**self._cursors, **self.source.cursors()}
        return encode_state(self.engine, self.hub.dump(), cursors, now_ms if now_ms is not None else _now_ms())

    def save(self, now_ms: int | None = None, *, final: bool = False) -> None:
        """Save now, blocking (shutdown, tests); the periodic saves use :meth:`save_async`.
        ``final``: this is the clean stop, so the id reservation is lowered to the last id
        issued (the next start continues right after it, no client gets a reset)."""
        path = self.config.state_path
        if path is None:
            return
        save_state(path, self._snapshot(now_ms))
        self.metrics.state_saves += 1
        if final and self._ids is not None:
            write_reservation(self._ids, self.hub.epoch, self.hub.next_seq - 1)
            self.hub.reserved = self.hub.next_seq - 1

    async def save_async(self) -> None:
        """Save without stalling the streams. Where ``fork`` exists a child process encodes
        and writes the snapshot from its copy-on-write image of this instant (the engine, the
        ring and the source cursors are one consistent moment) while this process goes on
        detecting and sending. Elsewhere ingestion waits (quotes held, in order) while the
        snapshot is encoded in a worker thread; the loop keeps sending queued alerts and
        heartbeats meanwhile. Raises :class:`OSError` when the save failed."""
        path = self.config.state_path
        if path is None or self._held is not None or self._saving_pid is not None:
            return
        pid = None
        if self.fork_saves and hasattr(os, "fork"):
            reason_r, reason_w = os.pipe()
            os.set_blocking(reason_r, False)  # read after the child is gone: never waits
            try:
                pid = fork_save(path, self._snapshot, report=reason_w)
            finally:
                os.close(reason_w)
                if pid is None:
                    os.close(reason_r)
        if pid is not None:
            self._saving_pid = pid
            waiter = asyncio.ensure_future(asyncio.to_thread(os.waitpid, pid, 0))
            why = ""
            try:
                try:
                    _, status = await asyncio.wait_for(asyncio.shield(waiter), self.save_timeout_s)
                except TimeoutError:  # hung (a stalled disk): killed, so the next save can run
                    why = f"it did not finish within {self.save_timeout_s:g} s and was killed"
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    _, status = await waiter
            except asyncio.CancelledError:  # shutting down: the final save is done in-process
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await asyncio.gather(waiter, return_exceptions=True)
                with contextlib.suppress(OSError):
                    tmp_path(path, pid).unlink()
                raise
            finally:
                self._saving_pid = None
                with contextlib.suppress(OSError):
                    why = why or os.read(reason_r, 1024).decode(errors="replace").strip()
                os.close(reason_r)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:  # killed (OOM, timeout) or failed: its temporary file must not stay behind
                with contextlib.suppress(OSError):
                    tmp_path(path, pid).unlink()
                raise OSError(why or f"the saving process exited with status {code}")
            self.metrics.state_saves += 1
            return
        # the source position is taken here, on the loop, as ingestion starts to wait: a source
        # goes on counting what it hands over while quotes are held, so read in the thread it
        # could run ahead of the engine being saved (a restart would then skip held quotes)
        cursors = {**self._cursors, **self.source.cursors()}
        self._held = []
        encoding = asyncio.ensure_future(asyncio.to_thread(self._snapshot, None, cursors))
        try:
            try:
                data = await asyncio.shield(encoding)
            except asyncio.CancelledError:  # shutting down: let the thread finish reading first
                await asyncio.gather(encoding, return_exceptions=True)
                raise
        finally:
            held, self._held = self._held, None
            for quotes, now_ms in held:
                self.ingest(quotes, now_ms)
        # shielded: cancelled at shutdown, the write finishes before the final save writes the
        # same temporary file (one pid, one name)
        writing = asyncio.ensure_future(asyncio.to_thread(save_state, path, data))
        try:
            await asyncio.shield(writing)
        except asyncio.CancelledError:
            await asyncio.gather(writing, return_exceptions=True)
            raise
        self.metrics.state_saves += 1

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._finished = False  # (an embedding process may serve the same DropServer again)
        if not self.restore_message:
            message = self.restore(_now_ms())
            damaged = message.endswith("starting empty") and not message.startswith("no ")
            log.log(logging.WARNING if damaged or "; " in message else logging.INFO, "%s", message)
        thresholds = gc.get_threshold()
        if self.config.gc_threshold0 is not None:
            # what start-up built lives as long as the server: out of the collector's way
            gc.collect()
            gc.freeze()
            gc.set_threshold(self.config.gc_threshold0, *thresholds[1:])
        self._source_task = asyncio.create_task(self._run_source(), name="source")
        saver = asyncio.create_task(self._save_periodically(), name="state") if self.config.state_path else None
        try:
            yield
        finally:
            for task in (self._source_task, saver):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if self._evicting is not None:  # stops after its current step: the engine is whole between steps
                self._evicting.cancel()
                await asyncio.gather(self._evicting, return_exceptions=True)
            self.finish()
            if self.config.gc_threshold0 is not None:  # an embedding process gets its collector back
                gc.set_threshold(*thresholds)
                gc.unfreeze()

    def finish(self) -> None:
        """The final save of a clean stop, once: the lifespan's shutdown runs it, and ``serve``
        calls it again after uvicorn returns, since a second Ctrl-C makes uvicorn skip the
        lifespan's shutdown (the final save was lost: the next start took it for a crash and
        reset every resuming client). A saving child still running is killed first."""
        if self._finished:
            return
        self._finished = True
        pid, self._saving_pid = self._saving_pid, None
        if pid is not None:  # (uvicorn forced out while a periodic save ran)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if self.config.state_path is not None:
                with contextlib.suppress(OSError):
                    tmp_path(self.config.state_path, pid).unlink()
        try:
            self.save(final=True)
        except OSError as exc:
            log.error("could not save the state: %s", exc)

    async def _run_source(self) -> None:
        try:
            await self.source.run(self.ingest, dict(self._cursors))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the server keeps serving what it has; /healthz says why
            self._source_error = f"{type(exc).__name__}: {exc}"
            log.error("source %s stopped: %s", self.source.name, self._source_error)

    async def _save_periodically(self) -> None:
        """Save every ``state_every_s``. A failing save (disk full, read-only, a stalled disk)
        is logged once when the failures start and once when saving works again, not at every
        period; ``dropengine_state_save_failures_total`` counts them all. Serving goes on."""
        failing = False
        while True:
            await asyncio.sleep(self.config.state_every_s)
            try:
                await self.save_async()
            except OSError as exc:
                self.metrics.state_save_failures += 1
                if not failing:
                    log.error("could not save the state to %s: %s (serving goes on; tried again every %g s, "
                              "logged again when it works)", self.config.state_path, exc, self.config.state_every_s)
                failing = True
            else:
                if failing:
                    log.warning("state saved again to %s after %d failed saves", self.config.state_path,
                                self.metrics.state_save_failures)
                failing = False

    # -- auth ----------------------------------------------------------------------------------
    def _key(self, request: Request) -> tuple[Response | None, str, KeyRecord | None]:
        key = request.query_params.get("apiKey") or request.headers.get("x-api-key") or ""
        if not key:
            self.metrics.rejected_401 += 1
            return _error(401, "missing API key: pass ?apiKey= or the X-API-Key header"), "", None
        if self.config.keys is None:
            return None, key, KeyRecord("any", "business", TIERS["business"])
        record = self.config.keys.lookup(key)
        if record is None:
            self.metrics.rejected_403 += 1
            return _error(403, "unknown API key"), "", None
        if not record.may_stream:
            self.metrics.rejected_403 += 1
            return _error(403, f"tier {record.tier!r} may not open streams (business and above)"), "", None
        return None, key, record

    # -- endpoints -----------------------------------------------------------------------------
    async def _one(self, request: Request) -> Response:
        return self._stream(request, sport=request.path_params["sport_key"])

    async def _all(self, request: Request) -> Response:
        return self._stream(request)

    async def _multi(self, request: Request) -> Response:
        return self._stream(request, multi=True)

    def _stream(self, request: Request, sport: str | None = None, multi: bool = False) -> Response:
        # Everything up to the slot count is synchronous: the cap is exact under concurrent connects.
        denied, key, record = self._key(request)
        if denied is not None:
            return denied
        assert record is not None
        try:
            req = parse_request(request.query_params, sport=sport, multi=multi,
                                last_event_id=request.headers.get("last-event-id"))
        except ParamError as exc:
            self.metrics.rejected_400 += 1
            return JSONResponse(exc.body(secrets=[key]), status_code=400)  # never echo the key
        slot = record.name if self.config.keys is not None else key
        if self._open.get(slot, 0) >= record.cap:
            self.metrics.rejected_429 += 1
            return _error(429, f"concurrent connection cap ({record.cap}) reached for this key",
                          headers={"Retry-After": str(self.config.retry_after_s)})
        self._open[slot] = self._open.get(slot, 0) + 1
        self.metrics.connections_total += 1
        hub = self.hub
        wake = asyncio.Event()
        stop = _Stop(wake)
        loop = asyncio.get_running_loop()
        released = cut = False

        def release() -> None:  # once, however the stream ends
            nonlocal released
            if released:
                return
            released = True
            hub.unsubscribe(sub)
            n = self._open.get(slot, 1) - 1
            if n > 0:
                self._open[slot] = n
            else:
                self._open.pop(slot, None)

        def cut_off() -> None:
            """A client that stopped reading (its queue overflowed, or a send timed out):
            counted once, its slot freed and its socket closed now, unread data dropped.
            It resumes from its last id when it reads again."""
            nonlocal cut
            if cut:
                return
            cut = True
            self.metrics.slow_clients_cut += 1
            release()
            wake.set()
            transport = request.scope.get(_TRANSPORT)
            if transport is not None and not transport.is_closing():
                transport.abort()

        def notify() -> None:
            wake.set()
            if sub.overflowed and not cut:
                loop.call_soon(cut_off)  # not inside the hub's fan-out loop

        def timed_out() -> None:
            self.metrics.send_timeouts += 1
            cut_off()

        sub, reset = hub.subscribe(req.filter, req.cursor, notify)

        async def frames() -> AsyncIterator[bytes]:
            now = _now_ms()
            yield sse_frame({"type": "connected", "filters": req.filter.echo(), "heartbeat_s": req.heartbeat_s,
                             "epoch": hub.epoch, "id": str(hub.high_water), "timestamp": now})
            if reset is not None:
                hw = str(hub.high_water)
                yield sse_frame({"type": "reset", "reason": reset, "id": hw, "timestamp": now}, hw)
            while True:
                if sub.overflowed:
                    cut_off()
                    return  # fell too far behind: cut; the client resumes from its last id
                entries = hub.take(sub)
                if entries:
                    yield b"".join(e.frame for e in entries)
                    continue
                if stop.requested:
                    return  # shutting down: end the body properly (the client resumes elsewhere)
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), req.heartbeat_s)
                except TimeoutError:
                    if sub.pending or sub.overflowed or stop.requested:
                        continue  # an alert came in as the timer fired: send it before any cursor
                    hw = str(hub.high_water)  # all of it considered for this client: a safe cursor
                    yield sse_frame({"type": "heartbeat", "id": hw, "timestamp": _now_ms()}, hw)

        from sse_starlette.sse import EventSourceResponse

        # On shutdown sse-starlette calls stop.set(): the generator returns and the chunked body
        # ends properly, instead of being cancelled mid-stream.
        response = EventSourceResponse(frames(), ping=0, send_timeout=self.config.send_timeout_s,
                                       shutdown_event=stop, shutdown_grace_period=2.0)  # type: ignore[arg-type]
        return _Tracked(response, release, timed_out)  # type: ignore[return-value]

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(PAGE_HTML)

    def problem(self) -> str | None:
        """Why the server is degraded (``/healthz`` 503): its source stopped, or says why
        (an upstream down for more than two heartbeats); ``None`` when fine."""
        if self._source_error:
            return f"source stopped: {self._source_error}"
        check = getattr(self.source, "problem", None)  # optional in the Source protocol
        return check() if check is not None else None

    def status(self) -> dict[str, Any]:
        total, largest = self.hub.queue_depths()
        c = self.hub.counters
        problem = self.problem()
        return {
            "status": "ok" if problem is None else "degraded",
            **({"reason": problem} if problem is not None else {}),
            "source": {"name": self.source.name, **self.source.status(),
                       **({"error": self._source_error} if self._source_error else {})},
            "epoch": self.hub.epoch,
            "high_water": str(self.hub.high_water),
            "connections": len(self.hub.subscribers),
            "alerts_produced": c.produced,
            "alerts_delivered": c.delivered,
            "buffered": len(self.hub.buffer),
            "queue_depth_total": total,
            "queue_depth_max": largest,
            "slow_clients_cut": self.metrics.slow_clients_cut,
            "upstream_reconnects": self.source.reconnects,
            "keys_held": self.engine.keys_held,
            "keys_evicted": self.metrics.keys_evicted,
            "data_time": self._data_ms if self._data_ms >= 0 else None,
        }

    async def _healthz(self, request: Request) -> Response:
        st = self.status()
        return JSONResponse(st, status_code=200 if st["status"] == "ok" else 503)

    async def _metrics(self, request: Request) -> Response:
        st = self.status()
        c, m, e = self.hub.counters, self.metrics, self.engine.counters
        lines = [
            ("dropengine_connections", "gauge", "open /v1/odds-drop streams", st["connections"]),
            ("dropengine_connections_total", "counter", "streams accepted", m.connections_total),
            ("dropengine_alerts_produced_total", "counter", "alerts detected (threshold 1, before filters)",
             c.produced),
            ("dropengine_alert_deliveries_total", "counter", "alerts handed to connections", c.delivered),
            ("dropengine_queue_depth", "gauge", "alerts queued over all connections", st["queue_depth_total"]),
            ("dropengine_queue_depth_max", "gauge", "the longest connection queue", st["queue_depth_max"]),
            ("dropengine_slow_clients_cut_total", "counter", "connections cut for not reading",
             st["slow_clients_cut"]),
            ("dropengine_upstream_reconnects_total", "counter", "upstream reconnects", st["upstream_reconnects"]),
            ("dropengine_resets_total", "counter", "reset frames sent", c.resets),
            ("dropengine_resumes_total", "counter", "reconnects resumed from the buffer", c.resumed),
            ("dropengine_buffered_alerts", "gauge", "alerts in the ring buffer", st["buffered"]),
            ("dropengine_quotes_total", "counter", "quotes observed", e.seen),
            ("dropengine_keys_held", "gauge", "(event, book, side) keys in the engine", st["keys_held"]),
            ("dropengine_keys_evicted_total", "counter", "keys forgotten by age (--evict-idle, --evict-started)",
             m.keys_evicted),
            ("dropengine_state_saves_total", "counter", "state files written", m.state_saves),
            ("dropengine_state_save_failures_total", "counter", "periodic state saves that failed",
             m.state_save_failures),
        ]
        out: list[str] = []
        for name, kind, help_text, value in lines:
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        out += ["# HELP dropengine_rejected_total stream requests refused, by status",
                "# TYPE dropengine_rejected_total counter"]
        for status in (400, 401, 403, 429):
            out.append(f'dropengine_rejected_total{{status="{status}"}} {getattr(m, f"rejected_{status}")}')
        return PlainTextResponse("\n".join(out) + "\n", media_type="text/plain; version=0.0.4")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)
