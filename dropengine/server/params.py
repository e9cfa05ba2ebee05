"""Query parameters of ``/v1/odds-drop`` (SPEC section 7), validated. Pure.

Every invalid value raises :class:`ParamError` naming the parameter, the value and the
accepted range, which the server turns into a 400 with a JSON body. So does an unknown
parameter (a typo such as ``treshold`` would otherwise silently mean the default) and a
repeated one (which of two thresholds was meant cannot be guessed). Values are never echoed
for ``apiKey``.

One exception: a malformed resume cursor (``Last-Event-ID`` or ``last_event_id`` that is not
``EPOCH-SEQ``) is not a 400 but a ``reset`` (SPEC 7: "an explicit reset frame when it
cannot"; issue 13: a malformed cursor gets a reset). A browser's EventSource treats a non-200
answer as fatal and would never reconnect; with a reset it goes on from now (or from
``since``), told why. :attr:`StreamRequest.cursor_reset` carries that reason (the bad text
shortened, the API key masked); every server (``serve`` and ``serve --bus``) hands it to
:meth:`~dropengine.server.hub.Hub.subscribe`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

from ..core.alerts import SIGNALS
from ..core.errors import ConfigError, short_repr
from ..core.filters import DIRECTIONS, AlertFilter, parse_csv
from ..core.options import DetectOptions
from ..core.quote import KINDS, MAX_MS
from ..core.rules import written_line
from ..formats.query import HEARTBEAT_RANGE
from .hub import Cursor, parse_cursor

__all__ = [
    "DEFAULT_LINE_THRESHOLD", "DEFAULT_TYPES", "KNOWN_PARAMETERS", "LINE_THRESHOLD_RANGE", "THRESHOLD_RANGE",
    "TYPES", "MultiItems", "ParamError", "Query", "StreamRequest", "agreed_steam", "check_served", "mask",
    "parse_request", "steam_echo",
]

THRESHOLD_RANGE: Final = (1, 200)
_SPORT: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ID: Final = re.compile(r"[^\x00-\x1f,]{1,200}")
_INT: Final = re.compile(r"[0-9]{1,19}")
#: Alert types of SPEC section 7's ``types`` (the core's one list), and the default: the
#: vendor's stream, price drops only (the core's default).
TYPES: Final = SIGNALS
DEFAULT_TYPES: Final = DetectOptions().types
#: SPEC 7's ``line_threshold`` (points): its range, and its default (SPEC 10's, the core's).
LINE_THRESHOLD_RANGE: Final = (0.25, 20.0)
DEFAULT_LINE_THRESHOLD: Final = DetectOptions().line_threshold
_DECIMAL: Final = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?")
#: Every query parameter of the stream endpoints (``sports`` only on ``/multi``).
KNOWN_PARAMETERS: Final = frozenset({
    "threshold", "direction", "bookmakers", "markets", "kinds", "event_id", "since", "heartbeat_s",
    "last_event_id", "sports", "apiKey", "types", "line_threshold",
})
_ORDER: Final = ("threshold", "direction", "bookmakers", "markets", "kinds", "event_id", "since", "heartbeat_s",
                 "last_event_id", "types", "line_threshold", "sports", "apiKey")


@runtime_checkable
class MultiItems(Protocol):
    """A multi-valued query (Starlette's ``QueryParams``): every (name, value) pair, repeats kept."""

    def multi_items(self) -> list[tuple[str, str]]: ...


#: A query: a multi-valued one, (name, value) pairs in order, or a plain mapping (no repeats to see).
Query: TypeAlias = MultiItems | Mapping[str, str] | Iterable[tuple[str, str]]


class ParamError(ValueError):
    """One bad query parameter: ``parameter``, what is wrong, and what is accepted."""

    def __init__(self, parameter: str, message: str, accepted: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message
        self.accepted = accepted

    def body(self, secrets: Iterable[str] = ()) -> dict[str, str]:
        """The 400 body. ``secrets`` (the API key the request presented) are masked wherever
        the client put them: a bare ``?KEY``, a value of another parameter, a name."""
        parameter, message = self.parameter, self.message
        for secret in secrets:
            if secret:
                parameter = _mask(parameter, secret)
                message = _mask(message, secret)
        return {"error": "invalid parameter", "parameter": parameter, "message": message, "accepted": self.accepted}


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` (API keys) masked (see :func:`_mask`)."""
    for secret in secrets:
        if secret:
            text = _mask(text, secret)
    return text


def _mask(text: str, secret: str) -> str:
    """``text`` without ``secret`` (case-insensitively) nor the prefix of it that a shortened
    echo (``_show``: 40 characters, a name: 64) may hold."""
    out = re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE)
    for cut in (40, 64):
        if len(secret) > cut:
            out = re.sub(re.escape(secret[:cut]), "***", out, flags=re.IGNORECASE)
    # a shortened echo may have cut the key anywhere (it need not start the text): any prefix of
    # it that the cut left in front of the "..." goes too
    for n in range(min(len(secret), 64) - 1, 3, -1):
        out = re.sub(re.escape(secret[:n]) + r"(?=\.\.\.)", "***", out, flags=re.IGNORECASE)
    return out


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """A validated stream request: the filter, the heartbeat, and the resume cursor."""

    filter: AlertFilter
    heartbeat_s: int
    cursor: Cursor | None
    #: A malformed cursor: the reason of the ``reset`` the stream starts with (``cursor`` is
    #: then ``None``: from now, or from ``since``). ``None`` when the cursor was fine or absent.
    cursor_reset: str | None = None


def _show(value: str) -> str:
    return short_repr(value, text=40)


def _pairs(query: Query) -> list[tuple[str, str]]:
    if isinstance(query, MultiItems):
        return list(query.multi_items())
    if isinstance(query, Mapping):
        return list(query.items())
    return list(query)


def _single(query: Query, multi: bool) -> dict[str, str]:
    """One value per known parameter, or :class:`ParamError` for the first unknown or repeated one."""
    pairs = _pairs(query)
    known = [n for n in _ORDER if multi or n != "sports"]
    for name, _ in pairs:
        if name not in known:
            shown = name if len(name) <= 64 else name[:64] + "..."
            where = " (only on /v1/odds-drop/multi)" if name == "sports" else ""
            raise ParamError(shown, f"{_show(name)} is an unknown parameter{where}", ", ".join(known))
    for name, times in Counter(n for n, _ in pairs).items():
        if times > 1:
            raise ParamError(name, f"given {times} times; give it once", f"one value of {name}")
    return dict(pairs)


def _int(query: Mapping[str, str], name: str, lo: int, hi: int, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not _INT.fullmatch(text) or not lo <= int(text) <= hi:
        raise ParamError(name, f"{_show(raw)} is not an integer in {lo}..{hi}", f"integer {lo}..{hi}")
    return int(text)


def _points(query: Mapping[str, str], name: str, lo: float, hi: float, default: float) -> int | float:
    """A decimal number of points in ``lo..hi`` (written as SPEC 2 writes a line: ``1``, ``0.5``)."""
    raw = query.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not _DECIMAL.fullmatch(text) or not lo <= float(text) <= hi:
        raise ParamError(name, f"{_show(raw)} is not a number of points in {lo:g}..{hi:g}", f"points {lo:g}..{hi:g}")
    return written_line(float(text))


def _csv(
    query: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str, accepted: str | None = None
) -> frozenset[str] | None:
    raw = query.get(name)
    if raw is None:
        return None
    accepted = accepted or f"comma-separated {what}"
    try:
        items = parse_csv(raw, name)  # the one list rule (core.filters)
    except ConfigError:
        items = None
    if items is None or len(items) > 500:
        raise ParamError(name, f"{_show(raw)} is not a comma-separated list of {what}", accepted)
    bad = [p for p in items if not pattern.fullmatch(p)]
    if bad:
        raise ParamError(name, f"{_show(bad[0])} is not a valid {what[:-1]}", accepted)
    return frozenset(items)


def parse_request(
    raw_query: Query, *, sport: str | None = None, multi: bool = False, last_event_id: str | None = None,
    secrets: Iterable[str] = (),
) -> StreamRequest:
    """Validate ``query`` for ``/v1/odds-drop/{sport}`` (``sport``), ``/all`` (neither) or
    ``/multi`` (``multi``: ``sports`` required). ``last_event_id`` is the header's value;
    the ``last_event_id`` query parameter wins when both are given. Pass the multi-valued
    query (Starlette's ``request.query_params``, or (name, value) pairs) so that a repeated
    parameter is seen; a plain mapping cannot hold repeats. A malformed cursor is no error
    but :attr:`StreamRequest.cursor_reset` (see the module docstring), ``secrets`` (the API
    key presented) masked in it."""
    query = _single(raw_query, multi)
    secrets = tuple(secrets)  # used twice for a malformed cursor
    threshold = _int(query, "threshold", *THRESHOLD_RANGE, default=10)
    assert threshold is not None
    direction = query.get("direction", "both").strip()
    if direction not in DIRECTIONS:
        raise ParamError("direction", f"{_show(direction)} is not a direction", " | ".join(DIRECTIONS))
    heartbeat = _int(query, "heartbeat_s", *HEARTBEAT_RANGE, default=5)
    assert heartbeat is not None
    since = _int(query, "since", 0, MAX_MS, default=None)
    event_id = query.get("event_id")
    if event_id is not None and not _ID.fullmatch(event_id.strip()):
        raise ParamError("event_id", f"{_show(event_id)} is not an event id", "one event id (1-200 characters)")
    kinds = _csv(query, "kinds", re.compile("|".join(KINDS)), "kinds",
                 "comma-separated, each one of: " + ", ".join(KINDS))
    types = _csv(query, "types", re.compile("|".join(TYPES)), "types",
                 "comma-separated, each one of: " + ", ".join(TYPES))
    line_threshold = _points(query, "line_threshold", *LINE_THRESHOLD_RANGE, default=DEFAULT_LINE_THRESHOLD)
    bookmakers = _csv(query, "bookmakers", _SPORT, "bookmakers")
    markets = _csv(query, "markets", _SPORT, "market keys")
    sports: frozenset[str] | None = None
    if sport is not None:
        if not _SPORT.fullmatch(sport):
            raise ParamError("sport_key", f"{_show(sport)} is not a sport key", "a sport key such as basketball_nba")
        sports = frozenset({sport})
    elif multi:
        if query.get("sports") is None:
            raise ParamError("sports", "missing", "comma-separated sport keys, e.g. sports=basketball_nba,soccer_epl")
        sports = _csv(query, "sports", _SPORT, "sport keys")
    cursor: Cursor | None = None
    cursor_reset: str | None = None
    raw_cursor = query.get("last_event_id")
    name = "last_event_id"
    if raw_cursor is None and last_event_id is not None:
        raw_cursor, name = last_event_id, "Last-Event-ID"
    if raw_cursor is not None and raw_cursor.strip():
        cursor = parse_cursor(raw_cursor)
        if cursor is None:  # a reset, not a 400 (module docstring); the text shortened, keys masked
            since_text = "from since" if since is not None else "from now"
            shown = _show(mask(raw_cursor, secrets))  # masked before it is shortened (a cut key is no match)
            cursor_reset = mask(f"{name} {shown} is not an alert id (EPOCH-SEQ, an id this server sent): "
                                f"resuming {since_text}", secrets)
    flt = AlertFilter(
        direction,  # one of DIRECTIONS, checked above
        sports, frozenset({event_id.strip()}) if event_id is not None else None, bookmakers, markets, kinds,
        threshold=threshold, since=since,
        # the effective values, also when not given (the connected frame echoes them): the
        # server detects every type at 0.25 points, so the default 0.5 is a filter too
        types=types if types is not None else DEFAULT_TYPES, line_threshold=line_threshold,
    )
    return StreamRequest(flt, heartbeat, cursor, cursor_reset)


# -- what a log of detected alerts can serve (``serve --bus``) -------------------------------------

def check_served(flt: AlertFilter, detectors: Sequence[DetectOptions]) -> None:
    """Refuse (:class:`ParamError`, a 400 naming the parameter and the detectors' value) a
    request that the alert log, written by detectors with ``detectors``' options, cannot
    serve exactly; nothing when it can, or when no detector is known (``[]``: nothing to judge
    by yet). The one rule of ``serve --bus`` (SPEC 7: each connection only post-filters, so a
    frontend must never accept a filter wider than what was detected and silently deliver less).

    A frontend holds only what every detector (partition) kept, so the request must lie within
    the weakest of them:

    - ``types``: each asked type detected by every detector;
    - ``threshold`` (when ``odds_drop`` is asked): at least the largest detector threshold (its
      filter's too); refused outright when a detector measures in another unit (``prob``:
      a threshold in cents is no exact post-filter of it) or from its anchor
      (``reference=anchor``: its alerts are not the last-price moves a threshold filters);
    - ``line_threshold`` (when ``line_move`` is asked): at least the largest detector line
      threshold; refused outright when a detector measures from its anchor (as above);
    - ``direction``, ``sports``, ``event_id``, ``bookmakers``, ``markets``, ``kinds``: within
      each detector's own filter (a detector keeping ``toward_dog`` only cannot serve ``both``).

    Steam is judged by ``types`` alone: it is detected with the detectors' own settings (echoed
    by :func:`agreed_steam`), as the single process's with the server's. Not judged: a
    detector's ``cooldown_ms`` (suppressed alerts are a detection setting, not a filter) and
    ``reprime_after_suspension=False`` (it adds alerts, never removes them).
    """
    if not detectors:
        return
    asked = flt.types if flt.types is not None else frozenset(SIGNALS)
    held = frozenset(SIGNALS)
    for o in detectors:
        held &= o.types & (o.filter.types if o.filter.types is not None else held)
    missing = [t for t in SIGNALS if t in asked and t not in held]
    if missing:
        kept = ", ".join(t for t in SIGNALS if t in held) or "none"
        raise ParamError("types", f"{missing[0]} is not detected by every detector of the alert log "
                                  f"(all of them detect: {kept})", f"comma-separated, each one of: {kept}")
    if "odds_drop" in asked:
        _check_threshold(flt.threshold if flt.threshold is not None else THRESHOLD_RANGE[0], detectors)
    if "line_move" in asked:
        line = flt.line_threshold if flt.line_threshold is not None else LINE_THRESHOLD_RANGE[0]
        for o in detectors:
            if o.reference == "anchor":
                raise ParamError("line_threshold", f"{line:g}: the detectors measure line moves from an anchor "
                                                   f"(reference anchor, line threshold {o.line_threshold:g}), not "
                                                   f"from the last line, so no line threshold filters them exactly",
                                 "types without line_move")
        floor = max(max(o.line_threshold, o.filter.line_threshold or 0) for o in detectors)
        if line < floor:
            raise ParamError("line_threshold", f"{line:g} is below the detectors' line threshold ({floor:g} "
                                               f"points): smaller line moves are not in the alert log",
                             f"points {floor:g}..{LINE_THRESHOLD_RANGE[1]:g}")
    for o in detectors:
        kept_dir = o.filter.direction
        if kept_dir != "both" and flt.direction != kept_dir:
            raise ParamError("direction", f"{flt.direction} is not in the alert log: its detectors keep "
                                          f"{kept_dir} only", kept_dir)
        for name, field in (("sports", "sports"), ("event_id", "event_ids"), ("bookmakers", "bookmakers"),
                            ("markets", "markets"), ("kinds", "kinds")):
            theirs: frozenset[str] | None = getattr(o.filter, field)
            ours: frozenset[str] | None = getattr(flt, field)
            if theirs is not None and (ours is None or not ours <= theirs):
                shown = "every one" if ours is None else ", ".join(sorted(ours - theirs))
                raise ParamError(name, f"{_show(shown)}: the alert log holds only {_show(', '.join(sorted(theirs)))} "
                                       f"(the detectors' filter)", f"within: {', '.join(sorted(theirs))}")


def _check_threshold(t: int | float, detectors: Sequence[DetectOptions]) -> None:
    """:func:`check_served`'s price threshold rule."""
    for o in detectors:
        if o.unit != "cents":
            raise ParamError("threshold", f"{t:g}: the detectors measure price moves in {o.unit} (threshold "
                                          f"{o.threshold:g} {o.unit}), which a threshold in cents cannot filter "
                                          f"exactly", "types without odds_drop")
        if o.reference == "anchor":
            raise ParamError("threshold", f"{t:g}: the detectors measure price moves from an anchor (reference "
                                          f"anchor, threshold {o.threshold:g}), not from the last price, so no "
                                          f"threshold filters them exactly", "types without odds_drop")
    floor = max(max(o.threshold, o.filter.threshold or 0) for o in detectors)
    if t < floor:
        raise ParamError("threshold", f"{t:g} is below the detectors' threshold ({floor:g} cents): smaller price "
                                      f"drops are not in the alert log",
                         f"integer {math.ceil(floor)}..{THRESHOLD_RANGE[1]}")


def steam_echo(options: DetectOptions) -> dict[str, Any]:
    """How ``options`` detect steam (SPEC 11), as the ``connected`` frame echoes it: the books
    needed, the window, the moves that count (cents of a price move, points of a line move;
    their defaults are the thresholds) and the book groups."""
    o = options
    return {"books": o.steam_books, "window_ms": o.steam_window_ms,
            "threshold": o.steam_threshold if o.steam_threshold is not None else o.threshold,
            "line_threshold": o.steam_line_threshold if o.steam_line_threshold is not None else o.line_threshold,
            "groups": [sorted(g) for g in o.steam_groups]}


def agreed_steam(detectors: Sequence[DetectOptions]) -> dict[str, Any] | None:
    """The steam settings every detector detecting steam shares (:func:`steam_echo`);
    ``None`` when none detects steam or they differ (then nothing is echoed)."""
    echoes = [steam_echo(o) for o in detectors if "steam" in o.types]
    if not echoes or any(e != echoes[0] for e in echoes[1:]):
        return None
    return echoes[0]
