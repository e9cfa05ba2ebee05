"""What a client asks ``/v1/odds-drop`` for (SPEC 7): the route and every query filter, typed. Pure.

:class:`DropQuery` holds the route (one sport, a list for ``/multi``, or ``/all``) and the
filters ``threshold``, ``direction``, ``bookmakers``, ``markets``, ``kinds``, ``types``,
``line_threshold``, ``event_id``, ``since`` and ``heartbeat_s``. It checks what the core
defines (directions, kinds, alert types, the list rule, unix-ms times, the vendor's heartbeat
range, which is also the client's dead-connection rule) and leaves the numeric ranges of
``threshold`` and ``line_threshold`` to the server: ours and the vendor's differ (the vendor's
AsyncAPI documents another default threshold), and the server's 400 names the parameter and
its range, which the client raises as an :class:`~dropengine.core.errors.UpstreamError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ..core.alerts import Signal, by_signal_order
from ..core.errors import ConfigError, short_repr
from ..core.filters import DIRECTIONS, DirectionChoice, parse_csv
from ..core.options import parse_types
from ..core.quote import KINDS, MAX_MS
from ..formats.query import HEARTBEAT_RANGE
from ..live.transport import is_sport_key

__all__ = ["DEFAULT_HEARTBEAT_S", "DropQuery"]

#: The heartbeat the client asks for (SPEC 7's default); no frame for twice it means dead.
DEFAULT_HEARTBEAT_S: Final = 5

Names = str | Iterable[str] | None


def _names(name: str, value: Names) -> tuple[str, ...] | None:
    """A filter list (``"a,b"`` or an iterable) as a sorted tuple; ``None`` when not given."""
    items = parse_csv(value, name)  # the one list rule (empty items refused)
    if items is None:
        return None
    bad = [i for i in items if not is_sport_key(i)]
    if bad:
        raise ConfigError(f"{name}: {short_repr(bad[0])} is not a key (letters, digits, _ . -)")
    return tuple(sorted(items))


def _number(name: str, value: object, *, integer: bool) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name}: {short_repr(value)} must be {kind} (the server checks its range)")


@dataclass(frozen=True, slots=True)
class DropQuery:
    """One ``/v1/odds-drop`` request: the route and its filters. ``None``: not sent (the
    server's default). Build with :meth:`build` (text or iterables); the constructor validates
    too, so no invalid query exists.

    ``sports``: ``None`` is ``/all``; one key is ``/v1/odds-drop/{key}`` (``multi=False``) or
    ``/multi?sports=key`` (``multi=True``); several are ``/multi``.
    """

    sports: tuple[str, ...] | None = None
    multi: bool = False
    threshold: int | None = None
    direction: DirectionChoice | None = None
    bookmakers: tuple[str, ...] | None = None
    markets: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    types: tuple[Signal, ...] | None = None
    line_threshold: int | float | None = None
    event_id: str | None = None
    since: int | None = None
    heartbeat_s: int = DEFAULT_HEARTBEAT_S

    def __post_init__(self) -> None:
        s = self.sports
        if s is not None:
            if not isinstance(s, tuple) or not s:
                raise ConfigError(f"sport: {short_repr(s)} must be one sport key, a non-empty list, or None (/all)")
            bad = [k for k in s if not is_sport_key(k)]
            if bad:
                raise ConfigError(f"sport: {short_repr(bad[0])} is not a sport key (letters, digits, _ . -)")
            if len(set(s)) != len(s):
                raise ConfigError(f"sport: {short_repr(s)} lists a sport twice")
            if len(s) > 1 and not self.multi:
                raise ConfigError("multi: several sports need /multi (multi=True)")
        elif self.multi:
            raise ConfigError("multi: /multi needs the sports (sport=[...])")
        if self.threshold is not None:
            _number("threshold", self.threshold, integer=True)
        if self.line_threshold is not None:
            _number("line_threshold", self.line_threshold, integer=False)
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ConfigError(f"direction: {short_repr(self.direction)} must be one of {', '.join(DIRECTIONS)}")
        for name in ("bookmakers", "markets", "kinds", "types"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, tuple) or not value
                                      or not all(isinstance(v, str) and is_sport_key(v) for v in value)):
                raise ConfigError(f"{name}: {short_repr(value)} must be a non-empty tuple of keys (or None)")
        if self.kinds is not None and not set(self.kinds) <= set(KINDS):
            raise ConfigError(f"kinds: {short_repr(self.kinds)} must be game and/or prop")
        if self.types is not None:
            parse_types(self.types)  # names each unknown type
        e = self.event_id
        if e is not None and (not isinstance(e, str) or not e.strip() or "," in e
                              or any(ord(c) < 32 for c in e)):
            raise ConfigError(f"event_id: {short_repr(e)} must be one event id (no comma, no control character)")
        since = self.since
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_MS):
            raise ConfigError(f"since: {short_repr(since)} must be a unix-ms time (an integer >= 0)")
        hb = self.heartbeat_s
        low, high = HEARTBEAT_RANGE
        if isinstance(hb, bool) or not isinstance(hb, int) or not low <= hb <= high:
            raise ConfigError(f"heartbeat_s: {short_repr(hb)} must be an integer {low}..{high}")

    @classmethod
    def build(
        cls,
        sport: str | Sequence[str] | None = None,
        *,
        threshold: int | None = None,
        direction: DirectionChoice | None = None,
        bookmakers: Names = None,
        markets: Names = None,
        kinds: Names = None,
        types: Names = None,
        line_threshold: float | None = None,
        event_id: str | None = None,
        since: int | None = None,
        heartbeat_s: int = DEFAULT_HEARTBEAT_S,
    ) -> DropQuery:
        """A query from options: ``sport`` a key (one sport), a list of keys (``/multi``) or
        ``None`` (``/all``); lists as ``"a,b"`` or iterables."""
        sports: tuple[str, ...] | None
        multi = False
        if sport is None:
            sports = None
        elif isinstance(sport, str):
            sports = (sport.strip(),)
        else:
            try:
                sports = tuple(s.strip() if isinstance(s, str) else s for s in sport)
            except TypeError:
                raise ConfigError(f"sport: {short_repr(sport)} must be a sport key, a list of them, or None") from None
            multi = True
        return cls(
            sports, multi, threshold, direction, _names("bookmakers", bookmakers), _names("markets", markets),
            _names("kinds", kinds), by_signal_order(parse_types(types)) if types is not None else None,
            line_threshold, event_id, since, heartbeat_s,
        )

    @property
    def path(self) -> str:
        """The route: ``/v1/odds-drop/{sport}``, ``/v1/odds-drop/multi`` or ``/v1/odds-drop/all``."""
        if self.sports is None:
            return "/v1/odds-drop/all"
        if self.multi:
            return "/v1/odds-drop/multi"
        return f"/v1/odds-drop/{self.sports[0]}"

    @property
    def sport_key(self) -> str | None:
        """The one sport of a single-sport route (frames that lack ``sport_key`` take it)."""
        return self.sports[0] if self.sports is not None and not self.multi else None

    def params(self, since: int | None = None) -> dict[str, str]:
        """The query string's parameters (no key); ``since`` (a resume cursor) overrides the
        configured one."""
        out: dict[str, str] = {}
        if self.multi and self.sports is not None:
            out["sports"] = ",".join(self.sports)
        if self.threshold is not None:
            out["threshold"] = str(self.threshold)
        if self.direction is not None:
            out["direction"] = self.direction
        for name in ("bookmakers", "markets", "kinds", "types"):
            values: tuple[str, ...] | None = getattr(self, name)
            if values is not None:
                out[name] = ",".join(values)
        if self.line_threshold is not None:
            out["line_threshold"] = format(self.line_threshold, "g")
        if self.event_id is not None:
            out["event_id"] = self.event_id
        cursor = since if since is not None else self.since
        if cursor is not None:
            out["since"] = str(cursor)
        out["heartbeat_s"] = str(self.heartbeat_s)
        return out
