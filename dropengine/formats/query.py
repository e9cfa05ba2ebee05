"""The vendor stream's query parameters (SPEC section 5) as one typed value.

``GET /v1/sse/odds/{sport}`` and ``/ws/odds/{sport}`` take ``event_id``, ``bookmakers``,
``markets``, ``kinds``, ``since`` and ``heartbeat_s``. :class:`StreamQuery` is that query:
the live client builds one from its options and encodes it (:meth:`StreamQuery.params`);
the mock upstream decodes a request's parameters into one (:meth:`StreamQuery.from_params`).
Both sides check with the same rules, so whatever the client sends the mock accepts, and
``from_params(q.params()) == q`` for every valid ``q``. Pure: no I/O, no clock.

Errors are :class:`QueryError` (a :class:`~dropengine.core.errors.ConfigError`) naming the
parameter (``.parameter``) and the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..core.errors import ConfigError, short_repr
from ..core.filters import parse_csv
from ..core.quote import KINDS, MAX_MS

__all__ = ["HEARTBEAT_RANGE", "PARAMETERS", "QueryError", "StreamQuery"]

#: Every parameter of the query, in the order they are encoded.
PARAMETERS: Final = ("event_id", "bookmakers", "markets", "kinds", "since", "heartbeat_s")
#: ``since`` is unix milliseconds, bounded as every ``last_update`` is (core.quote.MAX_MS):
#: the client resumes with the newest ``last_update`` it decoded, so any time the decoder takes
#: must be a ``since`` this type (and the mock) takes back. 19 digits bound the parse.
_SINCE_DIGITS: Final = len(str(MAX_MS))
#: The vendor's ``heartbeat_s`` bounds (seconds, inclusive): the client and the mock check these.
HEARTBEAT_RANGE: Final = (1, 30)
_HEARTBEAT_TEXT: Final = f"{HEARTBEAT_RANGE[0]}..{HEARTBEAT_RANGE[1]}"


class QueryError(ConfigError):
    """A stream query parameter is invalid; ``parameter`` names it (the message, the value)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def _show(value: object) -> str:
    """A bounded repr of a (possibly client-supplied) value for error messages."""
    return short_repr(value, 63, text=40)


def _names(parameter: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """A comma-separated list (or an iterable of names) as a tuple in the order given,
    stripped and without repeats; ``()`` for ``None``. Empty lists are an error."""
    if value is None:
        return ()
    try:
        parse_csv(value, parameter)  # the one rule for filter lists: text items, at least one
    except ConfigError as exc:
        raise QueryError(parameter, f"{_show(value)}: {str(exc).removeprefix(f'{parameter}: ')}") from None
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(x.strip() for x in items if x.strip()))


@dataclass(frozen=True, slots=True)
class StreamQuery:
    """The query of one vendor odds stream. Empty tuples and ``None`` mean "not given".

    Construct with :meth:`build` (validates and normalises) or :meth:`from_params`
    (a request's query); the constructor itself validates too, so no invalid value exists.
    """

    event_id: str | None = None
    bookmakers: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    since: int | None = None
    heartbeat_s: int | None = None

    def __post_init__(self) -> None:
        if self.event_id is not None and (not isinstance(self.event_id, str) or not self.event_id.strip()):
            raise QueryError("event_id", f"{_show(self.event_id)} is empty; give an event id or none")
        for name in ("bookmakers", "markets", "kinds"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not all(
                isinstance(v, str) and v and v == v.strip() and "," not in v for v in values
            ) or len(set(values)) != len(values):
                raise QueryError(name, f"{_show(values)} is not a tuple of distinct, stripped names without commas")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise QueryError("kinds", f"{_show(bad[0])} is not game or prop")
        since = self.since
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)
                                  or not 0 <= since <= MAX_MS):
            raise QueryError("since", f"{_show(since)} is not a unix-ms timestamp")
        hb = self.heartbeat_s
        if hb is not None and (isinstance(hb, bool) or not isinstance(hb, int)
                               or not HEARTBEAT_RANGE[0] <= hb <= HEARTBEAT_RANGE[1]):
            raise QueryError("heartbeat_s", f"{_show(hb)} is not an integer {_HEARTBEAT_TEXT}")

    @classmethod
    def build(
        cls,
        event_id: str | None = None,
        bookmakers: str | Iterable[str] | None = None,
        markets: str | Iterable[str] | None = None,
        kinds: str | Iterable[str] | None = None,
        since: int | None = None,
        heartbeat_s: int | None = None,
    ) -> StreamQuery:
        """A query from options: lists as ``"a,b"`` or iterables (kept in the order given)."""
        return cls(event_id, _names("bookmakers", bookmakers), _names("markets", markets),
                   _names("kinds", kinds), since, heartbeat_s)

    @classmethod
    def from_params(cls, query: Mapping[str, str]) -> StreamQuery:
        """The query of a request (parameters it does not know are ignored, as the vendor does)."""
        return cls.build(
            query.get("event_id"),
            query.get("bookmakers"),
            query.get("markets"),
            query.get("kinds"),
            _digits(query, "since", "is not a unix-ms timestamp"),
            _digits(query, "heartbeat_s", f"is not an integer {_HEARTBEAT_TEXT}"),
        )

    def params(self, since: int | None = None) -> dict[str, str]:
        """The query parameters to send, in :data:`PARAMETERS` order; ``since`` (the resume
        cursor) overrides the configured one."""
        out: dict[str, str] = {}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        for name in ("bookmakers", "markets", "kinds"):
            values: tuple[str, ...] = getattr(self, name)
            if values:
                out[name] = ",".join(values)
        cursor = since if since is not None else self.since
        if cursor is not None:
            out["since"] = str(cursor)
        if self.heartbeat_s is not None:
            out["heartbeat_s"] = str(self.heartbeat_s)
        return out

    def replace(self, **changes: Any) -> StreamQuery:
        """A copy with ``changes`` (validated like any other)."""
        return dataclasses.replace(self, **changes)

    def echo(self) -> dict[str, Any]:
        """The ``filters`` object of the vendor's ``connected`` frame (``null``: not given)."""
        return {
            "event_id": self.event_id,
            "bookmakers": list(self.bookmakers) if self.bookmakers else None,
            "markets": list(self.markets) if self.markets else None,
            "kinds": list(self.kinds) if self.kinds else None,
            "since": self.since,
        }


def _digits(query: Mapping[str, str], name: str, message: str) -> int | None:
    """An unsigned decimal parameter (at most 19 digits), ``None`` when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _SINCE_DIGITS):
        raise QueryError(name, f"{_show(raw)} {message}")
    return int(raw)
