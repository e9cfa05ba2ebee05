"""break18 (issue 14, session 11): the compiled batch signals path after this session's changes,
held to the stream engine on the inputs those changes single out.

What changed (signals15 on main, big15 on its branch): the gathered text columns made one chunk
each (an input of several chunks), ``alert_order`` a merge instead of a sort (moves and steams
returned together), steam without ``line_move`` writing the line moves' numbers alone
(``_line_numbers``; the steams' completing line moves' text for those moves alone), the steams'
books written in two halves (``_BOOKS_SPLIT``, forced to 1 here where it exists) with their
numbers by quarter steps (``_quarter_cells``: prices like ``-112.25``, lines like ``-2.75``, the
general way kept for ``-0.0`` and wide ranges), and ``_columns_table`` gathering nothing when one
part holds every alert. The reference is the stream engine (``DropEngine.observe_many``): the
alerts' JSON byte for byte, the counters, the table's rows, the input rows that produced them.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Final

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.analysis import batch
from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import alert_fields, alert_row
from dropengine.core.options import DetectOptions

from .test_h12_batch_equivalence import frame_of

_ENC = msgspec.json.Encoder()
T0: Final = 1_747_000_000_000
EVENTS: Final = {"nfl1": ("americanfootball_nfl", "Chiefs", "Bills", "2026-01-18T23:30:00Z"),
                 "nba1": ("basketball_nba", 'Lak"ers', "Cel\\tics", None)}
BOOKS: Final = ("pinnacle", "draftkings", "fanduel", "betmgm", 'b\u00e9t"x')
#: outcome -> lines: quarter, half and whole points, both zeros, a wide one (no quarter table)
LADDERS: Final[dict[str, tuple[float, ...]]] = {
    "spread_home": (-3.5, -3.25, -3, -2.75, -2.5, 0.0, -0.0, 0.25, 3),
    "total_over": (220.5, 220.75, 221, 47.25, 99999.5, 220.1),
    "player_points:A:B@C:under": (24.5, 24.75, 25.5),
}
OUTCOMES: Final = ("h2h_home", *LADDERS)
#: quarter-cent prices, both ends of the range, int and float spellings of one price
PRICES: Final = (-130, -120, -112.25, -112.5, -110, -110.0, -105, 100, 105, 120, 125.75, 150,
                 100_000, -100_000, 99_999.75, -2000, 2000)
TYPES: Final = ("steam", "odds_drop,steam", "line_move,steam", "odds_drop,line_move,steam", "line_move",
                "odds_drop,line_move")


def _side(outcome: str, line: float) -> str:
    if outcome.startswith("h2h"):
        return outcome
    if line == 0 and math.copysign(1.0, line) < 0:
        return f"{outcome}@-0"
    return f"{outcome}@{int(line) if float(line).is_integer() else repr(line)}"


def _stream(r: random.Random) -> list[Quote]:
    """Several books quoting a few outcomes close in time (steam), lines stepping along the
    ladders, suspensions, line-only observations, stale times."""
    outcomes = r.sample(OUTCOMES, r.randint(1, 3))
    books = r.sample(BOOKS, r.randint(2, 5))
    meta = r.random() < 0.7
    t = T0
    out: list[Quote] = []
    at: dict[tuple[str, str, str], int] = {}
    for _ in range(r.randint(4, 70)):
        event, outcome, book = r.choice(tuple(EVENTS)), r.choice(outcomes), r.choice(books)
        ladder = LADDERS.get(outcome, (0.0,))
        i = at.get((event, book, outcome), r.randrange(len(ladder)))
        i = max(0, min(len(ladder) - 1, i + r.choice((0, 0, 1, -1, 2))))
        at[(event, book, outcome)] = i
        price: int | float | None = r.choice(PRICES)
        action = r.randint(0, 9)
        line_only = action == 1 and outcome in LADDERS
        if action == 0 or line_only:
            price = None
        t += r.choice((0, 1, 1000, 30_000, 400_000))
        lu = max(T0, t - r.choice((0, 0, 0, 1000)))
        sport, home, away, commence = EVENTS[event]
        extra: dict[str, Any] = {"home_team": home, "away_team": away, "commence_time": commence} if meta else {}
        out.append(Quote(sport, event, book, _side(outcome, ladder[i]), price, lu, line_only=line_only, **extra))
    return out


def _options(r: random.Random) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "types": r.choice(TYPES), "threshold": r.choice((1, 5, 10)), "line_threshold": r.choice((0.25, 0.5)),
        "steam_books": r.choice((1, 2, 2, 3)), "steam_window_ms": r.choice((1000, 300_000)),
        "reference": r.choice(("last", "anchor")), "cooldown_ms": r.choice((0, 0, 60_000)),
    }
    opts.update(r.choice(({}, {}, {}, {"direction": "toward_dog"}, {"bookmakers": "pinnacle,fanduel"})))
    return opts


def _chunked(frame: pl.DataFrame, r: random.Random) -> pl.DataFrame:
    """``frame`` as several chunks (a Parquet file's row groups, a concat), or as it is."""
    if frame.height < 3 or r.random() < 0.3:
        return frame
    cuts = sorted({0, frame.height, *(r.randrange(1, frame.height) for _ in range(r.randint(1, 4)))})
    return pl.concat([frame[a:b] for a, b in itertools.pairwise(cuts)], rechunk=False)


def _values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (float(v) if type(v) is int else v) for k, v in row.items()} for row in rows]


