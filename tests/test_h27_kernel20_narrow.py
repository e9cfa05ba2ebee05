"""Issue 14 (session 20, kernel20): the routing's per-move columns are int32 where they fit.

``signals.arrival_order`` writes the moves' order as int32 while every index fits, and
``signals.moves_in_order`` the moves' rows and books as int32 and their steam groups and
cooldown keys as int32 while every id fits (a second pass in int64 when one does not: a group is
``(event * n_outcomes + outcome) * 2 + favorite``, a line move's key ``n_keys + series``, either
may pass int32 with many keys or outcomes). ``signals.route`` reads int32 ids as they are and any
other ids as int64. Held here: the columns' values are the int64 computation's at and around the
int32 limit (``fast.MAX_ROWS``), their types are the narrow ones where every value fits, and the
routing of the same moves is the same with int32 ids, int64 ids, and group ids spread over int64,
compiled and interpreted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.options import DetectOptions

from .conftest import require_fast

_TOP = 2**31 - 1  # (fast.MAX_ROWS, int32's largest)

# (the interpreted routing's splitmix64 products wrap on purpose, as numba's do silently)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in scalar multiply:RuntimeWarning")


@st.composite
def _moves(draw: st.DrawFn) -> tuple[Any, ...]:
    """moves_in_order's arguments over a few rows, with key and outcome counts that put a move's
    cooldown key or group at, just below or beyond int32's largest value."""
    n_rows = draw(st.integers(1, 30))
    rows = st.lists(st.integers(0, n_rows - 1), unique=True, max_size=n_rows).map(sorted)
    # (the moves' rows as the kernel writes them, uint32, or int32 / int64: each taken as it is)
    kind = draw(st.sampled_from([np.uint32, np.int32, np.int64]))
    drop_rows, line_rows = (np.array(draw(rows), kind) for _ in range(2))
    sizes = st.floats(-30, 30, allow_nan=False)
    drop_size, line_size = (np.array([draw(sizes) for _ in r], np.float64) for r in (drop_rows, line_rows))
    drop_lu, line_lu = (np.array([draw(st.integers(0, 10**13)) for _ in r], np.int64) for r in (drop_rows, line_rows))
    n_sides = draw(st.integers(1, 4))
    # a line move's key is n_keys + its series: n_keys near the limit puts it either side of it
    n_keys = draw(st.one_of(st.integers(1, 9), st.integers(_TOP - 12, _TOP + 3)))
    # a group is (event * n_outcomes + outcome) * 2 + favorite: wide outcome counts pass the limit
    n_outcomes = draw(st.one_of(st.integers(1, 4), st.integers(2**29, 2**30 + 3)))
    per_row = st.lists(st.integers(0, 3), min_size=n_rows, max_size=n_rows).map(lambda v: np.array(v, np.int32))
    side = np.array(draw(st.lists(st.integers(0, n_sides - 1), min_size=n_rows, max_size=n_rows)), np.int32)
    over = np.array(draw(st.lists(st.booleans(), min_size=n_sides, max_size=n_sides)), np.bool_)
    outcome_of = np.array(draw(st.lists(st.integers(0, 3), min_size=n_sides, max_size=n_sides)), np.int64)
    event, kid, lid, book = (draw(per_row) for _ in range(4))
    return (
        drop_rows,
        line_rows,
        drop_size,
        line_size,
        drop_lu,
        line_lu,
        side,
        over,
        event,
        outcome_of,
        n_outcomes,
        kid,
        n_keys,
        lid,
        book,
    )


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=_moves())
def test_move_columns_are_int32_where_they_fit(args: tuple[Any, ...], compiled: bool) -> None:
    require_fast()
    from dropengine.fast import signals

    (
        drop_rows,
        line_rows,
        drop_size,
        line_size,
        drop_lu,
        line_lu,
        side,
        over,
        event,
        outcome_of,
        n_outcomes,
        kid,
        n_keys,
        lid,
        book,
    ) = args
    order = signals.arrival_order(drop_rows, line_rows, compiled=compiled)
    assert order.dtype == np.int32
    rows, is_line, size, group, cool, lu, got_book = signals.moves_in_order(order, *args, compiled=compiled)
    # the int64 computation (the numpy way of test_h19_steam16_books)
    at = np.concatenate((drop_rows, line_rows))[order]
    line = order >= len(drop_rows)
    sizes = np.concatenate((drop_size, line_size))[order]
    favorite = np.where(line, np.where(over[side[at]], sizes > 0, sizes < 0), sizes < 0)
    want_group = (event[at].astype(np.int64) * n_outcomes + outcome_of[side[at]]) * 2 + favorite
    want_cool = kid[at].astype(np.int64)
    want_cool[line] = n_keys + lid[at[line]].astype(np.int64)
    for got, want in (
        (rows, at),
        (is_line, line),
        (size, sizes),
        (group, want_group),
        (cool, want_cool),
        (lu, np.concatenate((drop_lu, line_lu))[order]),
        (got_book, book[at]),
    ):
        assert got.tolist() == want.tolist()
    assert rows.dtype == got_book.dtype == np.int32
    fits = all(int(a.max(initial=0)) <= _TOP for a in (want_group, want_cool))
    assert group.dtype == cool.dtype == (np.int32 if fits else np.int64)


