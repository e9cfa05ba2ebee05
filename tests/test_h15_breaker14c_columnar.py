"""breaker14c: trying to break the compiled batch path's columnar line moves and steams
(analysis.batch, commits 90e52b4 d4acc77 825b6fb d6acd60 ddee03a) and AlertWriter.write_batch
(io.sinks, d8015ce).

Invariants, on streams over hostile text and lines (book names, event ids and players needing
JSON escaping: quotes, backslashes, non-ASCII, control and line-separator characters; lines
-0.0, tiny fractions, the largest allowed, beyond it), with signal_options()'s every option,
Categorical or String key columns:

- ``detect_counted(accel="fast")``'s table, counters and rows are ``accel="pure"``'s; its values
  (built lazily) are the pure path's and the stream engine's byte for byte;
- ``number_types`` names exactly the types found among the values;
- ``AlertWriter.write_batch`` writes the bytes ``write(result.alert_values())`` writes (CSV, Parquet);
- the lazy values survive what a caller does with a result (pickle, copy, twice, the input
  frame mutated in place).
"""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import BatchResult, detect_counted
from dropengine.core.alerts import NUMBER_FIELDS, Alert
from dropengine.core.options import DetectOptions
from dropengine.core.sides import format_line
from dropengine.io.sinks import AlertWriter

from .conftest import require_fast
from .strategies import T0, signal_options
from .test_h12_batch_equivalence import frame_of

