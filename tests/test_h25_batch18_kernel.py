"""Issue 14 (session 18, batch18): the compiled pass reads times and prices chunk by chunk and
writes its moves' values itself; row ids and codes are int32.

- ``kernel.detect_pass`` over ``lu`` and ``price`` cut into chunks (any cuts, each column its own,
  empty chunks too) finds what ``kernel.run`` finds over whole columns, and the values it writes
  per move are the gathers at the rows it names: a move's time and price, its reference's (the
  price pass); a line move's new line, key, time, price (NaN: null), its reference's time and the
  price riding on the reference line (NaN: none, or a null price there). Without ``price_values``
  the price moves are the same rows and no value is written.
- Move rows are uint32 (polars' row index type), ids and codes int32 (``kernel.ids``,
  ``kernel.codes``); a wider id or code that does not fit int32 is a ConfigError naming it, not a
  silent wrap. With the line moves' values the reference rows are not written (their times and
  prices are).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError

from .conftest import require_fast


def _cut(a: Any, cuts: list[int]) -> list[Any]:
    """``a`` in chunks at the (sorted, clipped) positions ``cuts``; an empty chunk where two repeat."""
    at = sorted(min(c, len(a)) for c in cuts)
    return [a[lo:hi] for lo, hi in zip([0, *at], [*at, len(a)], strict=True)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 160),
    sides=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    cuts_lu=st.lists(st.integers(0, 160), max_size=6),
    cuts_p=st.lists(st.integers(0, 160), max_size=6),
    reprime=st.booleans(),
    anchor=st.booleans(),
    prob=st.booleans(),
    by_key=st.booleans(),
    thr=st.sampled_from([5.0, 10.0]),
    line_thr=st.sampled_from([0.5, 1.0]),
)
def test_chunked_pass_writes_the_gathers(
    n: int,
    sides: int,
    seed: int,
    cuts_lu: list[int],
    cuts_p: list[int],
    reprime: bool,
    anchor: bool,
    prob: bool,
    by_key: bool,
    thr: float,
    line_thr: float,
) -> None:
    require_fast()
    from dropengine.fast import kernel

    rng = np.random.default_rng(seed)
    kid = rng.integers(0, sides, n).astype(np.int32)
    lid = np.where(rng.random(n) < 0.2, -1, kid // 2 + (sides // 2 + 1) * rng.integers(0, 3, n)).astype(np.int32)
    nseries = 3 * (sides // 2 + 1)
    lu = (np.sort(rng.integers(0, 40, n)) - np.where(rng.random(n) < 0.1, rng.integers(1, 9, n), 0)).astype(np.int64)
    price = rng.choice([-130.0, -120.0, -110.0, -105.0, 100.0, 105.0, 110.0, 125.0, 150.0], n)
    null = rng.random(n) < 0.15
    price[null] = rng.choice([7.0, np.nan, -3.0], int(null.sum()))  # (any value where null)
    invalid = rng.random(n) < 0.05
    line_only = rng.random(n) < 0.15
    per_side = rng.choice([-3.5, -3.0, -2.5, -1.0, 44.5, 45.0], sides)
    line = per_side if by_key else rng.choice([-3.5, -3.0, -2.5, -1.0, 44.5, 45.0], n)
    common = (null, invalid, line_only, line, reprime, anchor, prob, thr, line_thr, by_key)

    want = kernel.run(kid, sides, lid, nseries, lu, price, *common)
    got = kernel.detect_pass(
        kid, sides, lid, nseries, _cut(lu, cuts_lu), _cut(price, cuts_p), *common, price_values=True, line_values=True
    )
    moves, refs, lmoves, lrefs, lprices, counts, ref_lu, ref_price, lref_line = want
    for a, b in (
        (got.moves, moves),
        (got.refs, refs),
        (got.ref_lu, ref_lu),
        (got.ref_price, ref_price),
        (got.lmoves, lmoves),
        (got.lprices, lprices),
        (got.lref_line, lref_line),
        (got.counts, counts),
    ):
        np.testing.assert_array_equal(a, b)
    # the values are the gathers at the rows the pass names
    np.testing.assert_array_equal(got.move_lu, lu[moves])
    np.testing.assert_array_equal(got.move_price, price[moves])
    np.testing.assert_array_equal(got.lnew, line[kid[lmoves]] if by_key else line[lmoves])
    np.testing.assert_array_equal(got.lkey, kid[lmoves])
    np.testing.assert_array_equal(got.lmove_lu, lu[lmoves])
    np.testing.assert_array_equal(got.lmove_price, np.where(null[lmoves], np.nan, price[lmoves]))
    np.testing.assert_array_equal(got.lref_lu, lu[lrefs])
    at = np.maximum(lprices, 0)
    np.testing.assert_array_equal(got.lref_price, np.where((lprices < 0) | null[at], np.nan, price[at]))
    # (rows as polars' row indices are; the rest int32; with the line moves' values, their
    # reference rows are not written: their time and price are)
    assert got.moves.dtype == got.lmoves.dtype == np.uint32
    assert got.refs.dtype == got.lprices.dtype == got.lkey.dtype == np.int32
    assert len(got.lrefs) == 0

    bare = kernel.detect_pass(
        kid, sides, lid, nseries, _cut(lu, cuts_lu), _cut(price, cuts_p), *common, price_values=False
    )
    np.testing.assert_array_equal(bare.moves, moves)
    np.testing.assert_array_equal(bare.lrefs, lrefs)
    np.testing.assert_array_equal(bare.counts, counts)
    assert all(
        len(a) == 0
        for a in (
            bare.refs,
            bare.ref_lu,
            bare.ref_price,
            bare.move_lu,
            bare.move_price,
            bare.lnew,
            bare.lkey,
            bare.lmove_lu,
            bare.lmove_price,
            bare.lref_lu,
            bare.lref_price,
        )
    )


def test_chunks_of_another_length_are_refused() -> None:
    require_fast()
    from dropengine.fast import kernel

    z = np.zeros(3, np.int32)
    f = np.zeros(3, np.bool_)
    with pytest.raises(ConfigError, match="lengths"):
        kernel.detect_pass(
            z, 1, z, 0, [np.zeros(2, np.int64)], [np.zeros(3)], f, f, f, np.zeros(1), True, False, False, 10.0, 0.5
        )


@settings(max_examples=60, deadline=None)
@given(codes=st.lists(st.integers(0, 9), min_size=1, max_size=50), n_b=st.integers(1, 4))
def test_ids_and_codes_are_int32(codes: list[int], n_b: int) -> None:
    """The ids of int32 and of int64 codes are one array of int32 (the batch path's codes are int32)."""
    require_fast()
    from dropengine.fast import kernel

    a = np.array(codes, np.int64)
    b = a % n_b
    dense, _, _ = kernel.codes([a[: len(a) // 2].astype(np.uint32), a[len(a) // 2 :].astype(np.uint32)], 10)
    assert dense.dtype == np.int32
    wide, nw = kernel.ids(a, b, a, 10, n_b, 10)
    narrow, nn = kernel.ids(a.astype(np.int32), b.astype(np.int32), a.astype(np.int32), 10, n_b, 10)
    assert wide.dtype == narrow.dtype == np.int32 and nw == nn
    np.testing.assert_array_equal(wide, narrow)


def test_wide_values_beyond_int32_are_refused() -> None:
    require_fast()
    from dropengine.fast import kernel

    big = np.array([0, 2**31], np.int64)
    with pytest.raises(ConfigError, match="ids"):
        kernel.ids(big, np.zeros(2, np.int64), np.zeros(2, np.int64), 2**32, 1, 1)
    f = np.zeros(2, np.bool_)
    with pytest.raises(ConfigError, match="kid"):
        kernel.run(
            big, 2, big, 0, np.zeros(2, np.int64), np.zeros(2), f, f, f, np.zeros(1), True, False, False, 10.0, 0.5
        )


def test_line_values_need_kid_per_row() -> None:
    """With the line moves' values the pass writes each move's key from ``kid`` at its row, also for
    the line series alone (infinite ``thr``) not by key: a ``kid`` of another length is refused
    (review25's R25-1: it was read past its end)."""
    require_fast()
    import math

    from dropengine.fast import kernel

    n = 8
    lid = (np.arange(n) % 2).astype(np.int32)
    f = np.zeros(n, np.bool_)
    args = ([np.arange(n, dtype=np.int64)], [np.full(n, 100.0)], f, f, f, np.where(np.arange(n) % 4 < 2, 1.5, 2.5))
    with pytest.raises(ConfigError, match="lengths"):
        kernel.detect_pass(np.zeros(1, np.int32), 1, lid, 2, *args, True, False, False, math.inf, 0.5,
                           line_values=True)  # fmt: skip
    kid = (np.arange(n) % 3).astype(np.int32)
    m = kernel.detect_pass(kid, 3, lid, 2, *args, True, False, False, math.inf, 0.5, line_values=True)
    assert len(m.lmoves) > 0
    np.testing.assert_array_equal(m.lkey, kid[m.lmoves.astype(np.int64)])
