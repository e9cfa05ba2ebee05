"""fix14c: B14C-3: a spill as large as the hot set (or larger) never packs the key ``warm()`` or
``add()`` is handing back (core.engine ``_Keys._spill``): whatever the hot limit and spill size,
the engine's alerts, counters, prices, key counts and snapshots are the all-hot engine's.

breaker14c's property (tests/test_h15_breaker14c_hotset.py) draws spills no larger than the
limit; this one draws any spill, larger ones included."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote

from .strategies import detect_options, signal_options, signal_streams_with_options, streams_with_options
from .test_h14_state_store import hot_keys
from .test_h15_breaker14c_hotset import _OPS, _run


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(streams_with_options(detect_options()), signal_streams_with_options(signal_options())),
       cuts=st.lists(st.integers(0, 30), max_size=4),
       ops=st.lists(st.sampled_from(_OPS), min_size=1, max_size=4),
       limits=st.tuples(st.sampled_from((1, 2, 3)), st.sampled_from((1, 2, 3, 5, 8)),
                        st.sampled_from((0, 1, 1 << 30))))
def test_any_spill_size_changes_nothing(case: tuple[list[Quote], dict[str, Any]], cuts: list[int],
                                        ops: list[str], limits: tuple[int, int, int]) -> None:
    quotes, opts = case
    want = _run(quotes, opts, cuts, ops)
    with hot_keys(*limits):
        got = _run(quotes, opts, cuts, ops)
    assert got == want
