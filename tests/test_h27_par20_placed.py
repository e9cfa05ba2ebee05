"""Issue 14 (session 20, par20): ``analysis.batch._columns_table`` places a column only one part
has (a line move's or a steam's own number and text fields) by a gather through the part's index
(per place its row in the part, null at another part's place), numbers too, where numbers were
scattered by numpy into zeros and nulled by a mask; and it finds the shared columns' rows by an
index built part by part (no concatenation of the places).

The table equals the plain build (every part's rows in the order of their places, each column
typed by a plain cast, a missing column null) bit for bit, whatever the numbers (NaN, infinities,
-0.0, nulls, int64's extremes), the parts' chunks (a part of several chunks, as the steams' books
pieces and the input's row groups give) and the places (interleaved, in order, a part with none).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine.analysis.batch import _column_type, _columns_table

#: Columns: numbers (Float64) and a time (Int64) only one part has, a shared number and time, text
#: one part has (Categorical by ``_WORD_COLUMNS``) and one shared.
COLUMNS = ("type", "side", "prev", "new", "points", "new_line", "lag_ms", "last_update", "key_numbers", "leader")
SCHEMA = pl.Schema({})
TEXTS = pl.DataFrame({"event_id": ["e0"]})

FLOATS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.just(-0.0), st.just(0.0))
INTS = st.one_of(st.none(), st.sampled_from([0, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**40), 2**40))
WORDS = st.one_of(st.none(), st.sampled_from(["[]", "[3.0,7.0]", "fanduel", "draftkings"]))


def chunked(series: pl.Series, cuts: list[int]) -> pl.Series:
    """``series`` in several chunks, cut at ``cuts`` (as a Parquet file's row groups or pieces give)."""
    bounds = sorted({0, len(series), *(c for c in cuts if 0 < c < len(series))})
    if len(bounds) <= 2:
        return series
    return pl.concat([series[a:b] for a, b in itertools.pairwise(bounds)], rechunk=False)


@st.composite
def parts_st(draw: st.DrawFn) -> list[pl.DataFrame]:
    """A drops', a line moves' and a steams' part at random places (drawn as a permutation, or
    each part's places in a run: a part may hold every place in order), their columns in chunks."""
    sizes = [draw(st.integers(0, 40)) for _ in range(3)]
    n = sum(sizes)
    places = np.array(draw(st.permutations(range(n))) if draw(st.booleans()) else range(n), dtype=np.int64)
    bounds = np.cumsum([0, *sizes])
    parts: list[pl.DataFrame] = []
    for j, (kind, size) in enumerate(zip(("odds_drop", "line_move", "steam"), sizes, strict=True)):
        cuts = draw(st.lists(st.integers(0, max(size, 1)), max_size=3))

        def col(
            name: str, values: st.SearchStrategy[Any], dtype: Any, size: int = size, cuts: list[int] = cuts
        ) -> pl.Series:
            return chunked(pl.Series(name, draw(st.lists(values, min_size=size, max_size=size)), dtype=dtype), cuts)

        cols = [
            pl.Series("_at", places[bounds[j] : bounds[j + 1]], dtype=pl.Int64),
            pl.Series("type", [kind] * size, dtype=pl.String),
            col("side", WORDS, pl.String),
            col("last_update", INTS, pl.Int64),
        ]
        if j == 0:
            cols += [col("prev", FLOATS, pl.Float64), col("new", FLOATS, pl.Float64)]
        elif j == 1:
            cols += [
                col("points", FLOATS, pl.Float64),
                col("new_line", FLOATS, pl.Float64),
                col("key_numbers", WORDS, pl.Categorical),
            ]
        else:
            cols += [col("lag_ms", INTS, pl.Int64), col("leader", WORDS, pl.Categorical)]
        parts.append(pl.DataFrame(cols))
    return parts


def plain(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Every part's rows in place order, each column as the table types it (null where a part lacks it)."""
    types = {c: _column_type(c, SCHEMA) for c in COLUMNS}

    def typed(part: pl.DataFrame, c: str) -> pl.Expr:
        t = types[c]
        if c not in part.columns:
            return pl.lit(None, t).alias(c)
        return pl.col(c).cast(pl.String).cast(t) if t == pl.Categorical else pl.col(c).cast(t)

    return (
        pl.concat([part.select("_at", *(typed(part, c) for c in COLUMNS)) for part in parts])
        .sort("_at")
        .select(COLUMNS)
    )


def bits(frame: pl.DataFrame, c: str) -> list[Any]:
    """A number column's validity and bits (NaN's, -0.0's: ``==`` and the frame compare take them
    for other values)."""
    column = frame.get_column(c)
    raw = column.fill_null(0).to_numpy()
    return [column.is_null().to_list(), raw.view(np.uint64 if raw.dtype == np.float64 else np.int64).tolist()]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(parts_st())
@example(
    [
        pl.DataFrame(
            {
                "_at": pl.Series([1, 3], dtype=pl.Int64),
                "type": ["odds_drop"] * 2,
                "prev": [float("nan"), -0.0],
                "new": [None, float("inf")],
            }
        ),
        pl.DataFrame(
            {
                "_at": pl.Series([0, 2], dtype=pl.Int64),
                "type": ["line_move"] * 2,
                "points": [-0.0, None],
                "new_line": [1.5, float("-inf")],
            }
        ),
        pl.DataFrame({"_at": pl.Series([], dtype=pl.Int64), "type": pl.Series([], dtype=pl.String)}),
    ]
)
def test_placed_columns_equal_the_plain_build(parts: list[pl.DataFrame]) -> None:
    n = sum(part.height for part in parts)
    want = plain(parts)
    got = _columns_table(
        [part.clone() for part in parts], COLUMNS, SCHEMA, TEXTS, np.zeros(n, np.int64), np.zeros(n, np.bool_)
    )
    assert got.columns == list(COLUMNS)
    assert_frame_equal(got, want, check_exact=True)
    for c in ("prev", "new", "points", "new_line", "lag_ms", "last_update"):
        assert bits(got, c) == bits(want, c), c
