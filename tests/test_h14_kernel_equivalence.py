"""Issue 14: the compiled batch kernel (``accel="fast"``, :mod:`dropengine.fast.kernel`) gives
exactly what the polars path (``accel="pure"``) and the stream engine give: the alerts table
(values, dtypes, column order), the alerts as values (byte for byte), the input rows of the
alerts, all sixteen counters, the skip counts and the rejected rows, for every option (reference
last and anchor, cents and prob, re-priming, types, cooldown, steam, filters, key numbers), on
the adversarial streams of tests/strategies.py (with line moves) and on hand-written edges."""

from __future__ import annotations

from typing import Any

import msgspec
import polars as pl
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal, assert_series_equal

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import BatchResult, detect_counted

from .conftest import require_fast
from .strategies import detect_options, signal_options, signal_streams_with_options, streams_with_options
from .test_h12_batch_equivalence import frame_of

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_ENC = msgspec.json.Encoder()


def same_result(a: BatchResult, b: BatchResult) -> None:
    """Two batch results are identical in everything a caller can see."""
    assert_frame_equal(a.alerts, b.alerts, check_dtypes=True, check_column_order=True, check_exact=True)
    assert a.counters == b.counters
    assert a.skipped == b.skipped
    assert_frame_equal(a.rejected, b.rejected, check_exact=True)
    assert_series_equal(a.rows, b.rows)
    assert_frame_equal(a.price_types, b.price_types)
    assert [_ENC.encode(x) for x in a.alert_values()] == [_ENC.encode(x) for x in b.alert_values()]
    assert [_ENC.encode(x) for x in a.drops()] == [_ENC.encode(x) for x in b.drops()]


def all_three(quotes: list[Quote], opts: dict[str, Any], frame: pl.DataFrame | None = None) -> BatchResult:
    """pure == fast == the stream engine on ``quotes`` (as ``frame``); the fast result."""
    require_fast()
    frame = frame_of(quotes) if frame is None else frame
    pure = detect_counted(frame, accel="pure", **opts)
    fast = detect_counted(frame, accel="fast", **opts)
    same_result(pure, fast)
    eng = DropEngine(**opts)
    alerts = eng.observe_many(quotes)
    assert [_ENC.encode(x) for x in fast.alert_values()] == [_ENC.encode(x) for x in alerts]
    assert fast.counters == eng.counters
    return fast


@_SETTINGS
@given(signal_streams_with_options(signal_options()))
def test_signals_pure_fast_stream(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Line moves, steam, cooldown, types, filters: pure == fast == DropEngine."""
    quotes, opts = case
    all_three(quotes, opts)


@_SETTINGS
@given(streams_with_options(detect_options()))
def test_prices_pure_fast_stream(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Price drops (the default types): every reference, unit, re-priming and filter."""
    quotes, opts = case
    all_three(quotes, opts)
