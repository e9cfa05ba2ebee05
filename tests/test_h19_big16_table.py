"""Issue 14 (session 12, big16): what the compiled signals path's session-12 changes rely on.

- ``analysis.batch._columns_table`` builds the ``type`` column from each part's one name (per
  place, its part) and a number column only one part has by scattering it into a column of
  nulls: the table equals the plain build (every part's rows in the order of their places, each
  column typed by a plain cast (Categorical by way of String), a missing column null, the input's
  text gathered by row), whatever the parts, their places, empty parts or parts without a column;
- the compiled path builds the price drops' values from the kernel's columns (the drops' table is
  not held for them) and lets the per-row ids go before the alerts table: its values and table are
  still the pure path's (types with and without ``odds_drop``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis.batch import _column_type, _columns_table, detect_counted

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of, signal_options, signal_streams

#: Columns of the table built here: a shared number, text and time; numbers, text and a time one
#: part has; ``books`` taken late (as the steams' books are); ``event_id`` from the input's texts.
COLUMNS = ("type", "event_id", "bookmaker", "side", "prev", "direction", "points", "key_numbers", "books",
           "lag_ms", "last_update")
SCHEMA = pl.Schema({"event_id": pl.String, "bookmaker": pl.String})
TEXTS = pl.DataFrame({"event_id": [f"e{i}" for i in range(7)], "bookmaker": [f"b{i % 3}" for i in range(7)]})


def floats(n: int) -> st.SearchStrategy[list[float | None]]:
    return st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.just(-0.0)),
                    min_size=n, max_size=n)


def texts(n: int) -> st.SearchStrategy[list[str | None]]:
    return st.lists(st.one_of(st.none(), st.sampled_from(["up", "down", "drifting", "a much longer text x" * 2])),
                    min_size=n, max_size=n)


@st.composite
def parts_st(draw: st.DrawFn) -> tuple[list[pl.DataFrame], Any, Any, dict[str, Any]]:
    """Three parts (a drops', a line moves' and a steams' table, each of one type, the first
    possibly without ``type`` as the kernel's columns are) at random places, and per place its
    input row and whether it is a steam."""
    sizes = [draw(st.integers(0, 12)) for _ in range(3)]
    n = sum(sizes)
    places = np.array(draw(st.permutations(range(n))), dtype=np.int64)
    bounds = np.cumsum([0, *sizes])
    parts: list[pl.DataFrame] = []
    for j, (kind, size) in enumerate(zip(("odds_drop", "line_move", "steam"), sizes, strict=True)):
        cols: dict[str, Any] = {"_at": pl.Series(places[bounds[j]:bounds[j + 1]], dtype=pl.Int64)}
        if not (j == 0 and draw(st.booleans())):
            cols["type"] = pl.Series([kind] * size, dtype=pl.String)
        cols["side"] = pl.Series(draw(texts(size)), dtype=pl.String)
        cols["last_update"] = pl.Series(draw(st.lists(st.integers(0, 2**40), min_size=size, max_size=size)),
                                        dtype=pl.Int64)
        if j < 2:
            cols["direction"] = pl.Series(draw(texts(size)), dtype=pl.String)
        if j == 0:
            cols["prev"] = pl.Series(draw(floats(size)), dtype=pl.Float64)
        if j == 1:
            cols["points"] = pl.Series(draw(floats(size)), dtype=pl.Float64)
            cols["key_numbers"] = pl.Series(draw(texts(size)), dtype=pl.String)
        if j == 2:
            # (an Int64 column the table types Int64, one part only: scattered)
            cols["lag_ms"] = pl.Series(draw(st.lists(st.one_of(st.none(), st.integers(0, 10**9)),
                                                     min_size=size, max_size=size)), dtype=pl.Int64)
        parts.append(pl.DataFrame(cols))
    rows = np.array(draw(st.lists(st.integers(0, TEXTS.height - 1), min_size=n, max_size=n)), dtype=np.int64)
    is_steam = np.zeros(n, np.bool_)
    is_steam[places[bounds[2]:]] = True
    books = pl.Series("books", draw(texts(sizes[2])), dtype=pl.String)
    return parts, rows, is_steam, {"books": (2, lambda: books)}


def _plain_typed(part: pl.DataFrame, c: str, t: pl.DataType) -> pl.Expr:
    """Column ``c`` of ``part`` as type ``t`` by one query (null where ``part`` lacks it): the
    reference for the table's own per-Series casts."""
    if c not in part.columns:
        return pl.lit(None, t).alias(c)
    if part.schema[c] == t:
        return pl.col(c)
    return pl.col(c).cast(pl.String).cast(t) if t == pl.Categorical else pl.col(c).cast(t)

def plain(parts: list[pl.DataFrame], rows: Any, is_steam: Any, late: dict[str, Any]) -> pl.DataFrame:
    """The table as the plain build makes it: every part's rows (late columns added) in place
    order, each column typed, the input's text gathered by row (no bookmaker for a steam)."""
    types = {c: _column_type(c, SCHEMA) for c in COLUMNS}
    full = list(parts)
    for c, (k, take) in late.items():
        full[k] = full[k].with_columns(take().alias(c))
    own = pl.concat([part.select("_at", *(_plain_typed(part, c, types[c]) for c in COLUMNS if c not in TEXTS.columns))
                     for part in full]).sort("_at")
    picked = TEXTS[pl.Series(rows, dtype=pl.UInt32)]
    picked = picked.with_columns(pl.when(pl.lit(pl.Series(is_steam))).then(None).otherwise(pl.col("bookmaker"))
                                 .alias("bookmaker"))
    return pl.concat([own, picked], how="horizontal").select(COLUMNS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts_st())
def test_columns_table_equals_the_plain_build(case: tuple[list[pl.DataFrame], Any, Any, dict[str, Any]]) -> None:
    parts, rows, is_steam, late = case
    want = plain(parts, rows, is_steam, late)
    got = _columns_table(list(parts), COLUMNS, SCHEMA, TEXTS, rows, is_steam, late)
    assert_frame_equal(got, want, check_exact=True)
    for c in ("prev", "points"):  # the same bits (-0.0 is drawn, and == takes it for 0.0)
        bits = [frame.get_column(c).is_null().to_list() + frame.get_column(c).fill_null(0.0).to_numpy().view(np.uint64)
                .tolist() for frame in (got, want)]
        assert bits[0] == bits[1]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signal_streams(), signal_options(),
       st.sampled_from(["odds_drop,line_move,steam", "line_move,steam", "odds_drop,steam", "odds_drop,line_move"]))
def test_values_from_the_kernels_columns_equal_the_pure_path(quotes: list[Quote], opts: dict[str, Any],
                                                             types: str) -> None:
    require_fast()
    opts = {**opts, "types": types}
    frame = frame_of(quotes)
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert fast.alert_values() == pure.alert_values()
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.counters == pure.counters
