"""Alert filters: pure predicates over alerts (SPEC section 3, last paragraph).

Filters never change detection state; they only decide which alerts a consumer sees. The
engine applies one; the reference server applies one per connection to a shared detector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .alerts import Drop
from .errors import ConfigError

__all__ = ["DIRECTIONS", "AlertFilter", "DirectionChoice", "parse_csv"]

DirectionChoice = Literal["both", "toward_favorite", "toward_dog"]
DIRECTIONS: tuple[DirectionChoice, ...] = ("both", "toward_favorite", "toward_dog")
_KINDS = frozenset({"game", "prop"})


def parse_csv(value: str | Iterable[str] | None, name: str) -> frozenset[str] | None:
    """Normalise a filter value: ``None`` (no filter), ``"a,b"`` or an iterable of names."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raise ConfigError(f"{name}: {value!r} is bytes; give text (str) or an iterable of str")
    else:
        try:
            items = list(value)
        except TypeError:
            raise ConfigError(
                f"{name}: {value!r} must be a comma-separated string, an iterable of strings, or None"
            ) from None
    out = set()
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{name}: {item!r} is not a string")
        item = item.strip()
        if item:
            out.add(item)
    if not out:
        raise ConfigError(f"{name}: empty filter (give at least one value, or none at all)")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts pass: by direction, sport, event, bookmaker, market key and kind.

    ``None`` for a field means "no restriction". Build one with :meth:`build` to accept
    comma-separated strings and get errors that name the offending argument.
    """

    direction: DirectionChoice = "both"
    sports: frozenset[str] | None = None
    event_ids: frozenset[str] | None = None
    bookmakers: frozenset[str] | None = None
    markets: frozenset[str] | None = None
    kinds: frozenset[str] | None = None

    def __post_init__(self) -> None:
        # Built directly (not through build()), a plain string would match by substring:
        # every restriction must be None or a frozenset of non-empty strings.
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction: {self.direction!r} must be one of {', '.join(DIRECTIONS)}")
        for name in ("sports", "event_ids", "bookmakers", "markets", "kinds"):
            value = getattr(self, name)
            if value is None:
                continue
            if type(value) is not frozenset or not value or not all(type(v) is str and v for v in value):
                raise ConfigError(
                    f"{name}: {value!r} must be None or a non-empty frozenset of non-empty strings"
                    " (AlertFilter.build also takes text and iterables)"
                )
        if self.kinds is not None and not self.kinds <= _KINDS:
            raise ConfigError(f"kinds: {', '.join(sorted(self.kinds - _KINDS))} not allowed (use game, prop)")

    @classmethod
    def build(
        cls,
        direction: str = "both",
        sports: str | Iterable[str] | None = None,
        event_id: str | Iterable[str] | None = None,
        bookmakers: str | Iterable[str] | None = None,
        markets: str | Iterable[str] | None = None,
        kinds: str | Iterable[str] | None = None,
    ) -> AlertFilter:
        """Validate and normalise filter arguments."""
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction: {direction!r} must be one of {', '.join(DIRECTIONS)}")
        direction = DIRECTIONS[DIRECTIONS.index(direction)]  # the plain str, not a subclass of it
        kind_set = parse_csv(kinds, "kinds")
        if kind_set is not None and not kind_set <= _KINDS:
            bad = sorted(kind_set - _KINDS)
            raise ConfigError(f"kinds: {', '.join(bad)} not allowed (use game, prop)")
        return cls(
            direction=direction,
            sports=parse_csv(sports, "sports"),
            event_ids=parse_csv(event_id, "event_id"),
            bookmakers=parse_csv(bookmakers, "bookmakers"),
            markets=parse_csv(markets, "markets"),
            kinds=kind_set,
        )

    @property
    def passes_all(self) -> bool:
        """True when the filter lets every alert through (the fast path skips it)."""
        return (
            self.direction == "both"
            and self.sports is None
            and self.event_ids is None
            and self.bookmakers is None
            and self.markets is None
            and self.kinds is None
        )

    def accepts(self, drop: Drop) -> bool:
        """Whether ``drop`` passes every restriction."""
        if self.direction != "both" and drop.direction != self.direction:
            return False
        if self.sports is not None and drop.sport_key not in self.sports:
            return False
        if self.event_ids is not None and drop.event_id not in self.event_ids:
            return False
        if self.bookmakers is not None and drop.bookmaker not in self.bookmakers:
            return False
        if self.markets is not None and drop.market_key not in self.markets:
            return False
        return self.kinds is None or drop.kind in self.kinds
