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
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Literal

from ..core.alerts import Alert
from ..core.engine import DropEngine
from ..core.errors import ConfigError, UpstreamError, short_repr
from ..core.filters import AlertFilter
from ..core.keys import Secret
from ..core.options import DetectOptions, parse_types
from ..core.retry import RetryPolicy
from ..formats.frames import FrameDecoder
from ..formats.query import StreamQuery
from .fanin import FanIn
from .transport import UpstreamConfig
from .upstream import LiveStats

__all__ = ["STAMPS", "Watch", "upstream_query", "watch"]

#: What an alert's ``timestamp`` is: the frame's arrival, or the quote's ``last_update``.
STAMPS = ("receipt", "data")


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

    def __init__(self, feed: FanIn, engine: DropEngine, stamp: Literal["receipt", "data"]) -> None:
        self.feed = feed
        self.engine = engine
        self.stamp = stamp
        self._alerts: AsyncGenerator[Alert, None] = self._run()

    def __repr__(self) -> str:
        return f"Watch({self.feed!r}, alerts={self.alerts_seen})"

    alerts_seen = 0

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
        async with aclosing(self.feed.frames()) as frames:
            async for received in frames:
                if not received.quotes:
                    continue
                for alert in observe(received.quotes, received.received_ms if receipt else None):
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
) -> Watch:
    """Alerts of the upstream's live odds stream (see the module docstring).

    ``sport``: one sport key, a list of them (``/multi``: one stream each), or ``None`` (every
    active sport of ``GET /v1/sports``, refreshed every 5 minutes). ``types``: the alert types
    to detect, with the engine's defaults otherwise; or ``options`` (a
    :class:`~dropengine.core.options.DetectOptions`: thresholds, reference, filters, steam
    settings), whose own ``types`` then rule (giving both, differing, is a ConfigError).
    ``transport``, ``auth``, ``since``, ``heartbeat_s`` and ``policy`` are the live client's
    (SPEC 8); ``on_event`` gets a line per connect, retry and stop (never the key).
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
    # line-only books (SPEC 10) are decoded only when the engine detects lines, as the command does
    decoder = FrameDecoder(line_only=options.detects_lines)
    feed = FanIn(config, sports, decoder=decoder, rng=rng, on_event=on_event)
    return Watch(feed, engine, stamp)
