"""``kernel.detect_pass`` writes each move's reference values (session 15, sig15): per price move
its reference row's time and price, per line move its reference row's line, exactly the values
at the reference rows it returns (the batch path no longer gathers them by row). Random passes
over every rule's branch (stale rows, suspensions with and without re-priming, repeats, +100
against -100, invalid rows, line-only observations, reference last and anchor, cents and
probability): the three columns equal ``lu[refs]``, ``price[refs]`` and ``line[lrefs]``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import require_fast

ROW = st.tuples(
    st.integers(0, 3),  # price key
    st.integers(-1, 2),  # line series (-1: none)
    st.integers(-2, 3),  # time step (negative: a stale row)
    st.sampled_from([-250.0, -120.0, -100.0, 100.0, 105.0, 110.0, 120.0, 150.0, 261.9]),
    st.booleans(),  # null price (a suspension)
    st.integers(0, 9),  # 0: invalid
    st.integers(0, 5),  # 0: line-only observation
    st.sampled_from([-3.5, -3.0, 0.5, 1.0, 1.5, 44.5, 47.0]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(ROW, min_size=1, max_size=120),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.5, 5.0, 10.0]),
)
def test_reference_columns_are_the_values_at_the_reference_rows(
    rows: list[tuple[int, int, int, float, bool, int, int, float]],
    reprime: bool,
    anchor: bool,
    prob: bool,
    thr: float,
) -> None:
    require_fast()
    from dropengine.fast import kernel

    kid = np.array([r[0] for r in rows], np.int64)
    lid = np.array([r[1] for r in rows], np.int64)
    lu = np.cumsum([r[2] for r in rows]).astype(np.int64) + 1000
    price = np.array([r[3] for r in rows], np.float64)
    null = np.array([r[4] for r in rows], np.bool_)
    invalid = np.array([r[5] == 0 for r in rows], np.bool_)
    line_only = np.array([r[6] == 0 for r in rows], np.bool_)
    line = np.array([r[7] for r in rows], np.float64)
    out = kernel.run(
        kid,
        4,
        lid,
        3,
        lu,
        price,
        null,
        invalid,
        line_only,
        line,
        reprime,
        anchor,
        prob,
        thr / 100 if prob else thr,
        0.5,
    )
    moves, refs, lmoves, lrefs, _, _, ref_lu, ref_price, lref_line = out
    assert len(ref_lu) == len(ref_price) == len(moves)
    np.testing.assert_array_equal(ref_lu, lu[refs])
    np.testing.assert_array_equal(ref_price, price[refs])
    assert len(lref_line) == len(lmoves)
    np.testing.assert_array_equal(lref_line, line[lrefs])


def test_a_pass_with_moves_of_both_kinds() -> None:
    """Not vacuous: a fixed pass where price and line moves fire, with the anchor moving."""
    require_fast()
    from dropengine.fast import kernel

    n = 400
    rng = np.random.default_rng(3)
    kid = rng.integers(0, 5, n)
    lid = rng.integers(-1, 4, n)
    lu = np.cumsum(rng.integers(0, 3, n)).astype(np.int64)
    price = rng.choice([-150.0, -110.0, 100.0, 120.0, 140.0, 180.0], n)
    line = rng.choice([-3.5, -2.5, -1.0, 1.0, 2.5], n)
    z = np.zeros(n, np.bool_)
    for anchor in (False, True):
        out = kernel.run(kid, 5, lid, 4, lu, price, z, z, z, line, True, anchor, False, 10.0, 0.5)
        assert len(out[0]) > 20 and len(out[2]) > 20
        np.testing.assert_array_equal(out[6], lu[out[1]])
        np.testing.assert_array_equal(out[7], price[out[1]])
        np.testing.assert_array_equal(out[8], line[out[3]])
