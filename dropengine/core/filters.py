"""The one alert filter: pure predicates over alerts (SPEC section 3, last paragraph; SPEC 7).

Filters never change detection state; they only decide which alerts a consumer sees. The
engine applies one (direction and attributes); the reference server applies one per
connection to a shared detector at 1 cent (with the connection's ``threshold`` and ``since``);
the batch engine builds its polars filter from the same fields (each predicate's meaning is
:meth:`AlertFilter.accepts`; the threshold and direction come from :mod:`.rules`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .alerts import SIGNALS, Alert, Drop, LineMove, Steam, by_signal_order
from .errors import ConfigError, short_repr
from .quote import KINDS, MAX_MS
from .rules import DIRECTIONS, DirectionChoice, crosses, direction_accepts

__all__ = ["DIRECTIONS", "AlertFilter", "DirectionChoice", "check_threshold", "parse_csv"]

_KINDS = frozenset(KINDS)


def check_threshold(value: object, name: str = "threshold") -> int | float:
    """A positive finite threshold as a plain int or float; ConfigError naming ``name`` otherwise."""
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        ok = False
    if not ok:
        raise ConfigError(f"{name}: {short_repr(value)} must be a positive finite number")
    # subclasses (numpy.float64, bool excluded above) are stored as the plain values they stand for
    return int(value) if isinstance(value, int) else float(value)  # type: ignore[arg-type]


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
        out.add(item.strip())
    if not out or out == {""}:
        raise ConfigError(f"{name}: empty filter (give at least one value, or none at all)")
    if "" in out:
        # one rule for every list (CLI, Python, the server's query, the mock's): an empty item
        # is more likely a typo than a wish, so it is refused, not dropped
        shown = value if isinstance(value, str) else ",".join(str(i) for i in items)
        raise ConfigError(f"{name}: {shown[:80]!r} has an empty item")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts pass: by direction, sport, event, bookmaker, market key and kind, and
    (the server's per-connection post-filters) by ``threshold`` (``|delta|`` in cents, compared
    as :func:`.rules.crosses` does) and ``since`` (``timestamp > since``: produced after it).

    ``None`` for a field means "no restriction". Build one with :meth:`build` to accept
    comma-separated strings and get errors that name the offending argument.
    """

    direction: DirectionChoice = "both"
    sports: frozenset[str] | None = None
    event_ids: frozenset[str] | None = None
    bookmakers: frozenset[str] | None = None
    markets: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    threshold: int | float | None = None
    since: int | None = None
    #: alert types kept (SPEC 7 ``types``; ``None``: every type the engine returns)
    types: frozenset[str] | None = None
    #: minimum ``|points|`` of a line move (SPEC 7 ``line_threshold``), compared as ``threshold``
    line_threshold: int | float | None = None

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
            raise ConfigError(f"kinds: {', '.join(sorted(self.kinds - _KINDS))} not allowed (use {', '.join(KINDS)})")
        if self.threshold is not None:
            object.__setattr__(self, "threshold", check_threshold(self.threshold))
        if self.since is not None and (type(self.since) is not int or not 0 <= self.since <= MAX_MS):
            raise ConfigError(f"since: {self.since!r} must be None or a non-negative integer (unix ms)")
        types = self.types
        if types is not None and (type(types) is not frozenset or not types or not types <= set(SIGNALS)):
            raise ConfigError(f"types: {types!r} must be None or a non-empty frozenset of {', '.join(SIGNALS)}")
        if self.line_threshold is not None:
            object.__setattr__(self, "line_threshold", check_threshold(self.line_threshold, "line_threshold"))

    @classmethod
    def build(
        cls,
        direction: str = "both",
        sports: str | Iterable[str] | None = None,
        event_id: str | Iterable[str] | None = None,
        bookmakers: str | Iterable[str] | None = None,
        markets: str | Iterable[str] | None = None,
        kinds: str | Iterable[str] | None = None,
        *,
        threshold: float | None = None,
        since: int | None = None,
        types: str | Iterable[str] | None = None,
        line_threshold: float | None = None,
    ) -> AlertFilter:
        """Normalise filter arguments (text or iterables to frozensets); the checks are
        :meth:`__post_init__`'s, one place for both ways of building a filter."""
        if direction in DIRECTIONS:
            direction = DIRECTIONS[DIRECTIONS.index(direction)]  # the plain str, not a subclass of it
        kind_set = parse_csv(kinds, "kinds")
        type_set = parse_csv(types, "types")
        if type_set is not None and not type_set <= set(SIGNALS):
            bad = sorted(type_set - set(SIGNALS))[0]
            raise ConfigError(f"types: {bad!r} is not an alert type (use {', '.join(SIGNALS)})")
        return cls(
            direction=direction,  # type: ignore[arg-type]  # judged in __post_init__
            sports=parse_csv(sports, "sports"),
            event_ids=parse_csv(event_id, "event_id"),
            bookmakers=parse_csv(bookmakers, "bookmakers"),
            markets=parse_csv(markets, "markets"),
            kinds=kind_set,
            threshold=threshold,
            since=since,
            types=type_set,
            line_threshold=line_threshold,
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
            and self.threshold is None
            and self.since is None
            and self.types is None
            and self.line_threshold is None
        )

    def accepts(self, drop: Alert) -> bool:
        """Whether an alert of any type passes every restriction: the one definition of each
        predicate (the batch engine's polars filter is built to the same meaning, and tested
        equal). ``threshold`` judges a price drop's ``delta`` and ``line_threshold`` a line
        move's ``points`` (each type keeps its own scale); a steam passes ``bookmakers`` when
        any of its books is listed."""
        if self.types is not None and drop.type not in self.types:
            return False
        if isinstance(drop, Drop):
            if self.threshold is not None and not crosses(drop.delta, self.threshold):
                return False
        elif (isinstance(drop, LineMove) and self.line_threshold is not None
              and not crosses(drop.points, self.line_threshold)):
            return False
        if self.since is not None and drop.timestamp <= self.since:
            return False
        if not direction_accepts(self.direction, drop.direction):
            return False
        if self.sports is not None and drop.sport_key not in self.sports:
            return False
        if self.event_ids is not None and drop.event_id not in self.event_ids:
            return False
        if self.bookmakers is not None:
            if isinstance(drop, Steam):
                if not any(b.bookmaker in self.bookmakers for b in drop.books):
                    return False
            elif drop.bookmaker not in self.bookmakers:
                return False
        if self.markets is not None and drop.market_key not in self.markets:
            return False
        return self.kinds is None or drop.kind in self.kinds

    def echo(self) -> dict[str, Any]:
        """The effective filters as plain data (the server's ``connected`` frame shows them)."""

        def seq(v: frozenset[str] | None) -> list[str] | None:
            return sorted(v) if v is not None else None

        event_id: str | list[str] | None = seq(self.event_ids)
        if event_id is not None and len(event_id) == 1:
            event_id = event_id[0]  # the server takes one event id
        return {
            "threshold": self.threshold, "direction": self.direction, "sports": seq(self.sports),
            "event_id": event_id, "bookmakers": seq(self.bookmakers), "markets": seq(self.markets),
            "kinds": seq(self.kinds), "since": self.since,
            **({} if self.types is None else {"types": list(by_signal_order(self.types))}),
            **({} if self.line_threshold is None else {"line_threshold": self.line_threshold}),
        }
