"""``dropengine.watch``: alerts straight from the vendor's raw odds stream, the engine inside.

``async for alert in watch(sport="basketball_nba", base_url=..., api_key=...)`` is what
``dropengine watch`` does without the printing: one :class:`~dropengine.live.fanin.FanIn`
(one sport, a list as ``/multi``, or every active sport as ``/all``) of
:class:`~dropengine.live.upstream.UpstreamStream` s (SPEC 8: backoff, resume with ``since``, no
re-priming), each frame decoded once by a :class:`~dropengine.formats.frames.FrameDecoder`, and
one :class:`~dropengine.core.engine.DropEngine` with the signals asked for (``types``:
``odds_drop``, ``line_move``, ``steam``; or a whole :class:`~dropengine.core.options.DetectOptions`).
The alerts come in detection order, typed (:data:`~dropengine.core.alerts.Alert`).

The filters of the options narrow the upstream's stream too (bookmakers, markets, kinds, one
event id: :func:`upstream_query`), as the command does. ``stamp``: an alert's ``timestamp`` is
when its frame arrived (``receipt``, the default) or its quote's ``last_update`` (``data``:
what ``dropengine replay`` of a recording of the same frames gives, alert for alert).

A long run holds a bounded number of keys: :class:`Evictor` forgets keys by age in data time
(``evict_idle_s``, ``evict_started_s``; the defaults of ``dropengine watch``). It lives here,
in the live layer, so that the library and the command share it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Final, Literal

from ..core.alerts import Alert
from ..core.dataclock import DataClock
from ..core.engine import DropEngine
from ..core.errors import ConfigError, UpstreamError, short_repr
from ..core.filters import AlertFilter
from ..core.keys import Secret
from ..core.options import DetectOptions, parse_types
from ..core.quote import Quote
from ..core.retry import RetryPolicy
from ..formats.frames import FrameDecoder
from ..formats.query import StreamQuery
from .fanin import FanIn
from .transport import UpstreamConfig
from .upstream import LiveStats

__all__ = ["EVICT_IDLE_S", "EVICT_STARTED_S", "STAMPS", "Evictor", "Watch", "upstream_query", "watch"]

#: What an alert's ``timestamp`` is: the frame's arrival, or the quote's ``last_update``.
STAMPS = ("receipt", "data")
#: Default ages for eviction (seconds of data time): a key quiet for 6 h, an event started 12 h ago.
EVICT_IDLE_S: Final = 21_600.0
EVICT_STARTED_S: Final = 43_200.0
#: The data-time clock never goes below this (``evict`` with it forgets nothing by idleness).
_NEVER: Final = -(2**62)


class Evictor:
    """Bounds a live engine's memory: every so often (in data time) forget keys not updated
    for ``idle_s`` and keys of events that started more than ``started_s`` ago (0: never).

    Data time is :class:`~dropengine.core.dataclock.DataClock`'s, the one rule ``serve`` uses too:
    the newest ``last_update`` seen, at most an hour past the frame's receipt, a jump past the
    shorter age confirmed by the next batch (one bad row must not evict everything).
    A check scans every key, so it runs each time data time has moved a twelfth of the
    smaller age (at least 1 s): 30 minutes with the defaults, as ``serve`` does.
    """

    def __init__(self, engine: DropEngine, idle_s: float, started_s: float) -> None:
        for name, value in (("evict_idle_s", idle_s), ("evict_started_s", started_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ConfigError(f"{name}: {short_repr(value)} must be a number of seconds >= 0 (0: never)")
        self.engine = engine
        self.idle_ms = round(idle_s * 1000)
        self.started_ms = round(started_s * 1000)
        ages = [a for a in (self.idle_ms, self.started_ms) if a > 0]
        self.period_ms = max(1_000, min(ages) // 12) if ages else 0
        self.clock = DataClock(min(ages) if ages else None)
        self.evicted = 0
        self._next: int | None = None

    def observe(self, quotes: list[Quote], received_ms: int | None = None) -> int:
        """Note the quotes' data time; evict when a check is due. Returns keys evicted now."""
        if not self.period_ms or not quotes:
            return 0
        self.clock.advance(quotes, received_ms)
        if self.clock.ms < 0:
            return 0
        if self._next is None:
            self._next = self.clock.ms + self.period_ms
        if self.clock.ms < self._next:
            return 0
        self._next = self.clock.ms + self.period_ms
        before = self.clock.ms - self.idle_ms if self.idle_ms else _NEVER
        started = self.clock.ms - self.started_ms if self.started_ms else None
        n = self.engine.evict(before, started_before_ms=started)
        self.evicted += n
        return n


def upstream_query(flt: AlertFilter, since: int | None = None) -> StreamQuery:
    """The vendor stream's query that narrows it to what ``flt`` keeps: bookmakers, markets,
    kinds (sorted: a filter is a set) and the event id when there is exactly one (the vendor
    takes one; several are filtered by the engine only)."""

    def names(values: frozenset[str] | None) -> list[str] | None:
        return sorted(values) if values is not None else None

    events = flt.event_ids
    event = next(iter(events)) if events is not None and len(events) == 1 else None
    return StreamQuery.build(event, names(flt.bookmakers), names(flt.markets), names(flt.kinds), since)


