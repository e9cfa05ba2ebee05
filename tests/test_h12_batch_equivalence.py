"""Issue 12: the batch engine gives exactly the stream engine's alerts and counters for every
signal option (SPEC 10-12): types, line_threshold, steam_books/window/threshold/line threshold/
groups, cooldown_ms, key_numbers, reference last/anchor, re-priming on/off, filters, and
line-only observations.

The streams here are drawn for the signals (tests/strategies.py draws price streams over
fixed lines): several books quote each outcome of a few events (so steam forms), each quote's
line comes from a short ladder per outcome (so line series move by quarter, half and whole
points, through and onto key numbers, and by fractions whose float difference is not exact),
with suspensions, line-only observations (a line with no price published), invalid prices,
stale and equal times. The stream engine is the reference: its alerts, byte for byte (JSON of
each alert, so ``-110`` vs ``-110.0`` differs), and all sixteen counters.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import ALERT_SCHEMA, PRICE_INT_COLUMN, accepted_quotes, detect_counted
from dropengine.core.alerts import SIGNALS, Alert, Drop, LineMove, Steam, alert_fields, alert_row
from dropengine.core.errors import FeedError
from dropengine.core.filters import AlertFilter
from dropengine.core.options import DetectOptions, KeyNumbers
from dropengine.formats.tables import LINE_ONLY_COLUMN, QUOTE_COLUMNS, quote_from_row
from dropengine.io.replay import replay, replay_batch

from .strategies import detect_options, quote_streams
from .strategies import signal_options as shared_signal_options
from .strategies import signal_streams_with_options as shared_signal_streams_with_options

_FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
T0: Final = 1_747_000_000_000

#: event -> (sport, home, away, commence); an NFL event for the default key numbers
EVENTS: Final = {
    "nfl1": ("americanfootball_nfl", "Chiefs", "Bills", "2026-01-18T23:30:00Z"),
    "nba1": ("basketball_nba", "Lakers", "Celtics", None),
}
BOOKS: Final = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars")
#: outcome -> the lines its sides take. Quarter, half and whole points; 0 and both signs; moves
#: through and onto 3 and 7; and tenths (``220.1 -> 220.6`` computes as 0.4999999999999716).
LADDERS: Final[dict[str, tuple[float, ...]]] = {
    "spread_home": (-7.5, -7, -6.5, -3.5, -3.25, -3, -2.5, 0, 2.5, 3),
    "spread_away": (7.5, 7, 6.5, 3.5, 3.25, 3, 2.5, 0, -2.5, -3),
    "total_over": (220.5, 221, 221.5, 220.1, 220.6, 219.6, 47.5, 48),
    "total_under": (220.5, 221, 220.1, 220.6, 47.5),
    "player_points:LeBron James:over": (25.5, 26.5, 24.5, 25),
    "player_points:A:B@C:under": (24.5, 25.5, 23.5),
}
OUTCOMES: Final = ("h2h_home", "h2h_away", *LADDERS)
PRICES: Final = (-130, -120, -115, -112.5, -110, -105, -100, 100, 105, 110, 120, 125.5, 140, -110.0)
INVALID: Final = (0, 50, -99, 100001, math.nan, math.inf)
STEPS: Final = (0, 1, 1000, 30_000, 61_000, 400_000)
BACKS: Final = (0, 0, 0, 0, 0, 1, 1000, 90_000)

_ENC = msgspec.json.Encoder()


def side_of(outcome: str, line: float) -> str:
    text = str(int(line)) if float(line).is_integer() else repr(line)
    return outcome if outcome.startswith("h2h") else f"{outcome}@{text}"


@st.composite
def signal_streams(draw: st.DrawFn, max_len: int = 60) -> list[Quote]:
    """Quotes of up to 5 books on up to 3 outcomes of 2 events (see the module docstring)."""
    events = draw(st.lists(st.sampled_from(tuple(EVENTS)), min_size=1, max_size=2, unique=True))
    outcomes = draw(st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=3, unique=True))
    books = draw(st.lists(st.sampled_from(BOOKS), min_size=2, max_size=5, unique=True))
    meta = draw(st.booleans())
    n = draw(st.integers(4, max_len))
    choice = st.tuples(
        st.integers(0, len(events) - 1), st.integers(0, len(outcomes) - 1), st.integers(0, len(books) - 1),
        st.integers(0, 9),  # action: 0 null, 1 invalid, 2 line-only, 3 suspended just before, else priced
        st.integers(0, 15),  # line index (a stretch of the ladder, so nearby lines are common)
        st.integers(0, len(PRICES) - 1), st.integers(0, len(INVALID) - 1),
        st.integers(0, len(STEPS) - 1), st.integers(0, len(BACKS) - 1),
        st.integers(0, 4),  # 0, 1: the previous quote's series again; 2: its outcome at this book
    )
    last_line: dict[tuple[str, str, str], float] = {}
    t = T0
    out: list[Quote] = []
    prev = (0, 0, 0)
    prev_line, prev_price = 0.0, PRICES[0]
    for _ in range(n):
        e, o, b, action, li, pi, ii, si, bi, stay = draw(choice)
        # dense series: a series' next quote often follows (suspend then move, creeping lines),
        # and another book often copies the last quote's line and price (steam)
        if stay < 2:
            e, o, b = prev
        elif stay == 2:
            e, o = prev[:2]
        follow = stay == 2 and bool(out) and li % 2 == 0
        prev = (e, o, b)
        event, outcome, book = events[e], outcomes[o], books[b]
        ladder = LADDERS.get(outcome, (0.0,))
        series = (event, book, outcome)
        price: int | float | None = PRICES[pi]
        # mostly the series' last line or a neighbour on the ladder; sometimes any line
        if follow:
            line, price = prev_line, prev_price
        elif series in last_line and li < 10:
            at = ladder.index(last_line[series])
            line = ladder[max(0, min(len(ladder) - 1, at + (0, 0, 0, 1, -1, 1, -1, 2, -2, 0)[li]))]
        else:
            line = ladder[li % len(ladder)]
        prev_line, prev_price = line, price
        line_only = False
        if action == 0:
            price = None  # a suspension
        elif action == 1:
            price = INVALID[ii]
        elif action == 2 and outcome in LADDERS:
            price, line_only = None, True  # a line-only observation (no price published)
        sport, home, away, commence = EVENTS[event]
        if action == 3 and series in last_line:
            # the series suspended at its line just before this quote (SPEC 10: that line's
            # latest observation then carries no price)
            t += 1
            out.append(Quote(sport, event, book, side_of(outcome, last_line[series]), None, t))
        t += STEPS[si]
        lu = max(T0, t - BACKS[bi])
        if price is None or (isinstance(price, (int, float)) and 100 <= abs(price) <= 100000):
            last_line[series] = line
        side = side_of(outcome, line)
        if meta:
            out.append(Quote(sport, event, book, side, price, lu, home_team=home, away_team=away,
                             commence_time=commence, line_only=line_only))
        else:
            out.append(Quote(sport, event, book, side, price, lu, line_only=line_only))
    return out


@st.composite
def signal_options(draw: st.DrawFn, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every signal option (on top of ``base``, price options drawn by tests/strategies)."""
    opts = dict(base) if base is not None else draw(detect_options(units=("cents", "cents", "prob"), filters=False))
    types = draw(st.lists(st.sampled_from(SIGNALS), min_size=1, max_size=3, unique=True))
    opts["types"] = ",".join(types)
    opts["line_threshold"] = draw(st.sampled_from((0.5, 0.5, 0.25, 1, 1.5, 3, 0.1)))
    opts["steam_books"] = draw(st.sampled_from((1, 2, 2, 3, 3, 4)))
    opts["steam_window_ms"] = draw(st.sampled_from((0, 1000, 60_000, 300_000)))
    if opts["unit"] == "cents" and draw(st.booleans()):
        opts["steam_threshold"] = opts["threshold"] * draw(st.sampled_from((1, 1.5, 2)))
    if draw(st.booleans()):
        opts["steam_line_threshold"] = opts["line_threshold"] * draw(st.sampled_from((1, 2)))
    opts["steam_groups"] = draw(st.sampled_from((
        None, "pinnacle+draftkings", "fanduel+betmgm+caesars,draftkings+pinnacle",
    )))
    opts["cooldown_ms"] = draw(st.sampled_from((0, 0, 1, 1000, 60_000)))
    opts["key_numbers"] = draw(st.sampled_from((
        None, "americanfootball_nfl:spreads=3,7,10", "basketball_*:spreads=3,2.5;basketball_*:totals=220.5",
        "americanfootball_*:spreads=",
    )))
    opts["reprime_after_suspension"] = draw(st.booleans())
    which = draw(st.integers(0, 17))  # a filter one time in three
    if which < len(_FILTERS):
        opts.update(_FILTERS[which])
    return {k: v for k, v in opts.items() if v is not None}


