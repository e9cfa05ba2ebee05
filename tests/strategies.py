"""The one hypothesis generator of quote streams (SPEC sections 1-3), and of detection options.

Import it from any test: ``from tests.strategies import quote_streams, detect_options``.

A stream is a ``list[Quote]`` over a small universe of keys (3 events x 3 books x 13 sides,
game lines and props), in arrival order, with everything the detection rules distinguish:

- prices built as *moves* from the key's last price in cents (so moves of exactly a
  threshold, creeping moves and even-money crossings are common, not rare), fresh prices
  from a ladder around even money, fractional prices in tenths and hundredths
  (``+261.9 -> +251.9``: a move of exactly 10 cents that binary floating point computes as
  ``-9.999999999999972``), both forms of even money (``+100`` after ``-100``);
- invalid prices (``0``, ``+50``, ``-99``, ``99.5``, ``100001``, ``10**30``, NaN, +-inf), null prices
  (suspensions), repeats of the last price;
- times that mostly move forward (by 0, 1 ms, a second, a minute), sometimes backward
  (stale), sometimes equal (not stale);
- many keys in random interleavings; metadata (teams, commence time, prop market label)
  on every quote of a stream, on none, or on some (a row-level choice).

With ``lines=True`` (issue 12, SPEC 10-12) the stream also moves lines: a key's side is a
*line series* (``spread_home``, ``total_over``, a prop's over) whose line moves by half and
full points, quarter points and big jumps (through and onto the key numbers 3 and 7 of an NFL
event), each new line a new price key; game line sides also send line-only observations (a
book that publishes the line without a price, ``Quote.line_only``); and the keys are several
books on a few outcomes (2 to 4 books x 1 or 2 outcomes), with times close enough for steam windows;
half of the quotes follow up the previous quote's key (dense series: a suspension then a move, a
line moving twice, ...).

Everything is drawn from hypothesis primitives, so it is deterministic under the ``ci``
profile (``derandomize=True``) and shrinks towards short streams of one key with small
moves. Sizes are kept small (up to 30 quotes, 8 keys) so that a conformance example, which
writes and replays the stream in six formats, stays in the tens of milliseconds.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from dropengine import Quote
from dropengine.core.sides import format_line

__all__ = [
    "BOOKS",
    "EVENTS",
    "GAME_SIDES",
    "INVALID_PRICES",
    "MARKET_LABELS",
    "PROP_SIDES",
    "SIDES",
    "T0",
    "SIGNAL_BOOKS",
    "SIGNAL_EVENTS",
    "SIGNAL_SIDES",
    "Universe",
    "cents_of",
    "detect_options",
    "price_of_cents",
    "quote_streams",
    "server_options",
    "signal_options",
    "signal_streams_with_options",
    "streams_with_options",
]

#: The first ``last_update`` of every stream (2025-05-11, unix ms).
T0: Final = 1_747_000_000_000

#: event_id -> (sport_key, home_team, away_team, commence_time or None)
EVENTS: Final[dict[str, tuple[str, str, str, str | None]]] = {
    "ev1": ("basketball_nba", "Lakers", "Celtics", "2026-05-12T22:30:00Z"),
    "ev2": ("basketball_nba", "Knicks", "Heat", None),
    "ev3": ("soccer_epl", "Arsenal", "Chelsea", "2026-05-13T19:00:00Z"),
}
#: Events only the line-move streams use (an NFL game: key numbers 3, 4, 6, 7, 10, 14 by default).
SIGNAL_EVENTS: Final[dict[str, tuple[str, str, str, str | None]]] = {
    "ev4": ("americanfootball_nfl", "Chiefs", "Broncos", "2026-11-09T18:00:00Z"),
}
_ALL_EVENTS: Final = {**EVENTS, **SIGNAL_EVENTS}
BOOKS: Final = ("pinnacle", "draftkings", "fanduel")
#: Four books, so that a steam of 3 books can also be missed by one.
SIGNAL_BOOKS: Final = (*BOOKS, "betmgm")
#: The line-move streams' sides: each line side starts at this line and moves from it.
SIGNAL_SIDES: Final = (
    "h2h_home", "spread_home@-3", "spread_away@3", "total_over@44.5", "total_under@44.5",
    "player_points:LeBron James:over@25.5",
)
#: Line steps in points: half and full points (most), quarter points, jumps through key numbers.
LINE_STEPS: Final = (0.5, -0.5, 1, -1, 0.5, -0.5, 1, -1, 0.25, -0.25, 1.5, -3.5, 4, -7)
#: Game sides: h2h (three-way too), spreads and totals with negative, zero, half and whole lines.
GAME_SIDES: Final = (
    "h2h_home", "h2h_away", "h2h_draw",
    "spread_home@-3.5", "spread_away@3.5", "spread_home@0", "spread_away@-7",
    "total_over@220.5", "total_under@220.5", "total_over@3",
)
#: Prop sides, players with ``:``, ``@`` and non-ASCII letters in their names (SPEC 2).
PROP_SIDES: Final = (
    "player_points:LeBron James:over@25.5",
    "player_points:A:B@C:under@24.5",
    "player_assists:Nikola Jokić:over@6",
)
SIDES: Final = GAME_SIDES + PROP_SIDES
#: The prop market label (``Quote.market``) of each prop market key.
MARKET_LABELS: Final = {"player_points": "Points", "player_assists": "Assists"}

#: Prices SPEC 1 calls invalid that a ``Quote`` can hold (a number that is not a valid price).
INVALID_PRICES: Final[tuple[int | float, ...]] = (
    0, 50, -99, 99.5, -50.0, 100001, 100000.5, -1e6, math.nan, math.inf, -math.inf, 10**30,
)
#: A ladder around even money, both forms of even money included.
LADDER: Final[tuple[int | float, ...]] = (
    -130, -125, -120, -115, -112.5, -110, -105, -102, -100, 100, 102, 105, 110, 115, 120, 125, 100.0, -110.0,
)
#: Cents moves: exactly the thresholds the options draw (cents 1, 5, 10, 2.5, 12.5, 25, 200),
#: just under and over them, and fractions (a move between fractional prices).
DELTAS: Final[tuple[int | float, ...]] = (
    1, 2, 5, 9, 10, 11, 10, 10, 15, 20, 25, 200, 2.5, 12.5, 0.5, 9.9, 10.1, 0.1,
)
#: Fractional offsets added to a fresh price (tenths and hundredths, as decimal sources give).
FRACTIONS: Final = (0.1, 0.5, 0.9, 0.25, 0.75, 0.3, 0.01)


def cents_of(price: float) -> float:
    """SPEC 1's cents scale (written out here, independent of the package)."""
    return price - 100 if price > 0 else price + 100


