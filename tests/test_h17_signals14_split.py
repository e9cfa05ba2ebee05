"""Issue 14 (session 10): what the compiled signals path's parallel steps rely on.

- the price pass and the line series pass run side by side (``analysis.batch._compiled_passes``):
  the line pass is ``kernel.run`` with an infinite price threshold over one price key per side;
  its line moves and line counters are the one pass's, and it writes no price move;
- the alerts table of several types (``analysis.batch._columns_table``) gathers a column only
  one part has from that part by a null-padded index, and a "late" column (the steams' books,
  written in a thread) last: the same table as every part's columns null-filled, concatenated
  and put in detection order;
- ``analysis.batch._in_thread`` hands back the work's result, or raises its error; it runs the
  work inline where no thread starts or on a thread Python did not start (break17 B17-1/B17-3).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine.analysis import batch

from .conftest import require_fast


@st.composite
def rows_st(draw: st.DrawFn) -> dict[str, Any]:
    """Adversarial rows for the kernel pass: few keys and series (many repeats, moves, stale
    times, suspensions, invalid rows, line-only observations, line changes by half points)."""
    n = draw(st.integers(1, 120))
    sides = draw(st.integers(1, 4))
    ints = st.lists(st.integers(0, 10**6), min_size=n, max_size=n)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sid = rng.integers(0, sides, n)
    kid = sid + sides * rng.integers(0, 3, n)  # 3 books per side
    lid = np.where(rng.random(n) < 0.2, -1, kid)  # some rows without a series
    lu = np.sort(rng.integers(0, 50, n)) - np.where(rng.random(n) < 0.1, rng.integers(1, 10, n), 0)
    price = rng.choice([-130.0, -120.0, -110.0, -105.0, 100.0, 105.0, 110.0, 125.0, 150.0], n)
    line = rng.choice([-3.5, -3.0, -2.5, -1.0, 44.5, 45.0], n)
    draw(ints)  # (shrinks the seed's companions with the length)
    return {
        "sid": sid.astype(np.int64), "nsides": sides, "kid": kid.astype(np.int64), "nkeys": 3 * sides,
        "lid": lid.astype(np.int64), "nseries": 3 * sides, "lu": lu.astype(np.int64), "price": price,
        "null": rng.random(n) < 0.15, "invalid": rng.random(n) < 0.05, "line_only": rng.random(n) < 0.15,
        "line": line,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_st(), reprime=st.booleans(), anchor=st.booleans(), prob=st.booleans(),
       thr=st.sampled_from([5.0, 10.0, 20.0]), line_thr=st.sampled_from([0.5, 1.0]))
def test_line_pass_alone_is_the_one_pass(
    rows: dict[str, Any], reprime: bool, anchor: bool, prob: bool, thr: float, line_thr: float,
) -> None:
    require_fast()
    from dropengine.fast import kernel

    r = rows
    common = (r["lu"], r["price"], r["null"], r["invalid"], r["line_only"], r["line"], reprime, anchor, prob)
    one = kernel.run(r["kid"], r["nkeys"], r["lid"], r["nseries"], *common, thr, line_thr)
    no_series = np.full(1, -1, np.int64)
    price = kernel.run(r["kid"], r["nkeys"], no_series, 0, *common[:5], np.zeros(1), *common[6:], thr, line_thr)
    line = kernel.run(r["sid"], r["nsides"], r["lid"], r["nseries"], *common, math.inf, line_thr)
    # the price pass alone: the one pass's price moves and price counters, no line series
    for got, want in zip(price[:2], one[:2], strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(price[2]) == 0
    # the line pass alone: no price move, the one pass's line moves and line counters
    assert len(line[0]) == 0 and len(line[1]) == 0
    for got, want in zip(line[2:5], one[2:5], strict=True):
        np.testing.assert_array_equal(got, want)
    lines = [kernel.LINE_SEEN, kernel.LINE_PRIMED, kernel.LINE_STALE, kernel.LINE_SUSPENDED, kernel.LINE_REPEATED]
    prices = [kernel.PRIMED, kernel.STALE, kernel.SUSPENDED, kernel.REPEATED]
    np.testing.assert_array_equal(line[5][lines], one[5][lines])
    np.testing.assert_array_equal(price[5][prices], one[5][prices])


# columns as the alerts table types them (a time Int64, a number Float64, the rest String; the
# detector's words, e.g. type and leader, Categorical: batch._WORD_COLUMNS)
_COLUMNS = {"last_update": pl.Int64(), "prev": pl.Float64(), "books": pl.String(), "leader": pl.Categorical(),
            "points": pl.Float64()}


def _reference(parts: list[pl.DataFrame], types: dict[str, pl.DataType]) -> pl.DataFrame:
    """Every part's columns null-filled where it has none, concatenated, in ``_at`` order."""
    full = pl.concat([p.select(pl.col(c).cast(t) if c in p.columns else pl.lit(None, t).alias(c)
                               for c, t in types.items()).with_columns(p.get_column("_at"))
                      for p in parts])
    return full.sort("_at").drop("_at")


