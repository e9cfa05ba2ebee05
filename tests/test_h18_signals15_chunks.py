"""Issue 14 (session 11, signals15): what the compiled signals path's session-11 changes rely on.

- ``fast.signals.alert_order`` merges the returned moves and the steams' completing moves (both
  ascending) instead of sorting them: the same order as the sort by (move, steam), a move
  before the steam it completed, compiled and interpreted;
- with signals, ``analysis.batch._compiled_passes`` makes the gathered text columns one chunk
  each first: the results do not depend on how the input's columns are chunked (a Parquet
  file's row groups, a concat), Categorical key columns or String.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis.batch import detect_counted

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of, signal_options, signal_streams, wire


@st.composite
def routed_st(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    """Per move whether it is returned; steams' completing moves (ascending, distinct: a move
    completes one steam at most) and per steam whether it is kept."""
    n = draw(st.integers(0, 60))
    returned = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
    fire = np.array(sorted(draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n))) if n else [], dtype=np.int64)
    ok = np.array(draw(st.lists(st.booleans(), min_size=len(fire), max_size=len(fire))), dtype=np.bool_)
    return returned, fire, ok


@settings(max_examples=40, deadline=None)
@given(routed=routed_st(), compiled=st.booleans())
def test_alert_order_is_the_sort_by_move_then_steam(routed: tuple[Any, Any, Any], compiled: bool) -> None:
    if compiled:
        require_fast()
    from dropengine.fast import signals

    returned, fire, ok = routed
    moves = np.flatnonzero(returned)
    which = np.flatnonzero(ok)
    at = np.concatenate((moves, fire[which])).astype(np.int64)
    steam = np.concatenate((np.full(len(moves), -1), which)).astype(np.int64)
    order = np.lexsort((steam, at))  # the reference: by move, a move (-1) before its steam
    got_at, got_steam = signals.alert_order(returned, fire, ok, compiled=compiled)
    assert got_at.tolist() == at[order].tolist()
    assert got_steam.tolist() == steam[order].tolist()


def _chunked(frame: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    """``frame`` as several chunks, cut at ``cuts`` (rows)."""
    bounds = [0, *sorted({c % max(frame.height, 1) for c in cuts} - {0}), frame.height]
    pieces = [frame.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]
    return pl.concat(pieces, rechunk=False) if pieces else frame


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(quotes=signal_streams(), opts=signal_options(), cuts=st.lists(st.integers(1, 200), max_size=4),
       categorical=st.booleans())
def test_chunked_input_gives_the_same_results(quotes: list[Quote], opts: dict[str, Any], cuts: list[int],
                                              categorical: bool) -> None:
    require_fast()
    frame = frame_of(quotes)
    if categorical:  # a Parquet reader's dictionary-encoded keys
        frame = frame.with_columns(pl.col("sport_key", "event_id", "bookmaker", "side").cast(pl.Categorical))
    one = detect_counted(frame, accel="fast", **opts)
    many = detect_counted(_chunked(frame, cuts), accel="fast", **opts)
    assert_frame_equal(many.alerts, one.alerts)
    assert many.counters == one.counters
    assert many.skipped == one.skipped
    assert_frame_equal(many.rejected, one.rejected)
    assert wire(many.alert_values()) == wire(one.alert_values())
