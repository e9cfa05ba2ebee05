"""A Python client for ``/v1/odds-drop`` (SPEC 7): ``dropengine serve``'s and the vendor's.

:class:`AsyncDropClient` (asyncio) and :class:`DropClient` (a background thread, for code
without an event loop) iterate the stream as typed values: the core's
:class:`~dropengine.core.alerts.Drop`, :class:`~dropengine.core.alerts.LineMove` and
:class:`~dropengine.core.alerts.Steam`, and the stream's :class:`Connected` (the effective
filters) and :class:`Reset` (alerts lost to this stream, said out loud). They reconnect by the
upstream policy of SPEC 8 and resume with ``Last-Event-ID`` (or ``since``) so that nothing
is missed or repeated::

    async with AsyncDropClient("http://127.0.0.1:8000", api_key=KEY, sport="basketball_nba",
                               threshold=15, bookmakers="pinnacle") as client:
        async for alert in client.alerts():
            print(alert.bookmaker, alert.side, alert.prev, "->", alert.new)

For an alert iterator straight over the vendor's raw odds stream, with the engine inside,
see :func:`dropengine.live.watch.watch`.
"""

from __future__ import annotations

from .aio import AUTH_MODES, AsyncDropClient, ClientOptions, ClientStats
from .events import ALERT_TYPES, Connected, ConnectedFilters, Event, EventDecoder, Heartbeat, Reset, SteamSettings
from .query import DEFAULT_HEARTBEAT_S, DropQuery
from .sync import DropClient

__all__ = [
    "ALERT_TYPES",
    "AUTH_MODES",
    "DEFAULT_HEARTBEAT_S",
    "AsyncDropClient",
    "ClientOptions",
    "ClientStats",
    "Connected",
    "ConnectedFilters",
    "DropClient",
    "DropQuery",
    "Event",
    "EventDecoder",
    "Heartbeat",
    "Reset",
    "SteamSettings",
]
