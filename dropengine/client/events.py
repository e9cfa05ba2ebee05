"""The frames of ``/v1/odds-drop`` as typed values, decoded once. Pure.

A frame's ``data`` is one JSON object with a ``type``. The alerts are the core's
:class:`~dropengine.core.alerts.Drop`, :class:`~dropengine.core.alerts.LineMove` and
:class:`~dropengine.core.alerts.Steam`; the stream's own frames are :class:`Connected` (the
effective filters, the heartbeat, where the stream starts), :class:`Heartbeat` and
:class:`Reset` (SPEC 7: the server could not resume from the cursor; alerts were lost to this
stream, which goes on from the reset's ``id``). :class:`EventDecoder` decodes the JSON text
straight into one of them with one msgspec decoder (a tagged union on ``type``).

The vendor's ``odds_drop`` comes in two documented shapes: the one of its streaming page
(``reference/002``: ``prev``/``new``/``delta`` and a SPEC side such as ``h2h_home``, which is
ours without ``sport_key`` on a single-sport stream, ``market_key`` or ``elapsed_ms``) and the
one of its AsyncAPI (``reference/001``: ``prior_price``/``new_price``, an absolute
``delta_cents`` and a ``side`` of ``home``/``away``/``over``/``under`` next to ``market_key``,
``line`` and ``player``). :func:`vendor_drop` maps both to a :class:`Drop`: the side is built
by core.sides, ``delta`` and ``direction`` are computed by the core's cents rule (SPEC 1) from
the two prices, never copied from an absolute ``delta_cents``. Where a shape lacks a field the
Drop requires, the documented stand-in is used: ``sport_key`` from the route, ``last_update``
from ``timestamp`` (the AsyncAPI shape has no source write time), ``elapsed_ms`` 0 (unknown).

A frame that does not decode raises :class:`~dropengine.core.errors.FeedError` naming the
field and the value; the client counts it as a skip and reads on.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import msgspec

from ..core.alerts import Drop, LineMove, Steam
from ..core.errors import FeedError, short_repr
from ..core.rules import cents_move, direction_of, is_valid_price
from ..core.sides import h2h_side, market_key_of, parse_side, prop_side, spread_side, total_side
from ..formats.jsonline import decode_json

__all__ = [
    "ALERT_TYPES",
    "Connected",
    "ConnectedFilters",
    "Event",
    "EventDecoder",
    "Heartbeat",
    "Reset",
    "SteamSettings",
    "vendor_drop",
]

#: The alert classes (an ``isinstance`` check: ``isinstance(event, ALERT_TYPES)``).
ALERT_TYPES: Final = (Drop, LineMove, Steam)


class ConnectedFilters(msgspec.Struct, frozen=True, kw_only=True):
    """The effective filters a ``connected`` frame echoes (``None``: not restricted, or not
    echoed by this server; the vendor's echo has ``event_id``, ``bookmakers``, ``markets``,
    ``kinds`` and ``since`` only)."""

    threshold: int | float | None = None
    direction: str | None = None
    sports: tuple[str, ...] | None = None
    event_id: str | tuple[str, ...] | None = None
    bookmakers: tuple[str, ...] | None = None
    markets: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    since: int | None = None
    types: tuple[str, ...] | None = None
    line_threshold: int | float | None = None


class SteamSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the server detects steam (SPEC 11), echoed when steam was asked for."""

    books: int
    window_ms: int
    threshold: int | float
    line_threshold: int | float
    groups: tuple[tuple[str, ...], ...] = ()


class Connected(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="connected"):
    """The first frame of every connection: the effective filters, the heartbeat interval, and
    (our server) the epoch and the id the stream starts from."""

    filters: ConnectedFilters = msgspec.field(default_factory=ConnectedFilters)
    heartbeat_s: int | None = None
    epoch: str | None = None
    id: str | None = None
    timestamp: int | None = None
    steam: SteamSettings | None = None
    sport_key: str | None = None


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="heartbeat"):
    """A liveness frame; ``id`` (our server) is a safe cursor to resume from."""

    id: str | None = None
    timestamp: int | None = None


class Reset(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="reset"):
    """The server could not resume this stream from its cursor (evicted, another epoch, a crash,
    a hole in an alert log): alerts up to ``id`` may be lost to it, and ``reason`` says why. The
    stream goes on after ``id``; nothing is ever a silent gap (SPEC 7)."""

    reason: str
    id: str | None = None
    timestamp: int | None = None


#: What iterating a client yields (heartbeats only when asked for).
Event: TypeAlias = Connected | Heartbeat | Reset | Drop | LineMove | Steam

_TYPED: Final = msgspec.json.Decoder(Connected | Heartbeat | Reset | Drop | LineMove | Steam)
_KNOWN: Final = frozenset({"connected", "heartbeat", "reset", "odds_drop", "line_move", "steam"})
_SIDES: Final = frozenset({"home", "away", "draw", "over", "under"})


