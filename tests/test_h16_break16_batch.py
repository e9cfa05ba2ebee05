"""break16 (issue 14, session 9): the compiled batch path after batch14's key ids and codes.

Key ids now pair (event, side) before the book and read a Categorical's UInt32 physical codes as
they are (a null: ``NO_CODE``). On adversarial signal streams whose key columns are String,
Categorical or Enum (unused categories too), with nulls in them and sides spelled several ways
(``spread_home@-3`` / ``-3.0`` / ``-03``), the compiled path gives the pure path's table (values
and dtypes), counters, skips (reason and row) and returned rows.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis.batch import detect_counted

from .conftest import require_fast
from .strategies import signal_options, signal_streams_with_options
from .test_h12_batch_equivalence import frame_of

_KEYS = ("event_id", "bookmaker", "side", "sport_key", "market_key")

def fast_case(case: tuple[list[Quote], dict[str, Any]]) -> tuple[pl.DataFrame, dict[str, Any]] | None:
    """A drawn signal stream as the frame both paths read and its options (None when it is empty);
    skips unless the compiled path is installed."""
    require_fast()
    quotes, opts = case
    if not quotes:
        return None
    return frame_of(quotes), opts



def assert_fast_is_pure(frame: pl.DataFrame, opts: dict[str, Any]) -> None:
    """The compiled path's result of ``frame`` is the pure path's: alerts (types and values),
    counters, skips, rejected rows and the alerts' input rows."""
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True, check_dtypes=True)
    assert fast.counters == pure.counters
    assert fast.skipped == pure.skipped
    assert fast.rejected.to_dicts() == pure.rejected.to_dicts()
    assert fast.rows.to_list() == pure.rows.to_list()



def _spellings(side: str) -> list[str]:
    """``side`` and other spellings of it that canonical_side reads as it."""
    if "@" not in side:
        return [side]
    head, _, line = side.rpartition("@")
    out = [side, f"{head}@{line}0" if "." in line else f"{head}@{line}.0"]
    out.append(f"{head}@-0{line[1:]}" if line.startswith("-") else f"{head}@+{line}")
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signal_streams_with_options(signal_options()), st.data())
def test_coded_key_columns_with_nulls_and_spellings(case: tuple[list[Quote], dict[str, Any]],
                                                     data: st.DataObject) -> None:
    drawn = fast_case(case)
    if drawn is None:
        return
    frame, opts = drawn
    n = frame.height
    sides = [data.draw(st.sampled_from(_spellings(s))) for s in frame.get_column("side").to_list()]
    frame = frame.with_columns(pl.Series("side", sides, dtype=pl.String))
    columns = []
    for c in _KEYS:
        column = frame.get_column(c)
        nulls = data.draw(st.lists(st.integers(0, n - 1), max_size=2)) if c != "market_key" else []
        if nulls:
            column = column.scatter(nulls, None)
        kind = data.draw(st.sampled_from(("string", "categorical", "enum")))
        if kind == "categorical":
            column = column.cast(pl.Categorical)
        elif kind == "enum":
            words = {v for v in column.to_list() if v is not None} | {"unused", "~unused"}
            column = column.cast(pl.Enum(sorted(words)))
        columns.append(column)
    frame = frame.with_columns(columns)
    assert_fast_is_pure(frame, opts)