_FILTERS: Final[tuple[dict[str, Any], ...]] = (
    {"direction": "toward_favorite"}, {"direction": "toward_dog"}, {"bookmakers": "pinnacle,fanduel"},
    {"markets": "spreads,h2h"}, {"kinds": "prop"}, {"sports": "americanfootball_nfl"},
)


def frame_of(quotes: list[Quote]) -> pl.DataFrame:
    """A quote table of ``quotes``: Float64 prices with each price's type in
    PRICE_INT_COLUMN (unless all are ints), and the line-only flags."""
    ints = all(q.price is None or (type(q.price) is int and abs(q.price) < 2**63) for q in quotes)
    cols: dict[str, list[Any]] = {c: [getattr(q, c) for q in quotes] for c in QUOTE_COLUMNS}
    schema: dict[str, Any] = {c: pl.String for c in QUOTE_COLUMNS}
    schema.update(price=pl.Int64 if ints else pl.Float64, last_update=pl.Int64, line=pl.Float64)
    if not ints:
        cols["price"] = [None if p is None else float(p) for p in cols["price"]]
    df = pl.DataFrame(cols, schema=schema)
    extra = [pl.Series(LINE_ONLY_COLUMN, [q.line_only for q in quotes], dtype=pl.Boolean)]
    if not ints:
        extra.append(pl.Series(PRICE_INT_COLUMN, [None if q.price is None else type(q.price) is int for q in quotes],
                               dtype=pl.Boolean))
    return df.with_columns(extra)


