"""The simulated books' vendor rows (SPEC section 5): full game and prop rows, no ``_diff``.

The field names and their order are the vendor's (as in ``fixtures/golden/frames.ndjson``):
identity, the event description (:data:`~dropengine.formats.vendor.META_FIELDS`), then the
time and prices. A null price is a suspended quote; lines stay when prices are pulled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..formats.vendor import GAME_FIELDS, META_FIELDS, PROP_FIELDS

__all__ = ["GameQuote", "event_meta", "game_row", "prop_row"]

GameQuote = tuple[Any, ...]
"""``(home_ml, away_ml, home_line, home_price, away_price, total, over, under)`` of one book."""

# The vendor's field names, taken from its schema (formats.vendor) by side prefix / outcome;
# the rows below keep the vendor's field order (the simulator's output is pinned byte for byte).
_FIELD = {f.prefix: f for f in GAME_FIELDS}
_HOME_ML, _AWAY_ML = _FIELD["h2h_home"].price, _FIELD["h2h_away"].price


def _line_field(prefix: str) -> str:
    name = _FIELD[prefix].line
    assert name is not None, prefix  # a line market's side
    return name


_HOME_SPREAD, _AWAY_SPREAD = _line_field("spread_home"), _line_field("spread_away")
_HOME_SPREAD_PRICE, _AWAY_SPREAD_PRICE = _FIELD["spread_home"].price, _FIELD["spread_away"].price
_TOTAL, _OVER, _UNDER = _line_field("total_over"), _FIELD["total_over"].price, _FIELD["total_under"].price
_PROP_PRICE = {outcome: name for name, outcome in PROP_FIELDS}
_PROP_OVER, _PROP_UNDER = _PROP_PRICE["over"], _PROP_PRICE["under"]


def _line_value(x: float) -> float | int:
    """Lines as JSON numbers: integral ones as ints (``-3``), the others as floats (``-3.5``)."""
    return int(x) if float(x).is_integer() else x


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_meta(home: str, away: str, commence_ms: int) -> dict[str, str]:
    """The event description every row of one game carries, keyed by the vendor schema."""
    return dict(zip(META_FIELDS, (home, away, _iso(commence_ms)), strict=True))


def game_row(event_id: str, bookmaker: str, meta: Mapping[str, str], t: int, q: GameQuote,
             prices: bool, line_prices: bool = True) -> dict[str, Any]:
    """A full vendor game row of quote ``q``; ``prices=False`` suspends (null prices, lines kept).

    ``line_prices=False`` is a line-only book (SPEC 10): its rows carry the spread and total
    lines but no price fields for them at all (absent, which is not a suspension)."""
    line, total = q[2], q[5]
    row = {
        "kind": "game", "event_id": event_id, "bookmaker": bookmaker,
        **meta,
        "last_update": t,
        _HOME_ML: q[0] if prices else None, _AWAY_ML: q[1] if prices else None,
        _HOME_SPREAD: _line_value(line), _AWAY_SPREAD: _line_value(-line + 0.0),
        _HOME_SPREAD_PRICE: q[3] if prices else None, _AWAY_SPREAD_PRICE: q[4] if prices else None,
        _TOTAL: _line_value(total),
        _OVER: q[6] if prices else None, _UNDER: q[7] if prices else None,
    }
    if not line_prices:
        for name in (_HOME_SPREAD_PRICE, _AWAY_SPREAD_PRICE, _OVER, _UNDER):
            del row[name]
    return row


def prop_row(event_id: str, bookmaker: str, meta: Mapping[str, str], player: str, market_key: str, market: str,
             line: float, over: int | None, under: int | None, t: int) -> dict[str, Any]:
    """A full vendor prop row (null prices: suspended or pulled)."""
    return {
        "kind": "prop", "event_id": event_id, "bookmaker": bookmaker,
        **meta,
        "player": player, "market_key": market_key, "market": market,
        "line": _line_value(line), _PROP_OVER: over,
        _PROP_UNDER: under, "last_update": t,
    }