_ENC = msgspec.json.Encoder()
_SETTINGS = settings(max_examples=40, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Book names, event ids and players a JSON writer must escape (or must not: non-ASCII).
HOSTILE_BOOKS = ('pin"nacle', "dk\\", "fän☃", "a\x01b", "x\u2028y", "plain", "q'</script>")
HOSTILE_EVENTS = ("ev1", 'e"v\\2', "ev\x7f3")
PLAYERS = ('O"Neil\\', "Jokić", "A:B")
#: Lines: integral, halves, -0.0, fractions binary cannot hold, tiny, the largest allowed, beyond.
#: (Lines of more than DELTA_DECIMALS decimals that round to a whole number are B14C-1, tested apart.)
LINES = (-3, -3.5, 3, 7, -7, 0, -0.0, 0.5, 0.1, 0.2, 0.30000000000000004, 2.5e-7, 999_999.5,
         -1_000_000, 1_000_000, 1_000_000.5, 44.5, 45.25, 1 / 3)
PRICES: tuple[int | float | None, ...] = (-110, -130, -150, 100, -100, 120, 150.5, -112.5, None, 50, math.nan,
                                          -110.0, 1e20)


def _side(kind: int, line: float) -> str:
    text = "-0" if line == 0 and math.copysign(1, line) < 0 else format_line(line)
    if kind == 0:
        return "h2h_home"
    if kind == 1:
        return f"spread_home@{text}"
    if kind == 2:
        return f"total_over@{text}"
    return f"player_points:{PLAYERS[kind % len(PLAYERS)]}:over@{text}"


@st.composite
def hostile_streams(draw: st.DrawFn) -> list[Quote]:
    n = draw(st.integers(0, 40))
    books = draw(st.lists(st.sampled_from(HOSTILE_BOOKS), min_size=1, max_size=5, unique=True))
    events = draw(st.lists(st.sampled_from(HOSTILE_EVENTS), min_size=1, max_size=2, unique=True))
    out: list[Quote] = []
    t = T0
    for _ in range(n):
        ev = draw(st.sampled_from(events))
        book = draw(st.sampled_from(books))
        kind = draw(st.integers(0, 5))
        line = draw(st.sampled_from(LINES))
        side = _side(kind, line)
        price = draw(st.sampled_from(PRICES))
        t += draw(st.sampled_from((0, 1, 1000, 60_000, -5)))
        line_only = kind in (1, 2) and draw(st.integers(0, 4)) == 0
        sport = "americanfootball_nfl" if ev == "ev1" else "basketball_nba"
        meta: dict[str, Any] = {}
        if draw(st.booleans()):
            meta = {"home_team": 'H"\\ome\n', "away_team": "Äway", "commence_time": "2026-05-12T22:30:00Z"}
        out.append(Quote(sport, ev, book, side, None if line_only else price, t, line_only=line_only, **meta))
    return out


@st.composite
def hostile_options(draw: st.DrawFn) -> dict[str, Any]:
    """signal_options() whose attribute filter and steam groups name the hostile books and events."""
    opts = draw(signal_options(filters=False))
    which = draw(st.sampled_from(("bookmakers", "event_id", "markets", "kinds", "sports", "none")))
    if which == "bookmakers":
        opts[which] = frozenset(draw(st.lists(st.sampled_from(HOSTILE_BOOKS), min_size=1, max_size=3, unique=True)))
    elif which == "event_id":
        opts[which] = frozenset([draw(st.sampled_from(HOSTILE_EVENTS))])
    elif which == "markets":
        opts[which] = frozenset(draw(st.lists(st.sampled_from(("h2h", "spreads", "totals", "player_points")),
                                              min_size=1, max_size=2, unique=True)))
    elif which == "kinds":
        opts[which] = frozenset([draw(st.sampled_from(("game", "prop")))])
    elif which == "sports":
        opts[which] = frozenset([draw(st.sampled_from(("americanfootball_nfl", "basketball_nba")))])
    if draw(st.booleans()):
        opts["steam_groups"] = draw(st.sampled_from(('pin"nacle+dk\\', "fän☃+plain", "plain+a\x01b")))
    return opts


_OPTIONS = st.one_of(signal_options(), hostile_options())


def _frame(quotes: list[Quote], categorical: bool) -> pl.DataFrame:
    frame = frame_of(quotes)
    if categorical:
        frame = frame.with_columns(pl.col(c).cast(pl.Categorical)
                                   for c in ("sport_key", "event_id", "bookmaker", "side", "home_team"))
    return frame


def wire(alerts: list[Alert]) -> list[bytes]:
    return [_ENC.encode(a) for a in alerts]


def _written(result: BatchResult, types: frozenset[str], path: Path, batch: bool) -> bytes:
    with AlertWriter(path, types=types) as writer:
        if batch:
            writer.write_batch(result)
        else:
            writer.write(result.alert_values())
    return path.read_bytes()


def check(quotes: list[Quote], opts: dict[str, Any], categorical: bool, tmp: Path | None = None) -> BatchResult:
    require_fast()
    frame = _frame(quotes, categorical)
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True, check_dtypes=True)
    assert fast.counters == pure.counters
    assert fast.rows.to_list() == pure.rows.to_list()
    assert fast.skipped == pure.skipped
    eng = DropEngine(**opts)
    want = wire(eng.observe_many(quotes))
    numbers = [c for c in fast.alerts.columns if c in NUMBER_FIELDS]
    declared = fast.number_types(numbers)
    values = fast.alert_values()
    assert wire(values) == wire(pure.alert_values()) == want
    assert fast.counters == eng.counters
    walked = {c: {type(v) for a in values if (v := getattr(a, c, None)) is not None} for c in numbers}
    assert declared == walked
    if tmp is not None:
        types = DetectOptions.build(**opts).types
        for suffix in (".csv", ".parquet"):
            got = _written(detect_counted(frame, accel="fast", **opts), types, tmp / f"b{suffix}", True)
            assert got == _written(fast, types, tmp / f"v{suffix}", False), suffix
    return fast


@_SETTINGS
@given(hostile_streams(), _OPTIONS, st.booleans())
def test_hostile_text_and_lines_fast_pure_stream(quotes: list[Quote], opts: dict[str, Any], categorical: bool) -> None:
    check(quotes, opts, categorical)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(hostile_streams(), _OPTIONS, st.booleans())
def test_write_batch_bytes_are_write_values_bytes(tmp_path: Path, quotes: list[Quote], opts: dict[str, Any],
                                                  categorical: bool) -> None:
    check(quotes, opts, categorical, tmp_path)


# -- B14C-1: a line of more than 9 decimals that rounds to a whole number ------------------------

_TINY = "0.0000000001"  # rules.written_line: not integral, so round(.., 9) -> 0.0, a float


def _tiny_moves(books: tuple[str, ...]) -> list[Quote]:
    out: list[Quote] = []
    for i, b in enumerate(books):
        out.append(Quote("americanfootball_nfl", "ev1", b, "spread_home@-3", -110, T0 + i))
        out.append(Quote("americanfootball_nfl", "ev1", b, f"spread_home@{_TINY}", -110, T0 + 10 + i))
    return out