def wire(alerts: list[Alert]) -> list[bytes]:
    return [_ENC.encode(a) for a in alerts]


def check(quotes: list[Quote], opts: dict[str, Any]) -> tuple[list[Alert], Any]:
    """Stream vs batch on ``quotes`` with ``opts``: alerts (bytes), counters, and the table."""
    eng = DropEngine(**opts)
    want = eng.observe_many(quotes)
    res = detect_counted(frame_of(quotes), **opts)
    assert wire(res.alert_values()) == wire(want)
    assert res.counters == eng.counters
    assert res.skipped == {}
    options = DetectOptions.build(**opts)
    columns = alert_fields(options.types)
    assert res.alerts.columns == list(columns)
    rows = [alert_row(a, columns) for a in want]
    assert _values(res.alerts.to_dicts()) == _values(rows)
    assert wire(res.drops()) == wire([a for a in want if isinstance(a, Drop)])
    # arrival stamps (the stream's now_ms, the batch's timestamp_column) stamp every type
    stamps = [q.last_update + 7 * (i % 3) for i, q in enumerate(quotes)]
    stamped = DropEngine(options=options)
    want_stamped = [a for q, ts in zip(quotes, stamps, strict=True) for a in stamped.observe(q, now_ms=ts)]
    res = detect_counted(frame_of(quotes).with_columns(pl.Series("arrived", stamps, dtype=pl.Int64)),
                         options=options, timestamp_column="arrived")
    assert wire(res.alert_values()) == wire(want_stamped)
    assert res.counters == stamped.counters == eng.counters
    return want, eng.counters


