"""The alerts and their wire shapes: :class:`Drop` (SPEC 4), :class:`LineMove` (SPEC 10) and
:class:`Steam` (SPEC 11), and the one table layout every alert writer follows."""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

import msgspec

from .rules import Direction

__all__ = [
    "ALERT_FIELDS",
    "NUMBER_FIELDS",
    "TIME_FIELDS",
    "SIGNALS",
    "Alert",
    "Drop",
    "LineMove",
    "Signal",
    "Steam",
    "SteamBook",
    "alert_fields",
    "alert_row",
    "by_signal_order",
    "encode_alert",
    "encode_alerts",
    "encode_drop",
    "encode_drops",
]

Signal = Literal["odds_drop", "line_move", "steam"]
#: The alert types (SPEC 4, 10, 11), the default first.
SIGNALS: Final[tuple[Signal, ...]] = get_args(Signal)


class _Wire(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="type"):
    """What every alert type shares: its JSON (the msgspec tag is the wire ``type``, encoded
    first) and its plain-dict form."""

    def to_dict(self) -> dict[str, Any]:
        """The wire object as a plain dict (unknown optional fields left out; lists as in JSON)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def to_json(self) -> bytes:
        """The wire object as compact JSON bytes."""
        return _ENCODER.encode(self)


class Drop(_Wire, frozen=True, tag="odds_drop"):
    """One price-move alert. Serialises to the SPEC section 4 object (``type: odds_drop``).

    Optional metadata (teams, commence time, prop fields) is omitted when unknown rather
    than sent as null; prices and ``delta`` keep the numeric type they arrived with, and
    the engine never builds a Drop from a non-finite price, so the JSON never holds NaN.
    """

    sport_key: str
    event_id: str
    bookmaker: str
    side: str
    kind: str
    market_key: str
    prev: int | float
    new: int | float
    delta: int | float
    direction: Direction
    last_update: int
    timestamp: int
    elapsed_ms: int
    home_team: str | None = None
    away_team: str | None = None
    commence_time: str | None = None
    player: str | None = None
    market: str | None = None
    line: float | None = None

    @property
    def type(self) -> Literal["odds_drop"]:
        """The wire ``type`` (a msgspec tag, so it is encoded first)."""
        return "odds_drop"


class LineMove(_Wire, frozen=True, tag="line_move"):
    """One line move of a line series ``(event_id, bookmaker, side)`` (SPEC 10), ``side`` being
    the line side (``spread_home``, ``total_over``, ``{market_key}:{player}:over``).

    Lines, ``points`` and ``key_numbers`` are written as the side string spells a line (an
    integral line as an int: ``-3``, ``-3.5``). ``prev_price``/``new_price`` are always written,
    ``null`` when the observation carried no price (a line-only book).
    """

    sport_key: str
    event_id: str
    bookmaker: str
    side: str
    kind: str
    market_key: str
    prev_line: int | float
    new_line: int | float
    points: int | float
    prev_price: int | float | None
    new_price: int | float | None
    direction: Direction
    key_numbers: tuple[int | float, ...]
    last_update: int
    timestamp: int
    elapsed_ms: int
    home_team: str | None = None
    away_team: str | None = None
    commence_time: str | None = None
    player: str | None = None
    market: str | None = None

    @property
    def type(self) -> Literal["line_move"]:
        """The wire ``type``."""
        return "line_move"

    def to_dict(self) -> dict[str, Any]:
        """The wire object as a plain dict (unknown optional fields left out; lists as in JSON)."""
        out = _Wire.to_dict(self)
        out["key_numbers"] = list(self.key_numbers)
        return out


class SteamBook(msgspec.Struct, frozen=True, omit_defaults=True):
    """One book's counted move inside a :class:`Steam` (SPEC 11): its move's own fields
    (``prev``/``new``/``delta`` of a price drop on ``side``, or ``prev_line``/``new_line``/``points``
    of a line move of the line side ``side``)."""

    bookmaker: str
    type: Literal["odds_drop", "line_move"]
    side: str
    last_update: int
    prev: int | float | None = None
    new: int | float | None = None
    delta: int | float | None = None
    prev_line: int | float | None = None
    new_line: int | float | None = None
    points: int | float | None = None


class Steam(_Wire, frozen=True, tag="steam"):
    """The same move at several books within a window (SPEC 11). ``side`` is the outcome (a
    side without its line), ``books`` the window's books in ``last_update`` order (a book group
    once, by its earliest move), ``leader`` the first, ``lag_ms`` first to last, and
    ``last_update`` the newest ``last_update`` among the group's counted moves (``T``)."""

    sport_key: str
    event_id: str
    side: str
    market_key: str
    kind: str
    direction: Direction
    books: tuple[SteamBook, ...]
    leader: str
    lag_ms: int
    last_update: int
    timestamp: int
    home_team: str | None = None
    away_team: str | None = None
    commence_time: str | None = None
    player: str | None = None
    market: str | None = None

    @property
    def type(self) -> Literal["steam"]:
        """The wire ``type``."""
        return "steam"

    def to_dict(self) -> dict[str, Any]:
        """The wire object as a plain dict (unknown optional fields left out; lists as in JSON)."""
        out = _Wire.to_dict(self)
        out["books"] = list(out["books"])
        return out


