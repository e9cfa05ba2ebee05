"""The :class:`Quote`: one observed price of one side (SPEC section 2).

Quotes are immutable and validated on construction. The *type* of every field is checked
here (a bool or a string is never a price); whether a numeric price is a valid American
price is a detection rule (SPEC section 3, rule 2), so the engine judges it and counts it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final, Literal, get_args

import msgspec

from .errors import FeedError
from .sides import canonical_side, parse_side

__all__ = ["KINDS", "MAX_MS", "Kind", "Quote", "QuoteInfo", "commence_ms"]

Kind = Literal["game", "prop"]
#: The row kinds (SPEC 2, 5): every ``kinds`` filter and ``kind`` field checks against this.
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
#: Largest unix-ms time accepted anywhere (``last_update``, ``since``): int64, the bound of
#: polars' Int64 (batch.detect, Parquet) and of msgpack (snapshots), so every consumer holds it.
MAX_MS: Final = 2**63 - 1

_REQUIRED_TEXT = ("sport_key", "event_id", "bookmaker", "side")
#: Canonical spellings of the sides with a line (``@``) seen with kind and market key given (a side
#: that does not parse is a bad side, never remembered): the fast path's check that such a side is one key
#: however its line is spelt is a set lookup. Bounded: emptied when full.
_CANONICAL: set[str] = set()
_CANONICAL_MAX: Final = 1 << 16
_OPTIONAL_TEXT = ("market", "player", "home_team", "away_team", "commence_time")


def _spelled(side: str) -> str:
    """``side`` (with a line) in its canonical spelling, remembered in :data:`_CANONICAL`.
    :class:`FeedError` (``bad side``) for a side that does not parse, as every table reader and
    batch load skips it (SPEC 2's one grammar, core/sides.py): kept as spelt, the stream engine
    read its line with ``float()`` (``total_over@1e3`` was 1000 there, a bad side everywhere else)."""
    got = canonical_side(side)
    if len(_CANONICAL) >= _CANONICAL_MAX:
        _CANONICAL.clear()
    _CANONICAL.add(got)
    return got


class Quote(msgspec.Struct, frozen=True, kw_only=False):
    """One observed price: key ``(event_id, bookmaker, side)``, price, and source time.

    ``price`` is American odds or ``None`` (suspended / not offered). ``last_update`` is
    the unix ms at which the source wrote the price. ``kind`` and ``market_key`` are derived
    from ``side`` when not given (props also get ``player``, line markets ``line``), and the
    side is rewritten in its canonical spelling (``spread_home@+3.0`` -> ``spread_home@3``).
    When both are given (decoders that build sides pass both) they are trusted as is, and a side
    with a line is still rewritten canonically (one key however spelt, as every batch path and
    table reader keys it; a line outside SPEC 2's grammar is ``bad side`` as there); a known
    canonical spelling costs the fast path a set lookup.

    ``line_only`` marks an observation of a side's line with no price published (SPEC 10: a
    line-only book's spread or total): ``price`` is then ``None`` meaning "not quoted", not a
    suspension, and ``line`` is set. Only line series observe it; the price engine ignores it.
    """

    sport_key: str
    event_id: str
    bookmaker: str
    side: str
    price: int | float | None
    last_update: int
    kind: Kind | None = None
    market_key: str | None = None
    market: str | None = None
    player: str | None = None
    line: float | None = None
    home_team: str | None = None
    away_team: str | None = None
    commence_time: str | None = None
    line_only: bool = False

    def __post_init__(self) -> None:
        # Fast path for the shape every decoder builds: all types right, kind and market key
        # given. Anything else, or any doubt, takes the full validation below, which raises.
        price = self.price
        line = self.line
        lu = self.last_update
        if (
            type(self.event_id) is str and self.event_id
            and type(self.bookmaker) is str and self.bookmaker
            and type(self.side) is str and self.side
            and ("@" not in self.side or self.side in _CANONICAL)
            and type(self.sport_key) is str and self.sport_key
            and (price is None or type(price) is int or type(price) is float)
            and type(lu) is int and 0 <= lu <= MAX_MS
            and self.kind in KINDS
            and type(self.market_key) is str and self.market_key
            and (line is None or ((type(line) is float or type(line) is int) and line - line == 0))
            and (self.market is None or type(self.market) is str)
            and (self.player is None or type(self.player) is str)
            and (self.home_team is None or type(self.home_team) is str)
            and (self.away_team is None or type(self.away_team) is str)
            and (self.commence_time is None or type(self.commence_time) is str)
            and self.line_only is False
        ):
            return
        self._validate()

    def _validate(self) -> None:
        self._plain_values()
        for name in _REQUIRED_TEXT:
            value = getattr(self, name)
            if type(value) is not str or not value:
                raise FeedError(f"{name}: {value!r} must be a non-empty string", "missing field")
        price = self.price
        if price is not None and type(price) is not int and type(price) is not float:
            raise FeedError(f"price: {price!r} is not a number or null", "invalid price")
        lu = self.last_update
        if type(lu) is not int or not 0 <= lu <= MAX_MS:
            raise FeedError(f"last_update: {lu!r} must be a non-negative integer below 2**63 (unix ms)", "bad time")
        for name in _OPTIONAL_TEXT:
            value = getattr(self, name)
            if value is not None and type(value) is not str:
                raise FeedError(f"{name}: {value!r} must be a string or null", "bad field")
        line = self.line
        if line is not None and ((type(line) is not int and type(line) is not float) or not math.isfinite(line)):
            raise FeedError(f"line: {line!r} must be a finite number or null", "bad line")
        kind = self.kind
        if kind is not None and kind not in KINDS:
            raise FeedError(f"kind: {kind!r} must be {' or '.join(map(repr, KINDS))}", "bad field")
        market_key = self.market_key
        if market_key is not None and (type(market_key) is not str or not market_key):
            raise FeedError(f"market_key: {market_key!r} must be a non-empty string or null", "bad field")
        if kind is None or market_key is None:
            info = parse_side(self.side)
            if kind is not None and kind != info.kind:
                raise FeedError(f"kind: {kind!r} contradicts side {self.side!r}", "bad field")
            msgspec.structs.force_setattr(self, "kind", info.kind)
            # one key per side, however its line is spelt (SPEC 2: `spread_home@+3.0` is
            # `spread_home@3`), as batch.detect and the table readers key it
            msgspec.structs.force_setattr(self, "side", canonical_side(self.side))
            if self.market_key is None:
                msgspec.structs.force_setattr(self, "market_key", info.market_key)
            if info.kind == "prop" and self.player is None:
                msgspec.structs.force_setattr(self, "player", info.player)
            if self.line is None and info.line is not None:
                msgspec.structs.force_setattr(self, "line", info.line)
        elif "@" in self.side:
            # kind and market key given (as decoders give them): the side is still one key however
            # its line is spelt (`spread_home@-7.50` is `spread_home@-7.5`), as on every other path
            msgspec.structs.force_setattr(self, "side", _spelled(self.side))
        if self.line_only is not False:
            if self.line_only is not True:
                raise FeedError(f"line_only: {self.line_only!r} must be True or False", "bad field")
            if self.price is not None:
                raise FeedError(f"line_only: a line-only observation has no price (got {self.price!r})", "bad field")
            if self.line is None or "@" not in self.side:
                raise FeedError(f"line_only: side {self.side!r} has no line to observe", "bad line")

    def _plain_values(self) -> None:
        """Store a subclass of str, int or float (numpy.str_, numpy.float64, a str enum) as the
        plain value it stands for: keys hash and compare as text, snapshots and JSON encode it."""
        for name in (*_REQUIRED_TEXT, *_OPTIONAL_TEXT, "kind", "market_key"):
            value = getattr(self, name)
            if isinstance(value, str) and type(value) is not str:
                msgspec.structs.force_setattr(self, name, str.__str__(value))
        for name in ("price", "line"):
            value = getattr(self, name)
            if isinstance(value, float) and type(value) is not float:
                msgspec.structs.force_setattr(self, name, float(value))
            elif isinstance(value, int) and type(value) is not int and not isinstance(value, bool):
                msgspec.structs.force_setattr(self, name, int(value))

    @property
    def key(self) -> tuple[str, str, str]:
        """The state-machine key ``(event_id, bookmaker, side)``."""
        return (self.event_id, self.bookmaker, self.side)


class QuoteInfo(msgspec.Struct, frozen=True, gc=False):
    """The row-level part of the quotes of one vendor row, shared by all its prices.

    The fused frames path (:mod:`dropengine.formats.fused`) hands the engine price observations
    ``(key, price, last_update, market_key, line, info)`` instead of a :class:`Quote` per price;
    ``info`` carries what an alert copies from its quote besides those. It is built by the
    decoder from values it has checked (the same checks :class:`Quote` makes), so it checks
    nothing itself: it is not a way to build quotes (use :class:`Quote`).
    """

    sport_key: str
    kind: Kind
    market: str | None
    player: str | None
    home_team: str | None
    away_team: str | None
    commence_time: str | None


def commence_ms(text: str) -> int | None:
    """Unix ms of a quote's ``commence_time`` (ISO-8601 with a UTC offset); ``None`` when it
    is not one: a naive or garbled time is unknown, never guessed (the stream engine's
    ``started_before_ms`` and the backtest's closing line both read it so)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if dt.tzinfo is None else round(dt.timestamp() * 1000)