def test_number_types_of_a_line_rounded_to_whole() -> None:
    require_fast()
    quotes = _tiny_moves(("pin",))
    res = detect_counted(frame_of(quotes), accel="fast", types="line_move")
    names = ["prev_line", "new_line", "points"]
    declared = res.number_types(names)
    values = res.alert_values()
    assert wire(values) == wire(DropEngine(types="line_move").observe_many(quotes))  # the values are right
    assert declared == {c: {type(getattr(a, c)) for a in values} for c in names}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_batch_of_a_line_rounded_to_whole(tmp_path: Path, suffix: str) -> None:
    require_fast()
    frame = frame_of(_tiny_moves(("pin",)))
    types = frozenset({"line_move"})
    got = _written(detect_counted(frame, accel="fast", types="line_move"), types, tmp_path / f"b{suffix}", True)
    res = detect_counted(frame, accel="fast", types="line_move")
    assert got == _written(res, types, tmp_path / f"v{suffix}", False)


def test_steam_books_of_a_line_rounded_to_whole() -> None:
    require_fast()
    quotes = _tiny_moves(("pin", "dk"))
    opts: dict[str, Any] = {"types": "steam", "steam_books": 2}
    frame = frame_of(quotes)
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert pure.alerts.height == 1
    assert fast.alerts.get_column("books").to_list() == pure.alerts.get_column("books").to_list()


# -- B14C-2: an unbuilt compiled result cannot be pickled -----------------------------------------

def _steamy() -> tuple[pl.DataFrame, dict[str, Any]]:
    quotes = []
    for i, b in enumerate(("pin", "dk", "fd")):
        quotes.append(Quote("basketball_nba", "ev1", b, "h2h_home", -110, T0 + i))
        quotes.append(Quote("basketball_nba", "ev1", b, "h2h_home", -130, T0 + 10 + i))
    return frame_of(quotes), {"types": "odds_drop,line_move,steam", "steam_books": 2}


def test_values_built_once_whatever_happens_to_the_input() -> None:
    """Control: the lazy values do not read the input frame (mutated in place before they are
    built), nor change when read twice or from a deep copy."""
    require_fast()
    frame, opts = _steamy()
    want = wire(detect_counted(frame.clone(), accel="pure", **opts).alert_values())
    fast = detect_counted(frame, accel="fast", **opts)
    copied = copy.deepcopy(fast)
    frame.replace_column(frame.columns.index("bookmaker"), pl.Series("bookmaker", ["zz"] * frame.height))
    frame.replace_column(frame.columns.index("price"), pl.Series("price", [-200] * frame.height))
    assert wire(fast.alert_values()) == want
    assert wire(fast.alert_values()) == want
    assert wire(copied.alert_values()) == want
    assert pickle.loads(pickle.dumps(fast)).alert_values() == fast.alert_values()  # built: picklable


def test_pure_result_pickles() -> None:
    """Control for B14C-2: the pure path's result pickles (a Dask task or a process pool returns it)."""
    frame, opts = _steamy()
    pure = detect_counted(frame, accel="pure", **opts)
    assert wire(pickle.loads(pickle.dumps(pure)).alert_values()) == wire(pure.alert_values())


def test_unbuilt_fast_result_pickles() -> None:
    require_fast()
    frame, opts = _steamy()
    fast = detect_counted(frame, accel="fast", **opts)
    want = wire(detect_counted(frame, accel="pure", **opts).alert_values())
    assert wire(pickle.loads(pickle.dumps(fast)).alert_values()) == want


def test_decimal_lines_points_rounded_to_whole() -> None:
    require_fast()
    quotes = [Quote("soccer_epl", "ev3", b, side, -110, T0 + i) for i, (b, side) in enumerate(
        (("pin", "total_over@0.4"), ("dk", "total_over@0.4"), ("pin", "total_over@1.4"), ("dk", "total_over@1.4")))]
    opts: dict[str, Any] = {"types": "line_move,steam", "steam_books": 2}
    frame = frame_of(quotes)
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert wire(pure.alert_values()) == wire(DropEngine(**opts).observe_many(quotes))
    assert fast.number_types(["points"]) == pure.number_types(["points"]) == {"points": {float}}
    assert fast.alerts.get_column("books").to_list() == pure.alerts.get_column("books").to_list()


def test_number_types_of_time_columns() -> None:
    require_fast()
    frame, opts = _steamy()
    names = ["lag_ms", "elapsed_ms", "last_update", "timestamp"]
    pure = detect_counted(frame, accel="pure", **opts).number_types(names)
    assert pure == {c: {int} for c in names}
    assert detect_counted(frame, accel="fast", **opts).number_types(names) == pure
