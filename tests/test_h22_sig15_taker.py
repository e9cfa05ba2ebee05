"""``analysis.batch._taker`` (session 15, sig15): the moves' and alerts' text is taken from the
input's columns by a mask where the rows never decrease (a filter walks each chunk once; a gather
looks every row up among a Parquet file's chunks): always exactly ``column.gather(rows)``, for
columns in many chunks or one, rows increasing, repeated, unordered, empty, with nulls in the
column, text (Categorical and String) and numbers."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.analysis.batch import _taker

from .conftest import require_fast

VALUES = st.one_of(st.none(), st.sampled_from(["a", "b", "ccc", "", "d"]))


def _chunked(values: list[str | None], cuts: list[int], dtype: pl.DataType) -> pl.Series:
    """``values`` as a column of several chunks (cut at ``cuts``), as a Parquet reader gives it."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    parts = [pl.Series("c", values[lo:hi], dtype=pl.String).cast(dtype) for lo, hi in itertools.pairwise(bounds)]
    column = parts[0]
    for part in parts[1:]:
        column.append(part)
    return column


@settings(max_examples=150, deadline=None)
@given(
    st.lists(VALUES, min_size=1, max_size=60),
    st.lists(st.integers(0, 60), max_size=5),
    st.lists(st.integers(0, 10**6), max_size=80),
    st.sampled_from(["increasing", "repeated", "any"]),
    st.sampled_from([pl.Categorical(), pl.String()]),
)
def test_taker_is_the_gather(
    values: list[str | None], cuts: list[int], raw: list[int], order: str, dtype: pl.DataType
) -> None:
    require_fast()  # (numpy: the compiled path's)
    column = _chunked(values, cuts, dtype)
    rows = [r % len(values) for r in raw]
    if order == "increasing":
        rows = sorted(set(rows))
    elif order == "repeated":
        rows = sorted(rows)
    at = pl.Series("_i", rows, dtype=pl.UInt32)
    want = column.gather(at)
    got = _taker(at, len(values))(column)
    assert got.dtype == want.dtype
    assert got.to_list() == want.to_list()
    numbers = _chunked([None if v is None else str(len(v)) for v in values], cuts, pl.String).cast(pl.Int64)
    assert _taker(at, len(values))(numbers).to_list() == numbers.gather(at).to_list()


def test_many_chunks_repeated_rows_take_the_mask_and_equal_the_gather() -> None:
    """A column of 40 chunks, rows increasing with repeats (alerts in detection order)."""
    require_fast()
    rng = np.random.default_rng(7)
    values = [f"e{int(v)}" for v in rng.integers(0, 500, 20_000)]
    column = _chunked(values, list(range(500, 20_000, 500)), pl.Categorical())
    assert column.n_chunks() == 40
    rows = np.sort(rng.integers(0, 20_000, 15_000))
    at = pl.Series("_i", rows, dtype=pl.UInt32)
    assert _taker(at, 20_000)(column).to_list() == column.gather(at).to_list()