class EventDecoder:
    """One frame's ``data`` -> one :data:`Event` (see the module docstring).

    ``sport_key``: the route's sport, for vendor drops that do not name theirs (``None`` on
    ``/all`` and ``/multi``, where every frame must)."""

    __slots__ = ("sport_key",)

    def __init__(self, sport_key: str | None = None) -> None:
        self.sport_key = sport_key

    def decode(self, data: str | bytes) -> Event:
        """The typed value of one frame; :class:`FeedError` when it is none of them."""
        try:
            event: Event = _TYPED.decode(data)  # the common case: one pass, straight into the value
            return event
        except msgspec.DecodeError as exc:
            why = str(exc)  # (a ValidationError is a DecodeError: it names the field, `$.prev`)
        obj = decode_json(data, "frame")  # not JSON: FeedError "bad json"
        if not isinstance(obj, dict):
            raise FeedError(f"frame: {short_repr(obj)} is not a JSON object", "bad frame")
        kind = obj.get("type")
        if kind == "odds_drop":
            return vendor_drop(obj, self.sport_key)
        if kind in _KNOWN:
            raise FeedError(f"{kind} frame: {why}", "bad frame")
        raise FeedError(f"type: {short_repr(kind)} is not a frame type of /v1/odds-drop", "unknown type")


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise FeedError(f"odds_drop {name}: {short_repr(value)} is not text", "bad frame")
    return value


def _price(obj: dict[str, Any], ours: str, theirs: str) -> int | float:
    name = ours if ours in obj else theirs
    value = obj.get(name)
    if not is_valid_price(value):
        raise FeedError(f"odds_drop {name}: {short_repr(value)} is not a valid American price", "invalid price")
    assert isinstance(value, (int, float))
    return value


def _side(obj: dict[str, Any]) -> str:
    """The SPEC side of a vendor drop: given whole (``h2h_home``), or built from the AsyncAPI
    parts (``side`` home/away/over/under, ``market_key``, ``line``, ``player``)."""
    side = _text(obj, "side")
    if side is None:
        raise FeedError("odds_drop side: missing", "missing field")
    if side not in _SIDES:
        parse_side(side)  # FeedError naming the side when it is not one
        return side
    market = _text(obj, "market_key")
    player = _text(obj, "player")
    line = obj.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, (int, float))):
        raise FeedError(f"odds_drop line: {short_repr(line)} is not a number", "bad frame")
    try:
        if player:
            if market is None or line is None or side not in ("over", "under"):
                raise FeedError(f"odds_drop side: {side!r} of a prop needs market_key, line and over/under",
                                "bad side")
            return prop_side(market, player, side, line)  # type: ignore[arg-type]
        if market in (None, "h2h") and line is None:
            return h2h_side(side)  # type: ignore[arg-type]
        if market in ("spreads", "spread") and line is not None:
            return spread_side(side, line)  # type: ignore[arg-type]
        if market in ("totals", "total") and line is not None:
            return total_side(side, line)  # type: ignore[arg-type]
    except FeedError:
        raise
    except ValueError as exc:  # core.sides' ConfigError: a part that cannot make a side
        raise FeedError(f"odds_drop side: {exc}", "bad side") from None
    raise FeedError(f"odds_drop side: {side!r} with market_key {market!r} and line {line!r} is no side "
                    "this client can name", "bad side")


def vendor_drop(obj: dict[str, Any], sport_key: str | None = None) -> Drop:
    """A vendor ``odds_drop`` object (either documented shape, see the module docstring) as a
    :class:`Drop`; :class:`FeedError` naming the field when it cannot be one."""
    prev = _price(obj, "prev", "prior_price")
    new = _price(obj, "new", "new_price")
    move = cents_move(prev, new)
    direction = direction_of(move)
    if direction is None:
        raise FeedError(f"odds_drop prev/new: {prev!r} -> {new!r} is no move", "bad frame")
    side = _side(obj)
    sport = _text(obj, "sport_key") or sport_key
    if sport is None:
        raise FeedError("odds_drop sport_key: missing (a frame of /all or /multi must name its sport)",
                        "missing field")
    info = parse_side(side)
    timestamp = obj.get("timestamp")
    wire: dict[str, Any] = {
        "type": "odds_drop", "sport_key": sport, "event_id": obj.get("event_id"),
        "bookmaker": obj.get("bookmaker"), "side": side,
        "kind": _text(obj, "kind") or info.kind,
        "market_key": _text(obj, "market_key") or market_key_of(side),
        "prev": prev, "new": new, "delta": move, "direction": direction,
        "last_update": obj.get("last_update", timestamp), "timestamp": timestamp,
        "elapsed_ms": obj.get("elapsed_ms", 0),
    }
    for name in ("home_team", "away_team", "commence_time", "player", "market", "line"):
        if obj.get(name) is not None:
            wire[name] = obj[name]
    try:
        return msgspec.convert(wire, Drop)  # the one check of every field's type
    except msgspec.ValidationError as exc:
        raise FeedError(f"odds_drop: {exc}", "bad frame") from None

