"""Issue 14 (session 17, sig17): ``analysis.batch._columns_table`` judges the parts' places without
concatenating them, and writes ``type`` from each part's name wherever some part lacks the column.

The table is the parts' columns null-filled where a part has none, concatenated, in ``_at`` order
(the places a permutation of all rows), typed as ``_column_type`` types them, for: parts already in
order (each a run continuing the previous one), out of order, empty parts, and ``type`` held by some
parts only (the line moves' table alone has it when no price drop is returned).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine.analysis import batch

_COLUMNS: dict[str, pl.DataType] = {
    "type": pl.Categorical(),
    "last_update": pl.Int64(),
    "prev": pl.Float64(),
    "direction": pl.Categorical(),
    "books": pl.String(),
}


@st.composite
def parts_st(draw: st.DrawFn) -> list[pl.DataFrame]:
    k = draw(st.integers(1, 3))
    heights = [draw(st.integers(0, 10)) for _ in range(k)]
    n = sum(heights)
    in_order = draw(st.booleans())
    places = np.arange(n) if in_order else np.array(draw(st.permutations(list(range(n)))), dtype=np.int64)
    parts = []
    offset = 0
    for j, h in enumerate(heights):
        cols: dict[str, pl.Series] = {"_at": pl.Series("_at", places[offset : offset + h], dtype=pl.Int64)}
        for c in sorted(draw(st.sets(st.sampled_from(sorted(_COLUMNS))))):
            values: list[Any]
            if c == "type":  # each part is of one alert type: a literal, as the tables write it
                values = [f"t{j}"] * h
            elif _COLUMNS[c] == pl.Int64():
                values = [draw(st.one_of(st.none(), st.integers(-9, 9))) for _ in range(h)]
            elif _COLUMNS[c] == pl.Float64():
                values = [draw(st.one_of(st.none(), st.floats(-5, 5))) for _ in range(h)]
            else:
                values = [draw(st.one_of(st.none(), st.sampled_from(("up", "down", "")))) for _ in range(h)]
            cols[c] = pl.Series(c, values, dtype=pl.String if _COLUMNS[c] == pl.Categorical() else _COLUMNS[c])
        parts.append(pl.DataFrame(list(cols.values())))
        offset += h
    return parts


def _reference(parts: list[pl.DataFrame]) -> pl.DataFrame:
    full = pl.concat(
        [
            pl.DataFrame(
                [
                    p.get_column(c).cast(t) if c in p.columns else pl.Series(c, [None] * p.height, dtype=t)
                    for c, t in _COLUMNS.items()
                ]
                + [p.get_column("_at")]
            )
            for p in parts
        ]
    )
    return full.sort("_at").drop("_at")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts_st())
def test_columns_table_is_the_null_filled_concat_in_order(parts: list[pl.DataFrame]) -> None:
    want = _reference(parts)
    n = want.height
    got = batch._columns_table(
        [p.clone() for p in parts],
        tuple(_COLUMNS),
        pl.Schema({}),
        pl.DataFrame(),
        np.zeros(n, np.int64),
        np.zeros(n, np.bool_),
    )
    assert_frame_equal(got, want)


@given(st.lists(st.integers(0, 30), max_size=12, unique=True), st.integers(0, 5))
def test_runs_from_is_a_run_of_consecutive_places(values: list[int], start: int) -> None:
    place = np.array(values, dtype=np.int64)
    want = values == list(range(start, start + len(values)))
    assert batch._runs_from(place, start) == want
