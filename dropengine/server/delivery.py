"""Server-wide sinks: every alert the server publishes, once, to webhooks, Discord, Telegram.

A :class:`ServerDelivery` taps the :class:`~dropengine.server.hub.Hub` (:attr:`Hub.taps`):
each numbered alert reaches it once, as published, before (and apart from) the connections'
own filters; its one filter (``--sink-query``, read by the same parser as a connection's
query, :func:`~dropengine.server.params.parse_request` for ``/v1/odds-drop/all``) chooses
what the sinks get. A sink's :meth:`offer` never blocks, so a slow receiver never slows
detection or the streams.

The delivery id of an alert is its SSE id, ``{epoch}-{seq}``: the same on every retry and
the same an SSE client sees, so a receiver drops a retry's copy by id. (``serve --bus``
frontends take no ``--sink``: the sinks belong to the server that detects.)

Start and stop with the app (``serve``'s lifespan), after the hub is restored::

    async with delivery.running(self.hub):
        yield
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from urllib.parse import parse_qsl

from ..core.errors import ConfigError
from ..core.filters import AlertFilter
from ..deliver.base import Sink, name_apart
from ..deliver.rules import drain_seconds
from .hub import Entry, Hub
from .params import ParamError, parse_request

__all__ = ["ServerDelivery", "sink_filter"]

log = logging.getLogger("dropengine.serve")


def sink_filter(query: str = "") -> AlertFilter:
    """The filter of a ``/v1/odds-drop/all`` request with ``query`` (``threshold=20&types=steam``),
    or of ``/v1/odds-drop/multi`` when it names ``sports=a,b``: what a connection with these
    parameters would receive. Raises :class:`ConfigError` naming
    the parameter."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    multi = any(name == "sports" for name, _ in pairs)  # a list of sports: read as /multi reads it
    try:
        request = parse_request(pairs, multi=multi)
    except ParamError as exc:
        raise ConfigError(f"--sink-query: {exc}") from None
    if request.cursor is not None or request.cursor_reset is not None:
        raise ConfigError("--sink-query: last_event_id has no meaning for sinks (they get alerts as published)")
    if request.filter.since is not None:
        raise ConfigError("--sink-query: since has no meaning for sinks (they get alerts as published)")
    return request.filter


class ServerDelivery:
    """``sinks`` fed by a hub, through ``filter`` (default: what a connection without
    parameters gets: price drops of at least 10 cents)."""

    def __init__(self, sinks: Sequence[Sink], filter: AlertFilter | str = "",
                 drain_s: float = 10.0) -> None:
        self.sinks = tuple(sinks)
        name_apart(self.sinks)  # status() is keyed by name: two webhooks on one host are two entries
        self.filter = filter if isinstance(filter, AlertFilter) else sink_filter(filter)
        self.drain_s = drain_seconds(drain_s, "drain_s")
        self._hub: Hub | None = None
        #: alerts the filter passed to the sinks (each offered to every sink)
        self.offered = 0
        #: offers that raised (a sink writing a file that can no longer be written)
        self.errors = 0

    def __repr__(self) -> str:
        return f"ServerDelivery({', '.join(s.name for s in self.sinks)})"

    def _tap(self, entries: list[Entry]) -> None:
        hub = self._hub
        assert hub is not None
        accepts = self.filter.accepts
        for e in entries:
            if accepts(e.alert):
                self.offered += 1
                delivery = f"{hub.epoch}-{e.seq}"
                for sink in self.sinks:
                    try:
                        sink.offer(e.alert, delivery)
                    except Exception as exc:  # (an ndjson:PATH sink on a full disk) never breaks the hub
                        self.errors += 1
                        if self.errors == 1 or self.errors % 1000 == 0:
                            log.warning("sink %s: %s (%d alerts not written so far)", sink.name,
                                        type(exc).__name__, self.errors)

    async def start(self, hub: Hub) -> None:
        """Start the sinks and tap ``hub`` (the server's, once restored)."""
        if self._hub is not None:
            raise ConfigError("start: the delivery is running already")
        for sink in self.sinks:
            await sink.start()
        self._hub = hub
        hub.taps.append(self._tap)

    async def aclose(self) -> None:
        """Untap the hub, then drain every sink (up to :attr:`drain_s`)."""
        hub, self._hub = self._hub, None
        if hub is not None and self._tap in hub.taps:
            hub.taps.remove(self._tap)
        await asyncio.gather(*(sink.aclose(self.drain_s) for sink in self.sinks))  # one deadline for all

    @contextlib.asynccontextmanager
    async def running(self, hub: Hub) -> AsyncIterator[ServerDelivery]:
        """``start`` on entry, ``aclose`` on exit."""
        await self.start(hub)
        try:
            yield self
        finally:
            await self.aclose()

    def status(self) -> dict[str, dict[str, int]]:
        """Each sink's counters (for ``/healthz`` or ``/metrics``)."""
        out: dict[str, dict[str, int]] = {}
        for s in self.sinks:
            c = s.counters
            out[s.name] = {"offered": c.offered, "delivered": c.delivered, "failed": c.failed, "dropped": c.dropped,
                           "retried": c.retried, "dead_lettered": c.dead_lettered}
        return out
