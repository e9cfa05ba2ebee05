"""Issue 14 (session 9): the compiled path's encodings, on every branch they take.

- ``kernel.key_ids`` pairs (event, side) before the book now (10M quotes of 1,480 events, 8 books
  and 682 sides: 8M combinations hashed before, 2.4M through a lookup table now): one id per
  distinct triple on each of its branches (direct arithmetic, lookup tables, hashing);
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


def _check_ids(a: np.ndarray, b: np.ndarray, c: np.ndarray, na: int, nb: int, nc: int) -> None:
    from dropengine.fast import kernel

    ids, bound = kernel.key_ids(a, b, c, na, nb, nc)
    seen: dict[tuple[int, int, int], int] = {}
    for x, y, z, i in zip(a.tolist(), b.tolist(), c.tolist(), ids.tolist(), strict=True):
        if z < 0:
            assert i == -1
            continue
        assert seen.setdefault((x, y, z), i) == i
        assert 0 <= i < bound
    assert len(set(seen.values())) == len(seen)


# (na, nb, nc): direct arithmetic; (a, c) pairs looked up then direct; looked up twice; the
# pairs times the books hashed; the pairs themselves hashed
SHAPES = [(10, 5, 7), (400, 3, 300), (2000, 40, 50), (300, 2000, 5000), (3000, 4, 3000)]


@pytest.mark.parametrize(("na", "nb", "nc"), SHAPES)
def test_key_ids_one_id_per_triple_on_every_branch(na: int, nb: int, nc: int) -> None:
    require_fast()
    rng = np.random.default_rng(na + nb + nc)
    n = 6000
    a, b, c = rng.integers(0, na, n), rng.integers(0, nb, n), rng.integers(-1, nc, n)
    a[:2], b[:2], c[:2] = na - 1, nb - 1, nc - 1  # the largest codes present
    _check_ids(a, b, c, na, nb, nc)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SHAPES), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                                                   st.integers(-1, 10**6)), min_size=1, max_size=200))
def test_key_ids_property(shape: tuple[int, int, int], raw: list[tuple[int, int, int]]) -> None:
    """Repeated triples, nulls (c = -1) and codes at the ends of their ranges, on each branch."""
    require_fast()
    na, nb, nc = shape
    a = np.array([x % na for x, _, _ in raw], np.int64)
    b = np.array([y % nb for _, y, _ in raw], np.int64)
    c = np.array([z % nc if z >= 0 else -1 for _, _, z in raw], np.int64)
    _check_ids(np.concatenate((a, a)), np.concatenate((b, b)), np.concatenate((c, c)), na, nb, nc)


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