#: Any alert the engines produce.
Alert = Drop | LineMove | Steam

_ENCODER = msgspec.json.Encoder()

#: The alert fields in wire order: the one definition tables of alerts (CSV, Parquet, the
#: batch detector's DataFrame) follow.
ALERT_FIELDS: tuple[str, ...] = ("type", *Drop.__struct_fields__)
#: The columns a table of several alert types adds after :data:`ALERT_FIELDS`: each type's own
#: fields, in wire order (``books`` is written as JSON text).
_SIGNAL_FIELDS: Final[tuple[str, ...]] = tuple(dict.fromkeys(
    f for cls in (LineMove, Steam) for f in cls.__struct_fields__ if f not in ALERT_FIELDS
))


def by_signal_order(types: frozenset[str] | set[str] | tuple[str, ...]) -> tuple[Signal, ...]:
    """``types`` in :data:`SIGNALS` order (how every echo, summary and snapshot lists them)."""
    return tuple(t for t in SIGNALS if t in types)


#: The alert fields holding unix-ms times or spans (integers in every table).
TIME_FIELDS: Final[tuple[str, ...]] = ("last_update", "timestamp", "elapsed_ms", "lag_ms")
#: The alert fields holding prices, lines or moves (each keeps the type it arrived with).
NUMBER_FIELDS: Final[tuple[str, ...]] = (
    "prev", "new", "delta", "line", "prev_line", "new_line", "points", "prev_price", "new_price",
)


def alert_fields(types: frozenset[str] | set[str] | tuple[str, ...] = ("odds_drop",)) -> tuple[str, ...]:
    """The columns of a table of alerts of ``types``: exactly :data:`ALERT_FIELDS` for price
    drops alone (today's tables, unchanged), else those plus every other type's own fields."""
    if set(types) <= {"odds_drop"}:
        return ALERT_FIELDS
    return (*ALERT_FIELDS, *_SIGNAL_FIELDS)


def alert_row(alert: Alert, columns: tuple[str, ...] = ALERT_FIELDS) -> dict[str, Any]:
    """One row of an alert table with ``columns``: the alert's fields, ``None`` where the type has
    none; a steam's ``books`` and a line move's ``key_numbers`` as JSON text (one cell each)."""
    row: dict[str, Any] = {}
    for c in columns:
        if c == "type":
            row[c] = alert.type
            continue
        value = getattr(alert, c, None)
        if value is not None and (c == "books" or c == "key_numbers"):
            value = _ENCODER.encode(value).decode()
        row[c] = value
    return row


def encode_alert(alert: Alert) -> bytes:
    """JSON bytes for one alert of any type."""
    return _ENCODER.encode(alert)


def encode_alerts(alerts: list[Alert]) -> bytes:
    """NDJSON bytes: one alert per line, each line ending in ``\n``."""
    return b"".join(_ENCODER.encode(a) + b"\n" for a in alerts)


def encode_drop(drop: Drop) -> bytes:
    """JSON bytes for one alert (same as ``drop.to_json()``)."""
    return drop.to_json()


def encode_drops(drops: list[Drop]) -> bytes:
    """NDJSON bytes: one alert per line, each line ending in ``\\n``."""
    return b"".join(_ENCODER.encode(d) + b"\n" for d in drops)
