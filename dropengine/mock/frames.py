"""What the mock upstream sends, as pure functions: the vendor's frames, its row filters and
its replies to WebSocket commands (no sockets, no starlette; the clock is passed in).

:mod:`dropengine.mock.app` serves these; keeping them apart lets a test check a frame or a
filter without a server, and keeps the vendor's message shapes in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..core.errors import FeedError
from ..formats.jsonline import decode_json
from ..formats.query import StreamQuery
from ..formats.vendor import GAME_MARKET_FIELDS, row_kind
from .timeline import row_time

__all__ = [
    "command_reply",
    "connected_frame",
    "filter_rows",
    "heartbeat_frame",
    "hot_feed_status_frame",
    "initial_state_frame",
    "odds_update_frame",
    "show",
    "sport_info",
]

_GROUPS: Final = {
    "americanfootball": "American Football",
    "aussierules": "Aussie Rules",
    "baseball": "Baseball",
    "basketball": "Basketball",
    "icehockey": "Ice Hockey",
    "mma": "Mixed Martial Arts",
    "soccer": "Soccer",
    "tennis": "Tennis",
}
#: Rows of this age (data time) count as recent in ``hot_feed_status``.
_RECENT_MS: Final = 60_000


def show(value: str) -> str:
    """A bounded repr of a client-supplied value for error messages."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def sport_info(key: str) -> dict[str, Any]:
    """A ``/v1/sports`` entry for ``key``: group and title derived from the key's two halves."""
    prefix, _, rest = key.partition("_")
    group = _GROUPS.get(prefix, prefix.replace("-", " ").title())
    title = rest.replace("_", " ").upper() if rest else key
    return {"key": key, "group": group, "title": title, "active": True, "has_outrights": False}


def filter_rows(rows: Sequence[Any], query: StreamQuery, event_id: str | None) -> list[Any]:
    """The rows a connection with ``query`` (and event filter ``event_id``: the query's, or a
    WebSocket subscription) receives.

    Unfiltered rows are the same objects; a game row under a ``markets`` filter is a copy
    without the fields of other markets, dropped when none of its fields is requested.
    """
    books, markets, kinds = query.bookmakers, query.markets, query.kinds
    if event_id is None and not books and not markets and not kinds:
        return list(rows)
    wanted_fields: frozenset[str] = frozenset()
    other_fields: frozenset[str] = frozenset()
    if markets:
        wanted_fields = frozenset(f for m in markets for f in GAME_MARKET_FIELDS.get(m, ()))
        other_fields = frozenset(f for fs in GAME_MARKET_FIELDS.values() for f in fs) - wanted_fields
    out: list[Any] = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        if event_id is not None and row.get("event_id") != event_id:
            continue
        if books and row.get("bookmaker") not in books:
            continue
        kind = row_kind(row)
        if kinds and kind not in kinds:
            continue
        if markets:
            if kind == "prop":
                if row.get("market_key") not in markets:
                    continue
            else:
                if not any(f in row for f in wanted_fields):
                    continue
                if any(f in row for f in other_fields):
                    row = {k: v for k, v in row.items() if k not in other_fields}
        out.append(row)
    return out


def connected_frame(sport: str, tier: str, query: StreamQuery, now_ms: int) -> dict[str, Any]:
    return {
        "type": "connected", "sport_key": sport, "tier": tier, "push_mode": "raw", "diff_mode": False,
        "min_push_interval_s": 0.0, "filters": query.echo(), "timestamp": now_ms,
    }


def hot_feed_status_frame(sport: str, rows: Sequence[Any], clock_ms: int | None, now_ms: int) -> dict[str, Any]:
    """Per bookmaker: its newest ``last_update`` among ``rows`` (the sport's current state),
    its age at the replay clock ``clock_ms`` and how many rows are younger than a minute."""
    latest: dict[str, int] = {}
    recent: dict[str, int] = {}
    for row in rows:
        book, lu = row.get("bookmaker"), row_time(row)
        if not isinstance(book, str) or lu is None:
            continue
        latest[book] = max(latest.get(book, lu), lu)
        if clock_ms is not None and lu >= clock_ms - _RECENT_MS:
            recent[book] = recent.get(book, 0) + 1
    sources = [
        {
            "bookmaker": book,
            "latest_ms": ms,
            "age_s": None if clock_ms is None else round(max(clock_ms - ms, 0) / 1000, 3),
            "rows_60s": recent.get(book, 0),
        }
        for book, ms in sorted(latest.items())
    ]
    return {"type": "hot_feed_status", "sport_key": sport, "sources": sources, "timestamp": now_ms}


def initial_state_frame(sport: str, rows: list[Any], since: int | None, now_ms: int) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "initial_state", "sport_key": sport, "timestamp": now_ms, "count": len(rows), "data": rows,
    }
    if since is not None:
        frame["since"] = since
    return frame


def odds_update_frame(sport: str, rows: list[Any], now_ms: int) -> dict[str, Any]:
    return {"type": "odds_update", "sport_key": sport, "timestamp": now_ms, "count": len(rows), "data": rows}


def heartbeat_frame(sport: str, connections: int, now_ms: int) -> dict[str, Any]:
    return {"type": "heartbeat", "sport_key": sport, "timestamp": now_ms, "connections": connections}


def command_reply(text: str, now_ms: int) -> tuple[dict[str, Any], str | None, bool]:
    """One WebSocket client command: ``(reply frame, event id, changed)``.

    ``changed`` says whether the connection's subscription is now ``event id`` (``None``:
    unsubscribed); a bad command (not JSON, unknown type, no event id) gets an ``error``
    reply and changes nothing. Never raises on client input, nested or huge.
    """
    try:
        obj = decode_json(text)
    except FeedError:  # any decoder failure, deep nesting too: an error reply, never a crash
        return {"type": "error", "message": "command is not JSON", "timestamp": now_ms}, None, False
    ctype = obj.get("type") if isinstance(obj, dict) else None
    if ctype == "subscribe":
        event_id = obj.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            reply = {"type": "error", "message": "subscribe needs a non-empty event_id", "timestamp": now_ms}
            return reply, None, False
        return {"type": "subscribed", "event_id": event_id, "timestamp": now_ms}, event_id, True
    if ctype == "unsubscribe":
        return {"type": "unsubscribed", "timestamp": now_ms}, None, True
    shown = show(ctype) if isinstance(ctype, str) else "missing"
    return {"type": "error", "message": f"unknown command type {shown}", "timestamp": now_ms}, None, False