def _check(quotes: list[Quote], opts: dict[str, Any], frame: pl.DataFrame) -> None:
    eng = DropEngine(**opts)
    want = eng.observe_many(quotes)
    res = detect_counted(frame, **opts)
    assert [_ENC.encode(a) for a in res.alert_values()] == [_ENC.encode(a) for a in want]
    assert res.counters == eng.counters
    columns = alert_fields(DetectOptions.build(**opts).types)
    assert _values(res.alerts.to_dicts()) == _values([alert_row(a, columns) for a in want])
    # the input row of each alert: a move's own quote, a steam's completing quote
    assert len(res.rows) == len(want)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=st.randoms(use_true_random=False), split=st.booleans())
def test_batch_signals_equal_the_stream_on_chunked_quarter_streams(r: random.Random, split: bool) -> None:
    quotes = _stream(r)
    opts = _options(r)
    frame = _chunked(frame_of(quotes), r)
    old = getattr(batch, "_BOOKS_SPLIT", None)
    if split and old is not None:
        batch._BOOKS_SPLIT = 1  # type: ignore[misc]  # the books in two halves for every steam table
    try:
        _check(quotes, opts, frame)
    finally:
        if old is not None:
            batch._BOOKS_SPLIT = old  # type: ignore[misc]


@pytest.mark.parametrize("types", ["steam", "odds_drop,steam", "line_move,steam"])
def test_steam_completed_by_line_moves_of_every_spelling(types: str) -> None:
    """Three books move a spread's line by quarters through -0 and 0 (steam at the third), then
    move back by a price drop; the steams are completed by line moves whose text the table
    writes for those moves alone when line moves are not returned."""
    nfl = "americanfootball_nfl"
    books = ("pinnacle", "draftkings", "fanduel")
    q: list[Quote] = []
    for j, b in enumerate(books):
        q.append(Quote(nfl, "g", b, "spread_home@0.25", -110, T0 + j, home_team="K", away_team="B"))
    for j, b in enumerate(books):
        q.append(Quote(nfl, "g", b, "spread_home@-0", -112.25, T0 + 10 + j, home_team="K", away_team="B"))
    for j, b in enumerate(books):
        q.append(Quote(nfl, "g", b, "spread_home@-2.75", -112.25, T0 + 400_000 + j))
    for j, b in enumerate(books):
        q.append(Quote(nfl, "g", b, "spread_home@-2.75", -125.75, T0 + 800_000 + j))
    opts: dict[str, Any] = {"types": types, "steam_books": 3, "line_threshold": 0.25, "threshold": 10}
    for split in (False, True):
        old = getattr(batch, "_BOOKS_SPLIT", None)
        if split and old is not None:
            batch._BOOKS_SPLIT = 1  # type: ignore[misc]
        try:
            _check(q, opts, frame_of(q))
        finally:
            if old is not None:
                batch._BOOKS_SPLIT = old  # type: ignore[misc]
    steams = [a for a in DropEngine(**opts).observe_many(q) if a.type == "steam"]
    assert len(steams) == 3  # the reference fires one steam per round of three books


@pytest.mark.parametrize("column", ["sport_key", "event_id", "bookmaker", "side"])
@pytest.mark.parametrize("cell", [None, ""])
@pytest.mark.parametrize("categorical", [False, True])
def test_a_null_or_empty_key_cell_is_skipped_alike_on_both_paths(column: str, cell: str | None,
                                                                  categorical: bool) -> None:
    """A row whose key cell is null or empty is a "missing field" skip (its row rejected), on the
    compiled path as on the pure one, also when no other value of the column is flagged."""
    from .conftest import require_fast

    require_fast()
    rows = [dict(sport_key="basketball_nba", event_id="e", bookmaker="b", side="h2h_home", price=p, last_update=T0 + i)
            for i, p in enumerate((-110, -130, -150, -170))]
    rows[1][column] = cell
    frame = pl.DataFrame(rows, schema={"sport_key": pl.String, "event_id": pl.String, "bookmaker": pl.String,
                                       "side": pl.String, "price": pl.Int64, "last_update": pl.Int64})
    if categorical:
        frame = frame.with_columns(pl.col(column).cast(pl.Categorical))
    for types in ("odds_drop", "odds_drop,steam"):
        pure = detect_counted(frame, accel="pure", types=types, steam_books=1)
        fast = detect_counted(frame, accel="fast", types=types, steam_books=1)
        assert pure.skipped == {"missing field": 1} and pure.rejected.rows() == [(1, "missing field")]
        assert fast.skipped == pure.skipped and fast.rejected.rows() == pure.rejected.rows()
        assert fast.counters == pure.counters
        assert fast.alerts.rows() == pure.alerts.rows()
