"""The :class:`Drop` alert and its wire shape (SPEC section 4)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .rules import Direction

__all__ = ["ALERT_FIELDS", "Drop", "encode_drop", "encode_drops"]


class Drop(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="type", tag="odds_drop"):
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

    def to_dict(self) -> dict[str, Any]:
        """The wire object as a plain dict (unknown optional fields left out)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def to_json(self) -> bytes:
        """The wire object as compact JSON bytes."""
        return _ENCODER.encode(self)


_ENCODER = msgspec.json.Encoder()

#: The alert fields in wire order: the one definition tables of alerts (CSV, Parquet, the
#: batch detector's DataFrame) follow.
ALERT_FIELDS: tuple[str, ...] = ("type", *Drop.__struct_fields__)


def encode_drop(drop: Drop) -> bytes:
    """JSON bytes for one alert (same as ``drop.to_json()``)."""
    return drop.to_json()


def encode_drops(drops: list[Drop]) -> bytes:
    """NDJSON bytes: one alert per line, each line ending in ``\\n``."""
    return b"".join(_ENCODER.encode(d) + b"\n" for d in drops)
