"""The server's detection layer: one engine fed by a source, alerts handed to the hub, engine
keys evicted by data time.

The engine detects every alert type once, at the lowest thresholds a connection may ask for
(1 cent, 0.25 points, ``reference=last``, no cooldown), so each connection's ``types``,
``threshold``, ``line_threshold`` and ``direction`` are exact post-filters. Steam runs with the
server's own settings (:class:`ServeConfig`: books, window, and the moves that count, price
moves of ``steam_threshold`` cents and line moves of SPEC 10's default 0.5 points), since one
steam needs one shared view of every book.

:class:`Ingestion` is the base of :class:`~dropengine.server.app.DropServer`: it owns the
engine, the hub it publishes to, the source task and the data clock
(:class:`~dropengine.core.dataclock.DataClock`); eviction runs on the event loop in steps, so
ingestion and fan-out go on between them. :class:`~dropengine.server.persistence.Persistence`
adds saving and restoring on top, the app the HTTP routes. Also here: the settings
(:class:`ServeConfig`), the counters (:class:`Metrics`) and what a source is (:class:`Source`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..core.alerts import SIGNALS, Alert
from ..core.dataclock import DataClock
from ..core.engine import DropEngine
from ..core.errors import ConfigError
from ..core.keys import KeyTable
from ..core.options import DetectOptions, KeyNumbers
from ..core.quote import Quote
from .hub import Hub
from .params import DEFAULT_LINE_THRESHOLD, LINE_THRESHOLD_RANGE, THRESHOLD_RANGE

__all__ = ["Ingestion", "Metrics", "ServeConfig", "Source"]

#: The core's default options: the steam defaults are theirs (no second copy here).
_CORE = DetectOptions()

log = logging.getLogger("dropengine.serve")


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
    #: Steam (SPEC 11), run once with these settings for every connection: distinct books in
    #: the window (``--steam-books``), the window (``--steam-window``), the cents a price move
    #: needs to count (``--steam-threshold``; line moves count from SPEC 10's default 0.5
    #: points), and books that copy one feed (``--steam-groups``: text ``a+b,c+d`` or groups).
    steam_books: int = _CORE.steam_books
    steam_window_ms: int = _CORE.steam_window_ms
    steam_threshold: int | float = _CORE.threshold  # SPEC 3's default threshold, 10 cents
    steam_groups: str | tuple[frozenset[str], ...] = ()
    #: Key numbers listed on line moves (``--key-numbers``; ``None``: SPEC 10's default).
    key_numbers: KeyNumbers | None = None

    def detect_options(self) -> DetectOptions:
        """The server engine's options: every type, at the lowest thresholds a connection may
        ask for (so a connection's filters are exact), with this config's steam settings."""
        return DetectOptions.build(
            threshold=THRESHOLD_RANGE[0], types=SIGNALS, line_threshold=LINE_THRESHOLD_RANGE[0],
            steam_books=self.steam_books, steam_window_ms=self.steam_window_ms,
            steam_threshold=self.steam_threshold, steam_line_threshold=DEFAULT_LINE_THRESHOLD,
            steam_groups=self.steam_groups, key_numbers=self.key_numbers,
        )

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
        # the steam settings are judged by the core, where they are used (errors name them)
        object.__setattr__(self, "steam_groups", self.detect_options().steam_groups)




@dataclass(slots=True)
class Metrics:
    """The server's counters (``/metrics``), shared by its layers."""

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



class Ingestion:
    """Detection once, ahead of fan-out: ``ingest`` runs the engine over a source's quotes and
    publishes the alerts to ``hub``; eviction follows data time."""

    def __init__(self, source: Source, config: ServeConfig, hub: Hub) -> None:
        self.source = source
        self.config = config
        self.engine = DropEngine(options=config.detect_options())
        self.hub = hub
        self.metrics = Metrics()
        #: Quotes that arrived while a consistent snapshot was being taken (ingested after it).
        self._held: list[tuple[list[Quote], int]] | None = None
        #: Data time (``dropengine.core.dataclock``: the newest ``last_update`` ingested, capped, jumps
        #: confirmed); eviction is due when it passes the next mark.
        limits = [x for x in (self.config.evict_idle_s, self.config.evict_started_s) if x > 0]
        self._clock = DataClock(int(min(limits) * 1000) if limits else None)
        self._next_evict_ms = -1
        self._evicting: asyncio.Task[int] | None = None
        #: Keys judged per eviction step on the event loop (see :meth:`evict`).
        self.evict_chunk = 20_000
        self._source_task: asyncio.Task[None] | None = None
        self._source_error: str = ""
        #: The source position restored from ``--state`` (handed to the source when it starts).
        self._cursors: dict[str, int] = {}

    # -- detection -----------------------------------------------------------------------------
    def ingest(self, quotes: list[Quote], now_ms: int) -> list[Alert]:
        """Detect once over ``quotes`` and fan the alerts (every type, in detection order) out
        (called by the source). While a snapshot is being taken the quotes wait (in order) and
        ``[]`` is returned."""
        if self._held is not None:
            self._held.append((quotes, now_ms))
            return []
        alerts = self.engine.observe_many(quotes, now_ms)
        if alerts:
            self.hub.publish(alerts, now_ms)
        if quotes and self._clock.advance(quotes, now_ms) and self._clock.ms >= self._next_evict_ms:
            self._schedule_eviction()
        return alerts

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


    async def _run_source(self) -> None:
        try:
            await self.source.run(self.ingest, dict(self._cursors))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the server keeps serving what it has; /healthz says why
            self._source_error = f"{type(exc).__name__}: {exc}"
            log.error("source %s stopped: %s", self.source.name, self._source_error)


    def problem(self) -> str | None:
        """Why the server is degraded (``/healthz`` 503): its source stopped, or says why
        (an upstream down for more than two heartbeats); ``None`` when fine."""
        if self._source_error:
            return f"source stopped: {self._source_error}"
        check = getattr(self.source, "problem", None)  # optional in the Source protocol
        return check() if check is not None else None