@st.composite
def parts_st(draw: st.DrawFn) -> tuple[list[pl.DataFrame], str | None]:
    """2-3 parts of random heights, each with a random subset of the columns, their places a
    random permutation of all rows; optionally one column of one part given late."""
    k = draw(st.integers(1, 3))
    heights = [draw(st.integers(0, 12)) for _ in range(k)]
    places = np.array(draw(st.permutations(list(range(sum(heights))))), dtype=np.int64)
    parts = []
    offset = 0
    for j, h in enumerate(heights):
        have = draw(st.sets(st.sampled_from(sorted(_COLUMNS)), max_size=len(_COLUMNS)))
        cols = {"_at": pl.Series("_at", places[offset:offset + h], dtype=pl.Int64)}
        for c in sorted(have):
            values: list[Any]
            if _COLUMNS[c] in (pl.String(), pl.Categorical()):
                values = [draw(st.one_of(st.none(), st.text(max_size=4))) for _ in range(h)]
            elif _COLUMNS[c] == pl.Int64():
                values = [draw(st.one_of(st.none(), st.integers(-9, 9))) for _ in range(h)]
            else:
                values = [draw(st.one_of(st.none(), st.floats(-5, 5))) for _ in range(h)]
            cols[c] = pl.Series(c, values, dtype=_COLUMNS[c])
        cols["type"] = pl.Series("type", [f"t{j}"] * h, dtype=pl.String)  # a column every part has
        parts.append(pl.DataFrame(list(cols.values())))
        offset += h
    late = draw(st.one_of(st.none(), st.sampled_from(["books", "leader"])))
    if late is not None and any(late in p.columns for p in parts):
        late = None  # a late column is one no part holds yet
    return parts, late


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=parts_st(), data=st.data())
def test_columns_table_is_concat_in_detection_order(drawn: tuple[list[pl.DataFrame], str | None],
                                                    data: st.DataObject) -> None:
    parts, late_name = drawn
    types: dict[str, pl.DataType] = {"type": pl.Categorical(), **_COLUMNS}
    schema = pl.Schema({})
    n = sum(p.height for p in parts)
    late: dict[str, tuple[int, Callable[[], pl.Series]]] = {}
    if late_name is not None:
        j = data.draw(st.integers(0, len(parts) - 1))
        values = [data.draw(st.one_of(st.none(), st.text(max_size=3))) for _ in range(parts[j].height)]
        column = pl.Series(late_name, values, dtype=pl.String)
        late[late_name] = (j, functools.partial(pl.Series.alias, column, late_name))
        parts_ref = [p.with_columns(column) if i == j else p for i, p in enumerate(parts)]
    else:
        parts_ref = parts
    want = _reference(parts_ref, types)
    got = batch._columns_table(parts, tuple(types), schema, pl.DataFrame(), np.zeros(n, np.int64),
                               np.zeros(n, np.bool_), late)
    assert_frame_equal(got, want)


def test_in_thread_gives_the_result_or_raises() -> None:
    assert batch._in_thread(lambda: 41 + 1)() == 42

    def fails() -> int:
        raise ValueError("price: -0 is not a price")

    with pytest.raises(ValueError, match="price: -0"):
        batch._in_thread(fails)()


def test_in_thread_runs_inline_where_no_thread_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert batch._in_thread(lambda: 6 * 7)() == 42


def test_in_thread_runs_inline_on_a_thread_python_did_not_start() -> None:
    import threading

    seen: list[str] = []

    def where() -> str:
        return threading.current_thread().name

    def udf(x: pl.Series) -> pl.Series:
        # a polars UDF: runs on a worker of polars' pool (a thread Python did not start)
        seen.append(batch._in_thread(where)())
        seen.append(where())
        return x

    pl.DataFrame({"g": [1], "x": [0]}).group_by("g").agg(pl.col("x").map_batches(udf, return_dtype=pl.Int64))
    if seen and seen[1].startswith("Dummy"):
        assert seen[0] == seen[1]  # the work ran in the caller

    # the same on a thread certainly not started by threading (polars may run the UDF above on
    # the calling thread): _thread's own, which threading sees as a dummy
    import _thread

    finished = threading.Event()
    names: list[str] = []

    def foreign() -> None:
        try:
            names.extend((batch._in_thread(where)(), where()))
        finally:
            finished.set()

    _thread.start_new_thread(foreign, ())
    assert finished.wait(10)
    assert names[1].startswith("Dummy") and names[0] == names[1], names

