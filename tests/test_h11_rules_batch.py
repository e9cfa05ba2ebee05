"""Issue 11: the batch engine is built from ``core/rules`` and the one ``AlertFilter``.

Each polars expression that restates a rule equals the scalar rule function (hypothesis), the
batch filter equals :meth:`AlertFilter.accepts`, and batch keeps each price's type (defect 3).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import AlertFilter, DropEngine, Quote
from dropengine.analysis.batch import (
    PRICE_INT_COLUMN,
    cents_expr,
    detect,
    detect_counted,
    direction_expr,
    filter_expr,
    prob_move_expr,
    valid_price_expr,
)
from dropengine.core import rules
from dropengine.core.options import DetectOptions

valid = st.one_of(st.floats(100, 100_000), st.floats(-100_000, -100), st.integers(100, 100_000).map(float),
                  st.integers(-100_000, -100).map(float))
anything = st.one_of(valid, st.floats(allow_nan=True, allow_infinity=True), st.floats(-150, 150))


def _eval(expr: pl.Expr, **cols: list[Any]) -> list[Any]:
    return pl.DataFrame({k: pl.Series(v, dtype=pl.Float64) for k, v in cols.items()}).select(expr).to_series().to_list()


@given(st.lists(anything, min_size=1, max_size=40))
def test_valid_price_expr_is_rules_is_valid_price(ps: list[float]) -> None:
    assert _eval(valid_price_expr(pl.col("p")).fill_null(False), p=ps) == [rules.is_valid_price(p) for p in ps]


@given(st.lists(valid, min_size=1, max_size=40))
def test_cents_expr_is_rules_to_cents(ps: list[float]) -> None:
    assert _eval(cents_expr(pl.col("p")), p=ps) == [rules.to_cents(p) for p in ps]


@given(st.lists(st.tuples(valid, valid), min_size=1, max_size=40))
def test_prob_move_expr_is_rules_prob_move(pairs: list[tuple[float, float]]) -> None:
    prev, new = [a for a, _ in pairs], [b for _, b in pairs]
    got = _eval(prob_move_expr(pl.col("a"), pl.col("b")), a=prev, b=new)
    assert got == [rules.prob_move(a, b) for a, b in pairs]  # bit for bit


@given(st.lists(st.floats(-1e5, 1e5).filter(bool), min_size=1, max_size=40))
def test_direction_expr_is_rules_direction_of(ds: list[float]) -> None:
    assert _eval(direction_expr(pl.col("d")), d=ds) == [rules.direction_of(d) for d in ds]


def _drop(i: int, delta: float, sport: str, book: str, kind: str, ts: int) -> Any:
    (d,) = DropEngine(threshold=1).observe_many(
        [Quote(sport, f"e{i % 3}", book, "h2h_home" if kind == "game" else "player_points:A B:over@1.5", -110, 1),
         Quote(sport, f"e{i % 3}", book, "h2h_home" if kind == "game" else "player_points:A B:over@1.5",
               -110 - 1000, 2)], now_ms=ts)
    return d.__class__(**{**{f: getattr(d, f) for f in d.__struct_fields__}, "delta": delta,
                          "direction": rules.direction_of(delta)})


filters = st.builds(
    AlertFilter.build,
    st.sampled_from(rules.DIRECTIONS),
    st.sampled_from([None, "nba", "nba,nhl"]),
    st.sampled_from([None, "e0", "e1,e2"]),
    st.sampled_from([None, "pinnacle", "pinnacle,fanduel"]),
    st.sampled_from([None, "h2h", "player_points"]),
    st.sampled_from([None, "game", "prop"]),
    threshold=st.one_of(st.none(), st.integers(1, 200), st.floats(0.5, 50)),
    since=st.one_of(st.none(), st.integers(0, 20)),
)
deltas = st.one_of(st.integers(-300, 300).filter(bool).map(float), st.floats(-300, 300).filter(bool),
                   st.integers(1, 200).map(lambda t: t - 1e-9), st.integers(1, 200).map(lambda t: -(t - 3e-9)))


# Three filters on each drawn table: building the drops and the frame is most of an example,
# so 120 tables x 3 filters check more (filter, table) pairs (360) than 300 tables x 1 did.
@settings(max_examples=120, deadline=None)
@given(st.lists(filters, min_size=3, max_size=3),
       st.lists(st.tuples(deltas, st.sampled_from(["nba", "nhl"]), st.sampled_from(["pinnacle", "fanduel", "bet365"]),
                          st.sampled_from(["game", "prop"]), st.integers(0, 25)), min_size=1, max_size=20))
def test_batch_filter_expr_is_alert_filter_accepts(flts: list[AlertFilter], rows: list[tuple[Any, ...]]) -> None:
    drops = [_drop(i, *r) for i, r in enumerate(rows)]
    frame = pl.DataFrame([d.to_dict() for d in drops], schema_overrides={"delta": pl.Float64},
                         infer_schema_length=None).with_row_index("i")
    for flt in flts:
        got = frame.filter(filter_expr(flt)).get_column("i").to_list()
        assert got == [i for i, d in enumerate(drops) if flt.accepts(d)], flt


def _table(quotes: list[Quote], flag: bool) -> pl.DataFrame:
    cols = {c: [getattr(q, c) for q in quotes] for c in ("sport_key", "event_id", "bookmaker", "side", "last_update")}
    frame = pl.DataFrame(cols).with_columns(
        pl.Series("price", [None if q.price is None else float(q.price) for q in quotes], dtype=pl.Float64))
    if flag:
        frame = frame.with_columns(pl.Series(PRICE_INT_COLUMN, [type(q.price) is int for q in quotes]))
    return frame


mixed_prices = st.one_of(st.none(), st.integers(-400, -100), st.integers(100, 400),
                         st.sampled_from([-112.5, 150.5, -140.0, 261.9, 251.9, 100.0, -100.0]),
                         st.floats(-400, -100), st.floats(100, 400))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["h2h_home", "h2h_away"]), mixed_prices, st.integers(0, 3)),
                min_size=1, max_size=40),
       st.sampled_from([1, 5, 10, 25]), st.sampled_from(["last", "anchor"]), st.sampled_from(["cents", "prob"]))
def test_batch_keeps_each_price_type_and_equals_the_engine(
    steps: list[tuple[str, float | None, int]], threshold: int, reference: str, unit: str
) -> None:
    """Defect 3: a table whose Float64 price column carries the per-row int flag gives, through
    :meth:`BatchResult.drops`, the engine's alerts byte for byte (ints stay ints), with the
    engine's counters."""
    clock, quotes = 1_000, []
    for side, price, dt in steps:
        clock += dt
        quotes.append(Quote("nba", "e", "b", side, price, clock))
    opts = DetectOptions.build(threshold / (10 if unit == "prob" else 1), "both", reference, unit)
    eng = DropEngine.from_options(opts)
    want = [d.to_json() for d in eng.observe_many(quotes)]
    res = detect_counted(_table(quotes, True), options=opts)
    assert [d.to_json() for d in res.drops()] == want
    assert res.counters == eng.counters


