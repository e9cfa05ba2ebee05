"""What to simulate: :class:`SimConfig`, validated field by field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ..core.errors import ConfigError
from .profiles import BOOKMAKERS, DEFAULT_START_MS, HOUR_MS, SPORTS, BookProfile

__all__ = ["SimConfig"]

_MAX_EVENTS: Final = 500
_MAX_HOURS: Final = 24 * 14
_MAX_START_MS: Final = 4_102_444_800_000  # 2100-01-01


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if type(value) is not int or not lo <= value <= hi:
        raise ConfigError(f"{name}: {value!r} must be an integer from {lo} to {hi}")


def _check_num(name: str, value: object, lo: float, hi: float, lo_open: bool = False) -> None:
    ok = type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        low = f"above {lo:g}" if lo_open else f"from {lo:g}"
        raise ConfigError(f"{name}: {value!r} must be a number {low} to {hi:g}")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate; every field is validated and a bad one raises :class:`ConfigError` naming it.

    - ``events``: number of games (1-500); ``books``: how many of :data:`BOOKMAKERS` quote them
      (1-12, the sharp book first); ``hours``: length of the recording (up to two weeks);
      ``props``: add player props; ``seed``: any integer, the only source of randomness.
    - ``start_ms``: unix ms at which the recording starts; ``sport_key``: one of :data:`SPORTS`.
    - ``heartbeat_s``: a ``heartbeat`` envelope after this many idle seconds (1-30, as the
      vendor's ``heartbeat_s``); ``push_interval_ms``: rows written within one such window go
      out in one ``odds_update`` (the vendor's coalescing; 0 = one envelope per instant).
    - ``inplay_interval_s``: mean seconds between in-play re-quotes of a soft book (the sharp
      book re-quotes three times as often).
    - ``activity``: multiplies the rate of pre-game information arrivals; ``jump_rate``: news
      jumps per event per hour, far from kick-off (the rate rises up to 5x towards it).
    - ``line_moves``: a soft book's own line moves per book-event-hour far from kick-off (rising
      like the other rates): the book hangs its spread or total half a point off the market's
      number, or back, without news (SPEC 10 line moves that no other book follows). 0, the
      default, keeps the recordings of the model before it byte for byte.
    - ``line_only``: books whose game rows carry the spread and total lines without their prices
      (SPEC 5 / SPEC 10 line-only books, as on the vendor's game-line feed).
    """

    events: int = 8
    books: int = 6
    hours: float = 24.0
    props: bool = False
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    sport_key: str = "americanfootball_nfl"
    heartbeat_s: int = 5
    push_interval_ms: int = 1000
    inplay_interval_s: float = 90.0
    activity: float = 1.0
    jump_rate: float = 0.02
    line_moves: float = 0.0
    line_only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_int("events", self.events, 1, _MAX_EVENTS)
        _check_int("books", self.books, 1, len(BOOKMAKERS))
        _check_num("hours", self.hours, 0.0, _MAX_HOURS, lo_open=True)
        if type(self.props) is not bool:
            raise ConfigError(f"props: {self.props!r} must be true or false")
        if type(self.seed) is not int:
            raise ConfigError(f"seed: {self.seed!r} must be an integer")
        _check_int("start_ms", self.start_ms, 0, _MAX_START_MS)
        if self.sport_key not in SPORTS:
            raise ConfigError(f"sport_key: {self.sport_key!r} must be one of {', '.join(sorted(SPORTS))}")
        _check_int("heartbeat_s", self.heartbeat_s, 1, 30)
        _check_int("push_interval_ms", self.push_interval_ms, 0, 60_000)
        _check_num("inplay_interval_s", self.inplay_interval_s, 1.0, 600.0)
        _check_num("activity", self.activity, 0.0, 100.0)
        _check_num("jump_rate", self.jump_rate, 0.0, 10.0)
        _check_num("line_moves", self.line_moves, 0.0, 10.0)
        keys = [b.key for b in BOOKMAKERS]
        if not isinstance(self.line_only, tuple) or not all(isinstance(b, str) and b in keys for b in self.line_only):
            raise ConfigError(f"line_only: {self.line_only!r} must be a tuple of bookmakers from {', '.join(keys)}")

    @property
    def end_ms(self) -> int:
        """Unix ms at which the recording ends."""
        return self.start_ms + round(self.hours * HOUR_MS)

    @property
    def bookmakers(self) -> tuple[BookProfile, ...]:
        """The books quoting, in order."""
        return BOOKMAKERS[: self.books]
