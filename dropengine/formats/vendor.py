"""The vendor's row schema (SPEC section 5): the one place that knows what a row holds.

A vendor row is a JSON object of one of two kinds. A *game* row carries, for one event at
one book, the prices of up to seven sides in named fields (``home_ml`` ... ``under_price``)
with their lines (``home_spread``, ``away_spread``, ``total``); a *prop* row carries one
player's over/under prices at one ``line`` of one ``market_key``. A row without ``kind`` is
told by the vendor's union: a ``player`` or a ``market_key`` makes it a prop.

Rows with ``_diff: true`` carry only changed fields: they are merged into the last full row
of the same *identity* (game: event + book; prop: + market key + player).

Everything that reads or writes rows takes the schema from here: the decoder
(:class:`~dropengine.formats.frames.FrameDecoder`), mock-upstream's timeline and stream
filters, and the simulator's writers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from ..core.errors import FeedError
from ..core.quote import Quote
from ..core.sides import parse_side

__all__ = [
    "GAME_FIELDS",
    "GAME_MARKET_FIELDS",
    "META_FIELDS",
    "PRICE_FIELDS",
    "PROP_FIELDS",
    "GameField",
    "merge_diff",
    "price_fields_of",
    "vendor_row",
    "row_identity",
    "row_kind",
]


class GameField(NamedTuple):
    """One side of a game row: its price field, its line field (``None`` for moneylines),
    the side string's prefix (``spread_home`` -> ``spread_home@-3``) and its market key."""

    price: str
    line: str | None
    prefix: str
    market_key: str


#: The seven sides a game row can carry, in the order the decoder emits their quotes.
GAME_FIELDS: Final[tuple[GameField, ...]] = (
    GameField("home_ml", None, "h2h_home", "h2h"),
    GameField("away_ml", None, "h2h_away", "h2h"),
    GameField("draw_ml", None, "h2h_draw", "h2h"),
    GameField("home_spread_price", "home_spread", "spread_home", "spreads"),
    GameField("away_spread_price", "away_spread", "spread_away", "spreads"),
    GameField("over_price", "total", "total_over", "totals"),
    GameField("under_price", "total", "total_under", "totals"),
)
#: A prop row's price fields and the outcome each prices (``{market_key}:{player}:over@{line}``).
PROP_FIELDS: Final[tuple[tuple[str, str], ...]] = (("over_price", "over"), ("under_price", "under"))
#: Event descriptions a row of either kind may carry (copied onto its quotes).
META_FIELDS: Final[tuple[str, ...]] = ("home_team", "away_team", "commence_time")
#: The fields (lines and prices) of each game market, e.g. for a ``markets`` stream filter.
GAME_MARKET_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    market: tuple(dict.fromkeys(
        name for f in GAME_FIELDS if f.market_key == market for name in (f.line, f.price) if name is not None
    ))
    for market in dict.fromkeys(f.market_key for f in GAME_FIELDS)
}
#: Every field that holds a price, in a row of either kind.
PRICE_FIELDS: Final[frozenset[str]] = frozenset(f.price for f in GAME_FIELDS) | {p for p, _ in PROP_FIELDS}

_BY_PREFIX: Final[dict[str, GameField]] = {f.prefix: f for f in GAME_FIELDS}
_PROP_PRICE: Final[dict[str, str]] = {outcome: name for name, outcome in PROP_FIELDS}


def row_kind(row: Mapping[str, Any]) -> str | None:
    """``"game"`` or ``"prop"``; ``None`` when the row names a kind that is neither.

    A row without ``kind`` (or with ``kind: null``) is told by the vendor's row union: a
    ``player`` or a ``market_key`` makes it a prop.
    """
    kind = row.get("kind")
    if kind is None:
        return "prop" if (row.get("player") is not None or row.get("market_key") is not None) else "game"
    return kind if kind == "game" or kind == "prop" else None


def row_identity(row: Mapping[str, Any], kind: str | None = None) -> tuple[Any, ...]:
    """The identity ``_diff`` rows merge on: ``("g", event, book)`` or ``("p", event, book,
    market key, player)``. ``kind`` is :func:`row_kind` of the row when the caller has it;
    a row of no valid kind is identified as a game row (it decodes to nothing anyway)."""
    if (kind if kind is not None else row_kind(row)) == "prop":
        return ("p", row.get("event_id"), row.get("bookmaker"), row.get("market_key"), row.get("player"))
    return ("g", row.get("event_id"), row.get("bookmaker"))


def merge_diff(base: Mapping[str, Any] | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``_diff: true`` row merged into ``base`` (the last full row of its identity, or
    ``None`` when there is none yet): the changed fields over the old ones, no ``_diff`` key."""
    merged = dict(base) if base is not None else {}
    merged.update(row)
    merged.pop("_diff", None)
    return merged


def price_fields_of(row: Mapping[str, Any], kind: str) -> list[str]:
    """The price fields of a ``kind`` row that decode to a quote: present, and with their
    line (a spread or total side without its line, a prop without ``line``, is no quote)."""
    if kind == "prop":
        return [] if row.get("line") is None else [p for p, _ in PROP_FIELDS if p in row]
    return [f.price for f in GAME_FIELDS if f.price in row and (f.line is None or row.get(f.line) is not None)]


def vendor_row(q: Quote) -> dict[str, Any]:
    """A vendor row carrying just ``q``'s price field: decoded in an envelope of
    ``q.sport_key`` it gives back ``q``. (A game row has no ``market``: a game quote's
    ``market``, which decoders never set, is not carried.) A line-only quote (SPEC 10) gives a
    row with its line and no price field (decoded with ``FrameDecoder(line_only=True)``; a
    total's line also observes the other side's line).

    Raises :class:`~dropengine.core.errors.FeedError` when the side does not parse, or is a
    runner of a multi-runner market (``win:12115648``), which the vendor's rows do not carry.
    """
    info = parse_side(q.side)
    field = _BY_PREFIX.get(q.side.partition("@")[0]) if info.kind == "game" else None
    if info.kind == "game" and field is None:
        raise FeedError(f"side: {q.side!r} is a runner of a multi-runner market; the vendor's rows carry none",
                        "unsupported side")
    row: dict[str, Any] = {"kind": info.kind, "event_id": q.event_id, "bookmaker": q.bookmaker}
    for name in META_FIELDS:
        value = getattr(q, name)
        if value is not None:
            row[name] = value
    row["last_update"] = q.last_update
    if info.kind == "prop":
        row["player"] = info.player
        row["market_key"] = info.market_key
        if q.market is not None:
            row["market"] = q.market
        row["line"] = info.line
        row[_PROP_PRICE[info.outcome]] = q.price
        return row
    assert field is not None
    if field.line is not None:
        row[field.line] = info.line
    if not q.line_only:  # SPEC 10: a line-only book's row has the line and no price field
        row[field.price] = q.price
    return row