def _values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows by value (a typed column makes the ints of a float column floats)."""
    return [{k: (float(v) if type(v) is int else v) for k, v in r.items()} for r in rows]


@given(signal_streams(), signal_options())
@settings(_FAST, max_examples=80)
def test_batch_equals_stream_for_every_signal_option(quotes: list[Quote], opts: dict[str, Any]) -> None:
    check(quotes, opts)


@given(quote_streams(max_len=40), signal_options())
@settings(_FAST, max_examples=30)
def test_batch_equals_stream_on_the_shared_price_streams(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """The shared generator's streams (fractional prices, NaN/inf, props with ``:``/``@`` in
    names, sides of one line series at two lines) with every signal option."""
    check(quotes, opts)


@given(shared_signal_streams_with_options(shared_signal_options()))
@settings(_FAST, max_examples=30)
def test_batch_equals_stream_on_the_shared_signal_streams(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """tests/strategies.py's own signal streams and options (an independent generator: moves
    focused on the threshold, lines through key numbers, books drifting one way)."""
    quotes, opts = case
    check(quotes, {k: (",".join(sorted(v)) if isinstance(v, frozenset) else v) for k, v in opts.items()})


@given(signal_streams(), detect_options(filters=False))
@settings(_FAST, max_examples=25)
def test_default_types_ignore_lines_and_keep_the_table(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """Default types: line-only rows are seen and otherwise ignored, the table is 0.1's."""
    check(quotes, opts)
    table = detect_counted(frame_of(quotes), **opts).alerts
    assert table.columns == list(ALERT_SCHEMA)


def test_signal_example_by_hand() -> None:
    """A hand-checked run: three books move the NFL home spread toward the home side within
    a minute (one by its price at the old line, one by a line-only observation onto 3), a
    cooldown suppresses a book's second line move (which still counts for steam), and steam
    fires at the third book."""
    q = Quote
    nfl = "americanfootball_nfl"
    quotes = [
        q(nfl, "g", "pinnacle", "spread_home@-2.5", -110, T0),
        q(nfl, "g", "draftkings", "spread_home@-2.5", -110, T0),
        q(nfl, "g", "fanduel", "spread_home@-2.5", None, T0, line_only=True),
        q(nfl, "g", "pinnacle", "spread_home@-3.5", -105, T0 + 10_000),  # line move -1, through 3
        q(nfl, "g", "draftkings", "spread_home@-2.5", -125, T0 + 20_000),  # price drop -15
        q(nfl, "g", "pinnacle", "spread_home@-4", -110, T0 + 25_000),  # cooled (10 s after its last)
        q(nfl, "g", "fanduel", "spread_home@-3", None, T0 + 40_000, line_only=True),  # line move onto 3: steam
    ]
    opts: dict[str, Any] = {"types": "odds_drop,line_move,steam", "cooldown_ms": 60_000}
    want, counters = check(quotes, opts)
    assert [a.type for a in want] == ["line_move", "odds_drop", "line_move", "steam"]
    first, drop, last, steam = want
    assert isinstance(first, LineMove) and isinstance(last, LineMove) and isinstance(drop, Drop)
    assert (first.prev_line, first.new_line, first.points, first.key_numbers) == (-2.5, -3.5, -1, (3,))
    assert (first.prev_price, first.new_price, first.direction) == (-110, -105, "toward_favorite")
    assert (last.prev_line, last.new_line, last.prev_price, last.new_price, last.key_numbers) == (-2.5, -3, None, None,
                                                                                                   (3,))
    assert isinstance(steam, Steam)
    # each book's latest move, in last_update order: pinnacle's cooled move at +25 s counts
    assert [b.bookmaker for b in steam.books] == ["draftkings", "pinnacle", "fanduel"]
    assert [b.type for b in steam.books] == ["odds_drop", "line_move", "line_move"]
    assert (steam.leader, steam.lag_ms, steam.last_update, steam.side) == ("draftkings", 20_000, T0 + 40_000,
                                                                           "spread_home")
    assert counters.cooled == 1 and counters.steam == 1 and counters.line_detected == 3
    # price keys primed: each book's first spread quote and pinnacle's two new lines
    assert counters.seen == 7 and counters.primed == 4 and counters.line_primed == 3


