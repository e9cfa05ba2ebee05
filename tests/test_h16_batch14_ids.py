"""Issue 14 (session 9): the compiled path's encodings, on every branch they take.

- ``kernel.key_ids``: its exact ids on every branch are pinned by tests/test_h22_sig15_key_ids.py
  (this file's weaker one-id-per-triple property was folded into it, with its shapes);
- ``kernel.codes`` reads a Categorical's UInt32 physical codes as they are (a null is
  ``NO_CODE``);
- ``signals.route`` keeps a group's books in consecutive slots found through (group, book) pair
  ids: the product of the ids while small, hashed dense ids beyond ``_PAIR_TABLE``; the hashed
  branch is the router too (tests/test_h14_steam_route.py covers the product branch).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.fast import signals

from .conftest import require_fast
from .test_h14_steam_route import by_pass, by_router, moves_st, options_st, wire


@settings(deadline=None)  # (the first call loads the compiled kernel)
@given(st.lists(st.one_of(st.none(), st.integers(0, 50)), max_size=80))
def test_codes_of_physical_codes_with_nulls(values: list[int | None]) -> None:
    """Dense codes in order of first appearance, -1 for a null (NO_CODE), from uint32 codes."""
    require_fast()
    from dropengine.fast import kernel

    physical = np.array([kernel.NO_CODE if v is None else v for v in values], np.uint32)
    stop = max((v for v in values if v is not None), default=-1) + 1
    got, k, first = kernel.codes(physical, stop)
    order: dict[int, int] = {}
    for v in values:
        if v is not None:
            order.setdefault(v, len(order))
    assert got.tolist() == [-1 if v is None else order[v] for v in values]
    assert k == len(order)
    assert [values[i] for i in first.tolist()] == list(order)


_ROUTE = settings(max_examples=50, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the interpreted hash wraps
@_ROUTE
@given(st.data())
def test_route_with_hashed_book_pairs_is_the_router(data: st.DataObject) -> None:
    """Beyond ``_PAIR_TABLE`` combinations the (group, book) pairs get hashed dense ids: the
    same steams, returned alerts and counters as the stream engine's router, compiled and
    interpreted."""
    require_fast()
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    want, cooled, steams = by_router(moves, options)
    table = signals._PAIR_TABLE
    signals._PAIR_TABLE = 0  # every pair hashed
    try:
        for compiled in (True, False):
            out, c, s = by_pass(moves, options, compiled=compiled)
            assert (wire(out), c, s) == (wire(want), cooled, steams)
    finally:
        signals._PAIR_TABLE = table