def price_of_cents(c: float) -> int | float:
    """The American price whose cents are ``c`` (``0`` is ``+100``), rounded to hundredths
    so that a fractional price reads as the decimal a source would send (``251.9``)."""
    p = c + 100 if c >= 0 else c - 100
    if isinstance(p, float):
        p = round(p, 2)
        if abs(p) < 100:  # rounding can only move it onto the boundary, never past
            p = 100.0 if c >= 0 else -100.0
    return p


@dataclass(frozen=True)
class Universe:
    """Which keys a stream may use (tests of one format may narrow it)."""

    events: tuple[str, ...] = tuple(EVENTS)
    books: tuple[str, ...] = BOOKS
    sides: tuple[str, ...] = SIDES


#: The universe of the line-move streams: an NBA and an NFL event, four books, line sides.
SIGNAL_UNIVERSE: Final = Universe(events=("ev1", "ev4"), books=SIGNAL_BOOKS, sides=SIGNAL_SIDES)


#: Per-quote choices are drawn as one tuple of small integers (indexes into the tables
#: below): drawing the strategies one by one cost ~50 ms per stream, this ~5 ms. Each index
#: shrinks towards 0, the simplest choice of its table.
_ACTIONS: Final = ("fresh", "move", "move", "move", "move", "fresh", "null", "invalid", "repeat", "even")
_STEPS: Final = (1000, 0, 1, 1000, 61_000, 250)
_BACKS: Final = (0, 0, 0, 0, 0, 0, 0, 1, 1000, 5000)  # mostly in order; sometimes older: maybe stale
#: The ends of the valid range (SPEC 1: 100000 is valid, 100000.5 is not) are fresh prices too.
_BASES: Final = (*LADDER, -101, -140, -180, -250, -300, 101, 140, 180, 250, 300, 261, -261, 151,
                 100000, -100000, 99999.5)
_CHOICE: Final = st.tuples(
    st.integers(0, len(_ACTIONS) - 1),
    st.integers(0, len(DELTAS) - 1),  # with a focus, odd indexes mean "the focus size"
    st.integers(0, 1),  # sign of the move
    st.integers(0, len(_BASES) - 1),
    st.integers(0, 2 * len(FRACTIONS) - 1),  # half of fresh prices get a fractional part
    st.integers(0, len(INVALID_PRICES) - 1),
    st.integers(0, len(_STEPS) - 1),
    st.integers(0, len(_BACKS) - 1),
    st.booleans(),  # metadata on this quote (when the stream mixes)
)


