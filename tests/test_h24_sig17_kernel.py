"""Issue 14 (session 17, sig17): the line pass reads a row's series line through its key.

``kernel.run(..., line_by_key=True)`` takes ``line`` per key id (the line pass's keys are the
canonical sides, each with one series line) and reads ``line[kid[i]]`` for row ``i``: every output
(moves, references, counters, reference values) is the pass's with the per-row array
``line[kid]``, on adversarial rows (stale times, suspensions, invalid and line-only rows, rows
without a series, anchors); the price pass (``line_by_key`` default) is unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import require_fast


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 150),
    sides=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    reprime=st.booleans(),
    anchor=st.booleans(),
    line_thr=st.sampled_from([0.5, 1.0, 3.0]),
)
def test_line_by_key_is_the_per_row_line(
    n: int, sides: int, seed: int, reprime: bool, anchor: bool, line_thr: float
) -> None:
    require_fast()
    from dropengine.fast import kernel

    rng = np.random.default_rng(seed)
    sid = rng.integers(0, sides, n).astype(np.int64)
    # a series per (book, line side): several sides share one (a spread's lines move between sides)
    lid = np.where(rng.random(n) < 0.2, -1, sid // 2 + (sides // 2 + 1) * rng.integers(0, 3, n)).astype(np.int64)
    nseries = 3 * (sides // 2 + 1)
    lu = (np.sort(rng.integers(0, 60, n)) - np.where(rng.random(n) < 0.1, rng.integers(1, 10, n), 0)).astype(np.int64)
    price = rng.choice([-130.0, -110.0, 100.0, 120.0], n)
    null, invalid, line_only = rng.random(n) < 0.15, rng.random(n) < 0.05, rng.random(n) < 0.15
    per_side = np.append(rng.choice([-7.5, -3.5, -3.0, 0.0, 44.5, 47.0], sides), np.nan)
    common = (lu, price, null, invalid, line_only)
    rest = (reprime, anchor, False, math.inf, line_thr)
    want = kernel.run(sid, sides, lid, nseries, *common, per_side[sid], *rest)
    got = kernel.run(sid, sides, lid, nseries, *common, per_side, *rest, True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