def test_defect3_mixed_prices_keep_their_types() -> None:
    quotes = [Quote("nba", "e", "b", "h2h_home", p, 1_000 + i) for i, p in enumerate([-110, -150, -140.5, -170])]
    res = detect_counted(_table(quotes, True), threshold=10)
    assert [(d.prev, d.new, d.delta) for d in res.drops()] == [(-110, -150, -40), (-140.5, -170, -29.5)]
    assert [(type(d.prev), type(d.new), type(d.delta)) for d in res.drops()] == [(int, int, int),
                                                                               (float, int, float)]
    # without the flag a Float64 column is floats, as the engine fed those floats says
    assert all(type(d.prev) is float for d in detect_counted(_table(quotes, False), threshold=10).drops())


def test_int_alerts_of_a_mixed_table_get_int_columns() -> None:
    quotes = [Quote("nba", "e", "b", "h2h_home", p, 1_000 + i) for i, p in enumerate([-112.5, -110, -150])]
    out = detect(_table(quotes, True), threshold=10)
    assert out.schema["prev"] == pl.Int64 and out.get_column("delta").to_list() == [-40]


def test_options_and_keywords_are_not_mixed() -> None:
    quotes = [Quote("nba", "e", "b", "h2h_home", -110, 1)]
    with pytest.raises(Exception, match="options"):
        detect(_table(quotes, False), threshold=5, options=DetectOptions())
    with pytest.raises(Exception, match="options"):
        DropEngine(5, options=DetectOptions())
    assert math.isclose(DropEngine(options=DetectOptions(threshold=5)).config.threshold, 5)


@pytest.mark.parametrize("reference", ["last", "anchor"])
@pytest.mark.parametrize("prices", [[261.9, 251.9], [251.9, 261.9], [261.9, 251.90000001], [-112.3, -122.3]])
def test_threshold_boundary_between_fractional_prices(reference: str, prices: list[float]) -> None:
    """Defect 1's move, and one just short of it, decided alike by both engines and both references."""
    quotes = [Quote("nba", "e", "b", "h2h_home", p, 1_000 + i) for i, p in enumerate(prices)]
    eng = DropEngine(threshold=10, reference=reference)
    want = [d.to_json() for d in eng.observe_many(quotes)]
    res = detect_counted(_table(quotes, True), threshold=10, reference=reference)
    assert [d.to_json() for d in res.drops()] == want
    assert res.counters == eng.counters
    assert len(want) == (0 if prices[1] == 251.90000001 else 1)