@functools.lru_cache(maxsize=64)
def rounding_prices(size: float) -> tuple[int | float, ...]:
    """Fractional prices from which a move of exactly ``size`` cents, up or down, computes in
    binary floating point as a move *under* ``size`` (``+261.9 -> +251.9``: ``-9.999999999999972``):
    the threshold comparison must not lose it (SPEC 3 rule 4's tolerance). About 1 in 100
    fractional prices is one, so a stream focused on a threshold starts some keys on them."""
    out: list[int | float] = []
    for base in (*range(101, 400), *range(-399, -100)):
        for frac in (0.1, 0.9, 0.3, 0.7):
            p = round(base + frac if base > 0 else base - frac, 2)
            if any(abs(cents_of(price_of_cents(cents_of(p) + d)) - cents_of(p)) < size for d in (size, -size)):
                out.append(p)
    return tuple(out[:: max(1, len(out) // 24)])  # two dozen, spread over the range


@st.composite
def quote_streams(
    draw: st.DrawFn,
    *,
    universe: Universe = Universe(),
    max_keys: int = 8,
    min_len: int = 0,
    max_len: int = 30,
    invalid: bool = True,
    nulls: bool = True,
    stale: bool = True,
    fractional: bool = True,
    focus: float | None = None,
    lines: bool = False,
    line_only: bool = True,
) -> list[Quote]:
    """A stream of quotes in arrival order (see the module docstring).

    ``focus`` (cents) makes about half of the moves exactly that size: a test at one
    threshold gets moves of exactly its threshold between fractional prices, where
    rounding bites.

    The flags switch off whole kinds of content for a test whose path cannot carry them
    (``fractional=False``: integer prices only; ``invalid=False``: every price valid or null).
    ``lines=True`` moves lines (see the module docstring; the universe defaults to the signal
    universe, the keys to several books on a few outcomes); ``line_only=False`` leaves out the
    line-only observations (for a path that cannot carry them).
    """
    if lines:
        if universe == Universe():
            universe = SIGNAL_UNIVERSE
        outcomes = draw(st.lists(st.tuples(st.sampled_from(universe.events), st.sampled_from(universe.sides)),
                                 min_size=1, max_size=2, unique=True))
        books = draw(st.lists(st.sampled_from(universe.books), min_size=2, max_size=4, unique=True))
        keys = [(e, b, side) for e, side in outcomes for b in books]
        # each outcome drifts one way (most moves follow it), so several books move alike: steam
        trend = {o: draw(st.booleans()) for o in outcomes}
    else:
        keys = draw(st.lists(
            st.tuples(st.sampled_from(universe.events), st.sampled_from(universe.books),
                      st.sampled_from(universe.sides)),
            min_size=1, max_size=max_keys, unique=True,
        ))
    meta = draw(st.sampled_from(("all", "all", "none", "some")))
    n = draw(st.integers(min_len, max_len))
    key_index = st.integers(0, len(keys) - 1)
    last: dict[tuple[str, str, str], int | float] = {}
    # lines: each key's line series is at a current line (its side moves with it)
    current: dict[tuple[str, str, str], tuple[str, float | int] | None] = {k: _line_of(k[2]) for k in keys}
    t = T0
    out: list[Quote] = []
    previous: tuple[str, str, str] | None = None
    for _ in range(n):
        key = keys[draw(key_index)]
        if lines and previous is not None and draw(st.booleans()):
            key = previous  # dense series: the same book's line again (a suspension then a move, ...)
        previous = key
        a, di, sign, bi, fi, ii, si, back, has_meta = draw(_CHOICE)
        action = _ACTIONS[a]
        observe_line_only = False
        if lines:
            line_action, step, follow = draw(_LINE_CHOICE)
            if follow:
                sign = int(trend[(key[0], key[2])])
        if lines and current[key] is not None:
            prefix, at = current[key]  # type: ignore[misc]
            if line_action >= 5:  # a line move (or, 1 in 5 of those on game lines, a line-only observation)
                size = LINE_STEPS[step]
                at = _moved(at, (abs(size) if sign else -abs(size)) if follow else size)
                current[key] = (prefix, at)
                observe_line_only = line_only and line_action == 9 and ":" not in prefix
            key = (key[0], key[1], f"{prefix}@{format_line(at)}")
            if observe_line_only:
                t += _STEPS[si]
                out.append(make_quote(key, None, t, meta == "all" or (meta == "some" and has_meta), line_only=True))
                continue
        prev = last.get(key)
        price: int | float | None
        if action == "null" and nulls:
            price = None
        elif action == "invalid" and invalid:
            price = INVALID_PRICES[ii]
        elif action == "repeat" and prev is not None:
            price = prev
        elif action == "even" and prev is not None and abs(prev) == 100:
            price = -prev  # the other form of even money: a repeat (SPEC 3, rule 2)
        elif action == "move" and prev is not None:
            size = focus if focus is not None and di % 2 else DELTAS[di % len(DELTAS)]
            price = price_of_cents(cents_of(prev) + (size if sign else -size))
            if abs(price) > 100000:
                price = prev
        elif focus is not None and fractional and fi % 3 == 0 and rounding_prices(focus):
            edge = rounding_prices(focus)
            price = edge[(bi + fi) % len(edge)]
        else:
            price = _BASES[bi]
            if fractional and fi < len(FRACTIONS):
                frac = FRACTIONS[fi]
                price = round(price - frac if price < 0 else price + frac, 2)
        valid = price is not None and math.isfinite(price) and 100 <= abs(price) <= 100000
        if valid and not fractional and isinstance(price, float):
            price = round(price) if abs(round(price)) >= 100 else (100 if price > 0 else -100)
        if valid:
            assert price is not None
            last[key] = price
        t += _STEPS[si]
        lu = t - (_BACKS[back] if stale else 0)
        with_meta = meta == "all" or (meta == "some" and has_meta)
        out.append(make_quote(key, price, lu, with_meta))
    return out


_LINE_CHOICE: Final = st.tuples(st.integers(0, 9), st.integers(0, len(LINE_STEPS) - 1), st.integers(0, 3))


def _line_of(side: str) -> tuple[str, float | int] | None:
    """``(line side, line)`` of a side with a line (``spread_home@-3`` -> ``("spread_home", -3)``)."""
    prefix, at, text = side.rpartition("@")
    if not at:
        return None
    value = float(text)
    return prefix, int(value) if value.is_integer() else value


def _moved(line: float | int, step: float | int) -> float | int:
    """``line + step`` as a source writes it (quarter points exact in binary; integral -> int)."""
    value = float(line) + step
    return int(value) if value.is_integer() else value


def make_quote(
    key: tuple[str, str, str], price: int | float | None, lu: int, meta: bool = True, *, line_only: bool = False
) -> Quote:
    """A quote of ``key``; with ``meta`` it carries its event's teams and commence time and,
    for a prop, its market label. Kind, market key, player and line come from the side;
    ``line_only`` makes it a line-only observation (no price published, SPEC 10)."""
    event_id, book, side = key
    sport, home, away, commence = _ALL_EVENTS[event_id]
    market = MARKET_LABELS.get(side.split(":", 1)[0]) if ":" in side else None
    extra: dict[str, Any] = {"line_only": True} if line_only else {}
    if not meta:
        return Quote(sport, event_id, book, side, price, lu, **extra)
    return Quote(sport, event_id, book, side, price, lu, market=market, home_team=home, away_team=away,
                 commence_time=commence, **extra)


CENT_THRESHOLDS: Final = (1, 5, 10, 10, 10.0, 2.5, 12.5, 25, 200, 0.5, 9.9)
PROB_THRESHOLDS: Final = (0.1, 0.5, 1, 2.0, 2.5, 5)


@st.composite
def detect_options(
    draw: st.DrawFn,
    *,
    units: tuple[str, ...] = ("cents", "prob"),
    references: tuple[str, ...] = ("last", "anchor"),
    reprime: tuple[bool, ...] = (True, False),
    filters: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for ``DropEngine`` and ``batch.detect_counted`` (the same names).

    Thresholds include fractional ones and exactly the sizes of the moves :func:`quote_streams`
    draws; attribute filters (sport, event, bookmaker, market, kind) are drawn sometimes.
    """
    unit = draw(st.sampled_from(units))
    opts: dict[str, Any] = {
        "threshold": draw(st.sampled_from(CENT_THRESHOLDS if unit == "cents" else PROB_THRESHOLDS)),
        "direction": draw(st.sampled_from(("both", "toward_favorite", "toward_dog"))),
        "reference": draw(st.sampled_from(references)),
        "unit": unit,
        "reprime_after_suspension": draw(st.sampled_from(reprime)),
    }
    if filters:
        opts.update(draw(_attribute_filters()))
    return opts


@st.composite
def _attribute_filters(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.integers(0, 2)) == 0:
        which = draw(st.sampled_from(("sports", "event_id", "bookmakers", "markets", "kinds")))
        pool = {
            "sports": ("basketball_nba", "soccer_epl"),
            "event_id": tuple(EVENTS),
            "bookmakers": BOOKS,
            "markets": ("h2h", "spreads", "totals", "player_points", "player_assists"),
            "kinds": ("game", "prop"),
        }[which]
        size = 1 if which == "event_id" else draw(st.integers(1, 2))  # the server takes one event id
        out[which] = frozenset(draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size, unique=True)))
    return out


def streams_with_options(options: st.SearchStrategy[dict[str, Any]], **stream_args: Any) -> st.SearchStrategy[
    tuple[list[Quote], dict[str, Any]]
]:
    """``(stream, options)`` with the stream's moves focused on the options' threshold when
    it is in cents (so exact-threshold moves between fractional prices are common)."""
    return options.flatmap(lambda o: st.tuples(
        quote_streams(focus=o["threshold"] if o["unit"] == "cents" else None, **stream_args), st.just(o)))


@st.composite
def server_options(draw: st.DrawFn) -> dict[str, Any]:
    """Options the reference server can serve (SPEC 7): cents, an integer threshold 1..200,
    any direction and attribute filter; reference and re-priming are drawn too, since the
    equivalence tests say which of them it holds for."""
    opts = draw(detect_options(units=("cents",)))
    opts["threshold"] = draw(st.sampled_from((1, 2, 5, 9, 10, 10, 11, 12, 25, 200)))
    return opts


#: The signal settings drawn by :func:`signal_options` (SPEC 10-12): small windows and cooldowns
#: as well as the defaults, so that the streams' times (steps of 0 ms to a minute) cross them.
LINE_THRESHOLDS: Final = (0.5, 0.5, 0.25, 1, 0.5, 1.5)
STEAM_WINDOWS: Final = (300_000, 300_000, 60_000, 1000, 0, 120_000)
COOLDOWNS: Final = (0, 0, 0, 1000, 60_000, 300_000)
KEY_NUMBER_SPECS: Final = (
    None, None, "americanfootball_nfl:spreads=3,7", "basketball_*:spreads=5,7;americanfootball_*:spreads=",
)


@st.composite
def signal_options(
    draw: st.DrawFn,
    /,
    *,
    types: tuple[frozenset[str], ...] | None = None,
    cooldown: bool = True,
    **detect_args: Any,
) -> dict[str, Any]:
    """:func:`detect_options` plus the signals of SPEC 10-12: ``types`` (any non-empty set, or
    one of ``types``), ``line_threshold``, ``steam_books`` 1-4, ``steam_window_ms`` (0 ms to the
    default 5 min), sometimes ``steam_threshold`` above the price threshold (cents only),
    ``steam_groups`` (pinnacle+draftkings), ``cooldown_ms`` (unless ``cooldown=False``) and
    ``key_numbers`` (replacing or emptying the default)."""
    opts = draw(detect_options(**detect_args))
    if types is None:
        chosen = draw(st.sets(st.sampled_from(("odds_drop", "line_move", "steam")), min_size=1))
    else:
        chosen = set(draw(st.sampled_from(types)))
    opts["types"] = frozenset(chosen)
    opts["line_threshold"] = draw(st.sampled_from(LINE_THRESHOLDS))
    opts["steam_books"] = draw(st.sampled_from((3, 2, 3, 1, 4)))
    opts["steam_window_ms"] = draw(st.sampled_from(STEAM_WINDOWS))
    if opts["unit"] == "cents" and draw(st.integers(0, 3)) == 0:
        opts["steam_threshold"] = opts["threshold"] * 2
    if draw(st.integers(0, 3)) == 0:
        opts["steam_groups"] = "pinnacle+draftkings"
    if cooldown:
        opts["cooldown_ms"] = draw(st.sampled_from(COOLDOWNS))
    spec = draw(st.sampled_from(KEY_NUMBER_SPECS))
    if spec is not None:
        opts["key_numbers"] = spec
    return opts


def signal_streams_with_options(options: st.SearchStrategy[dict[str, Any]], **stream_args: Any) -> st.SearchStrategy[
    tuple[list[Quote], dict[str, Any]]
]:
    """``(stream, options)``: :func:`streams_with_options` with line moves (``lines=True``)."""
    return streams_with_options(options, lines=True, **stream_args)