@pytest.mark.parametrize("reference", ["last", "anchor"])
def test_prev_price_is_the_latest_at_the_reference_line(reference: str) -> None:
    """SPEC 10: a repeated line updates the price riding on it; under anchor the price is the
    latest seen at the anchor line (here after the line came back to it)."""
    q = Quote
    s = "basketball_nba"
    quotes = [
        q(s, "g", "b", "total_over@220.5", -110, T0),
        q(s, "g", "b", "total_over@220.5", -115, T0 + 1),  # repeat: the riding price is -115
        q(s, "g", "b", "total_over@220.75", -120, T0 + 2),  # 0.25: under 0.5
        q(s, "g", "b", "total_over@220.5", 100, T0 + 3),  # back at 220.5 (0.25 back under last)
        q(s, "g", "b", "total_over@221", -105, T0 + 4),
    ]
    want, _ = check(quotes, {"types": "line_move", "reference": reference})
    assert len(want) == 1 and isinstance(want[0], LineMove)
    assert (want[0].prev_line, want[0].prev_price) == (220.5, 100)
    assert want[0].elapsed_ms == (4 if reference == "anchor" else 1)


def test_key_numbers_option_reaches_the_batch() -> None:
    quotes = [Quote("basketball_nba", "g", "b", f"spread_home@{x}", -110, T0 + i) for i, x in enumerate((-4, -6))]
    kn = KeyNumbers.parse("basketball_nba:spreads=5,6")
    want, _ = check(quotes, {"types": "line_move", "key_numbers": kn})
    assert isinstance(want[0], LineMove) and want[0].key_numbers == (5, 6)


def test_line_only_column_is_read_as_the_row_reader_reads_it() -> None:
    """The optional line_only column as text (a CSV's): true/false/empty as the row reader takes
    them; another text, a price on a line-only row, or a line-only row without a line are
    skipped with the row reader's reasons; the rest equals the stream of the reader's quotes."""
    nfl = "americanfootball_nfl"
    rows = [
        (nfl, "g", "fd", "spread_home@-3", None, T0, "true"),
        (nfl, "g", "fd", "spread_home@-3.5", None, T0 + 1, "True"),  # a line move of a line-only book
        (nfl, "g", "fd", "spread_home@-3.5", None, T0 + 2, ""),  # a suspension
        (nfl, "g", "fd", "spread_home@-4", -110, T0 + 3, "false"),  # re-primes
        (nfl, "g", "fd", "spread_home@-5", None, T0 + 4, "yes"),  # bad field
        (nfl, "g", "fd", "spread_home@-5", -105, T0 + 5, "true"),  # a price on a line-only row: bad field
        (nfl, "g", "fd", "h2h_home", None, T0 + 6, "TRUE"),  # no line: bad line
        (nfl, "g", "fd", "spread_home@-5", None, T0 + 7, None),  # a suspension
    ]
    names = ("sport_key", "event_id", "bookmaker", "side", "price", "last_update", LINE_ONLY_COLUMN)
    table = pl.DataFrame(rows, schema=dict(zip(names, (pl.String,) * 4 + (pl.Int64, pl.Int64, pl.String),
                                               strict=True)), orient="row")
    quotes = []
    for row in rows:
        try:
            quotes.append(quote_from_row(dict(zip(names, row, strict=True))))
        except FeedError as exc:
            assert exc.reason in ("bad field", "bad line")
    assert len(quotes) == 5
    opts = {"types": "odds_drop,line_move"}
    eng = DropEngine(**opts)
    want = eng.observe_many(quotes)
    res = detect_counted(table, **opts)
    assert wire(res.alert_values()) == wire(want) and len(want) == 1
    assert res.counters == eng.counters
    assert res.skipped == {"bad field": 2, "bad line": 1}
    assert res.rejected.rows() == [(4, "bad field"), (5, "bad field"), (6, "bad line")]
    # the backtest's price histories: line-only observations are no price quotes
    assert sorted(accepted_quotes(table).get_column("row").to_list()) == [2, 3, 7]