class Watch(AsyncIterator[Alert]):
    """The iterator :func:`watch` returns: the alerts, plus what a caller may look at
    (:attr:`engine`, :attr:`stats`, :attr:`failures` of sports whose stream stopped for good).
    Ends when every stream of a fixed list stopped (raising the first one's error when all
    failed: a rejected key is :class:`~dropengine.core.errors.AuthError`); ``/all`` runs until
    closed. Close it with :meth:`aclose` or ``async with``."""

    def __init__(self, feed: FanIn, engine: DropEngine, stamp: Literal["receipt", "data"],
                 evictor: Evictor | None = None) -> None:
        self.feed = feed
        self.engine = engine
        self.stamp = stamp
        self.evictor = evictor
        #: Alerts handed on so far.
        self.alerts_seen = 0
        self._alerts: AsyncGenerator[Alert, None] = self._run()

    def __repr__(self) -> str:
        return f"Watch({self.feed!r}, alerts={self.alerts_seen})"

    @property
    def stats(self) -> LiveStats:
        """Streams, reconnects, frames, quotes and skipped frames or rows."""
        return self.feed.stats

    @property
    def failures(self) -> dict[str, UpstreamError]:
        return self.feed.failures

    async def _run(self) -> AsyncGenerator[Alert, None]:
        observe = self.engine.observe_many
        receipt = self.stamp == "receipt"
        evictor = self.evictor
        async with aclosing(self.feed.frames()) as frames:
            async for received in frames:
                if not received.quotes:
                    continue
                alerts = observe(received.quotes, received.received_ms if receipt else None)
                if evictor is not None:
                    evictor.observe(received.quotes, received.received_ms)
                for alert in alerts:
                    self.alerts_seen += 1
                    yield alert

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Alert:
        return await anext(self._alerts)

    async def aclose(self) -> None:
        """Stop every stream."""
        await self._alerts.aclose()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


def watch(
    sport: str | Sequence[str] | None = None,
    *,
    base_url: str,
    api_key: str | Secret,
    types: str | Sequence[str] = ("odds_drop",),
    options: DetectOptions | None = None,
    transport: Literal["sse", "ws"] = "sse",
    auth: Literal["header", "query", "subprotocol"] = "header",
    since: int | None = None,
    heartbeat_s: int | None = None,
    stamp: Literal["receipt", "data"] = "receipt",
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
    on_event: Callable[[str], None] | None = None,
    evict_idle_s: float = EVICT_IDLE_S,
    evict_started_s: float = EVICT_STARTED_S,
) -> Watch:
    """Alerts of the upstream's live odds stream (see the module docstring).

    ``sport``: one sport key, a list of them (``/multi``: one stream each), or ``None`` (every
    active sport of ``GET /v1/sports``, refreshed every 5 minutes). ``types``: the alert types
    to detect, with the engine's defaults otherwise; or ``options`` (a
    :class:`~dropengine.core.options.DetectOptions`: thresholds, reference, filters, steam
    settings), whose own ``types`` then rule (``types`` other than the default next to
    ``options`` with other types is a ConfigError: the types are given in one place).
    ``transport``, ``auth``, ``since``, ``heartbeat_s`` and ``policy`` are the live client's
    (SPEC 8); ``on_event`` gets a line per connect, retry and stop (never the key).
    ``evict_idle_s`` / ``evict_started_s``: :class:`Evictor`'s ages (0: never).
    """
    if options is None:
        options = DetectOptions.build(types=types)
    elif not isinstance(options, DetectOptions):
        raise ConfigError(f"options: {short_repr(options)} is not a DetectOptions")
    elif parse_types(types) != options.types and parse_types(types) != parse_types(None):
        raise ConfigError(f"types: {short_repr(types)} differs from options.types; give the types in one place")
    if stamp not in STAMPS:
        raise ConfigError(f"stamp: {short_repr(stamp)} must be one of {', '.join(STAMPS)}")
    sports: list[str] | None
    if sport is None:
        sports = None
    elif isinstance(sport, str):
        sports = [sport.strip()]
    else:
        try:
            sports = [s.strip() if isinstance(s, str) else s for s in sport]
        except TypeError:
            raise ConfigError(f"sport: {short_repr(sport)} must be a sport key, a list of them, or None") from None
    config = UpstreamConfig(
        base_url, api_key if isinstance(api_key, Secret) else Secret(api_key), transport, auth,
        upstream_query(options.filter, since), float(heartbeat_s) if heartbeat_s is not None else None,
        policy if policy is not None else RetryPolicy(),
    )
    engine = DropEngine.from_options(options)
    evictor = Evictor(engine, evict_idle_s, evict_started_s)
    # line-only books (SPEC 10) are decoded only when the engine detects lines, as the command does
    decoder = FrameDecoder(line_only=options.detects_lines)
    feed = FanIn(config, sports, decoder=decoder, rng=rng, on_event=on_event)
    return Watch(feed, engine, stamp, evictor)