@st.composite
def _routed(draw: st.DrawFn) -> tuple[Any, ...]:
    """Moves for the routing: few keys, groups and books, times close together (steams fire), and a
    way to spread the group ids over int64 (ids any int64 when n_groups is not given)."""
    n = draw(st.integers(0, 60))
    ints = lambda top: st.lists(st.integers(0, top), min_size=n, max_size=n)  # noqa: E731
    lu = np.cumsum(draw(ints(40_000))).astype(np.int64)
    if draw(st.booleans()):  # (out of order: a stale book's move replacing a newer one)
        lu = np.array(draw(st.permutations(lu.tolist())), np.int64)
    cool = np.array(draw(ints(5)), np.int64)
    group = np.array(draw(ints(3)), np.int64)
    book = np.array(draw(ints(4)), np.int64)
    size = np.array(draw(st.lists(st.floats(-40, 40, allow_nan=False), min_size=n, max_size=n)), np.float64)
    is_line = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), np.bool_)
    options = DetectOptions(
        types=("odds_drop", "line_move", "steam"),
        steam_books=draw(st.integers(1, 3)),
        cooldown_ms=draw(st.sampled_from([0, 30_000])),
        steam_window_ms=60_000,
    )
    return lu, cool, group, book, size, is_line, options


def _same(a: Any, b: Any) -> None:
    assert a.cooled == b.cooled
    for name in ("go", "fire_move", "fire_t", "member_start", "members"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves=_routed())
def test_routing_is_the_same_for_int32_and_wide_ids(moves: tuple[Any, ...], compiled: bool) -> None:
    require_fast()
    from dropengine.fast import signals

    lu, cool, group, book, size, is_line, options = moves
    names = ["a", "b", "c", "d", "e"]

    def routed(cool: Any, group: Any, book: Any, n_groups: int | None) -> Any:
        arrays = signals.MoveArrays(lu, cool, 6, is_line, size, group, book, names, n_groups)
        return signals.route(arrays, options, compiled=compiled)

    wide = routed(cool, group, book, 4)
    narrow = routed(*(a.astype(np.int32) for a in (cool, group, book)), 4)
    _same(wide, narrow)
    # group ids spread over int64 (not dense: the routing numbers them), beside int32 keys and books:
    # read as int64, never cut to int32 (ids 2**33 apart would all be one group)
    spread = group * (2**33) - 2**62
    _same(wide, routed(cool.astype(np.int32), spread, book.astype(np.int32), None))
    # int32 group ids not dense (numbered by the routing, then read as int32 again)
    _same(wide, routed(cool.astype(np.int32), (group * 1000 + 7).astype(np.int32), book.astype(np.int32), None))
