"""drops15 (issue 14, session 11): the compiled path judges a key column's text per row only when
some value is flagged.

``_compiled_passes`` builds the per-row "bad field" array of a key column only when one of its
distinct values is empty or a row is null, the "bad side" array only when a distinct side is not
canonical, and sets a skipped row's event and book codes to 0 in place. On streams whose key
columns hold none of these (the arrays skipped), or an empty value, a null or an unparseable side
in one column (the arrays built, rows skipped), the compiled path gives the pure path's table,
counters, skips (reason and row) and returned rows.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote

from .strategies import signal_options, signal_streams_with_options
from .test_h16_break16_batch import assert_fast_is_pure, fast_case

_KEYS = ("sport_key", "event_id", "bookmaker", "side")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signal_streams_with_options(signal_options()), st.data())
def test_flagged_key_values_fast_equals_pure(case: tuple[list[Quote], dict[str, Any]], data: st.DataObject) -> None:
    drawn = fast_case(case)
    if drawn is None:
        return
    frame, opts = drawn
    n = frame.height
    column = data.draw(st.sampled_from(_KEYS))
    flaw = data.draw(st.sampled_from(("none", "empty", "null", "bad side")))
    rows = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))
    if flaw != "none":
        name = "side" if flaw == "bad side" else column
        value = {"empty": "", "null": None, "bad side": "not a side@@"}[flaw]
        frame = frame.with_columns(frame.get_column(name).cast(pl.String).scatter(rows, value))
    if data.draw(st.booleans()):
        frame = frame.with_columns(pl.col(c).cast(pl.Categorical) for c in _KEYS)
    assert_fast_is_pure(frame, opts)