def test_real_nfl_series_batch_equals_stream(nfl_dir: Path) -> None:
    """The real NFL series (The Odds API snapshots, ../shared/data) with every type, the anchor
    reference, a cooldown and two-book steam: the batch replay gives the stream replay's alerts
    (bytes) and counters (test_h12_real_nfl checks the stream against an independent recount)."""
    path = nfl_dir / "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
    opts: dict[str, Any] = {"types": ",".join(SIGNALS), "reference": "anchor", "cooldown_ms": 600_000,
                            "steam_books": 2}
    eng = DropEngine(**opts)
    want = list(replay([path], eng))
    res = replay_batch([path], **opts)
    assert wire(res.alert_values()) == wire(want)
    assert res.counters == eng.counters
    c = eng.counters
    assert c.cooled > 0 and c.steam > 0 and c.line_detected > 0 and c.detected > 0  # every signal is in play


@pytest.mark.parametrize("types", [None, "line_move", "odds_drop,steam", "steam"])
@pytest.mark.parametrize("signals", [{}, {"types": "odds_drop,line_move"}, {"cooldown_ms": 5}])
def test_options_filter_with_types_and_line_threshold(types: str | None, signals: dict[str, Any]) -> None:
    """Options whose filter carries the server's per-connection ``types`` / ``line_threshold``
    (AlertFilter fields): the batch filters every path as the engine does, the default one too."""
    base = DetectOptions.build(**signals)
    flt = AlertFilter.build(types=types, line_threshold=1)
    options = base.replace(filter=flt)
    s = "basketball_nba"
    quotes = [Quote(s, "E", "b", f"spread_home@{x}", p, T0 + i) for i, (x, p) in
              enumerate(((-3, -110), (-3, -130), (-3.5, -130), (-4.5, -150), (-4.5, -110)))]
    eng = DropEngine(options=options)
    want = eng.observe_many(quotes)
    res = detect_counted(frame_of(quotes), options=options)
    assert wire(res.alert_values()) == wire(want)
    assert res.counters == eng.counters


@pytest.mark.parametrize(("sides", "lines", "meta"), [
    (("h2h_home", "h2h_home"), (3.0, 4.0), False),  # a line cell on a side without a line
    (("spread_home@3", "spread_home@3"), (3.0, 4.0), True),  # a line cell contradicting the side
    (("spread_home@3", "spread_home@4"), (None, None), True),  # kind and market key, no line cell
    (("spread_home@2000000", "spread_home@3"), (None, None), False),  # beyond rules.MAX_ABS_LINE
])
def test_the_series_line_is_the_sides(sides: tuple[str, str], lines: tuple[float | None, ...], meta: bool) -> None:
    """SPEC 10 (rules.series_line): a quote observes the line its side spells, whatever the table's
    line cell says, and a side without a line observes no series: batch as the stream engine."""
    nfl = "americanfootball_nfl"
    rows = [{"sport_key": nfl, "event_id": "e", "bookmaker": "b", "side": s, "price": -110, "last_update": T0 + i,
             "line": x, "kind": "game" if meta else None,
             "market_key": ("spreads" if "@" in s else "h2h") if meta else None}
            for i, (s, x) in enumerate(zip(sides, lines, strict=True))]
    table = pl.DataFrame(rows, schema={"sport_key": pl.String, "event_id": pl.String, "bookmaker": pl.String,
                                       "side": pl.String, "price": pl.Int64, "last_update": pl.Int64,
                                       "line": pl.Float64, "kind": pl.String, "market_key": pl.String})
    quotes = [quote_from_row(r) for r in rows]
    opts = {"types": ",".join(SIGNALS), "steam_books": 1}
    eng = DropEngine(**opts)
    want = eng.observe_many(quotes)
    res = detect_counted(table, **opts)
    assert wire(res.alert_values()) == wire(want)
    assert res.counters == eng.counters
