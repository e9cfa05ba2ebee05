"""review21's R21-2 (session 15, sig15): the kernel's open-addressing hash table is written once,
``kernel._group_rows``, and both its callers take their ids from it: ``group_rows`` (the line
moves' key-number groups: four values a row) and ``key_ids`` past its lookup tables (``_renumber``
with no lookup bound: one value a row, -1 none). Pinned for both: ids ``0..k-1`` in order of first
appearance (a dict model), the count, and (``group_rows``) each group's first row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import require_fast

VALUE = st.one_of(st.integers(-3, 3), st.sampled_from([-(2**63), 2**63 - 1, 2**40, -(2**40)]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(VALUE, VALUE, VALUE, VALUE), min_size=1, max_size=200))
def test_group_rows_numbers_groups_in_order_of_first_appearance(rows: list[tuple[int, int, int, int]]) -> None:
    require_fast()
    from dropengine.fast import kernel

    cols = [np.array([r[j] for r in rows], np.int64) for j in range(4)]
    ids, k, first = kernel.group_rows(*cols)
    seen: dict[tuple[int, int, int, int], int] = {}
    want = [seen.setdefault(r, len(seen)) for r in rows]
    assert ids.tolist() == want
    assert k == len(seen)
    assert first.tolist() == [want.index(g) for g in range(k)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.integers(-2, 40), st.integers(0, 2**62)), min_size=1, max_size=300))
def test_key_ids_hashed_ids_are_first_appearance_with_none_below_zero(values: list[int]) -> None:
    """``_renumber`` past the lookup tables (its bound -1): the ids key_ids hashes with."""
    require_fast()
    from dropengine.fast import kernel

    ids, k = kernel._renumber(np.array(values, np.int64), -1)
    seen: dict[int, int] = {}
    want = [seen.setdefault(v, len(seen)) if v >= 0 else -1 for v in values]
    assert ids.tolist() == want
    assert k == len(seen)


def test_key_ids_past_the_lookup_tables_on_many_rows() -> None:
    """key_ids itself on its hashed branch (pairs past LOOKUP_SLOTS), rows with no key among them."""
    require_fast()
    from dropengine.fast import kernel

    rng = np.random.default_rng(11)
    n = 50_000
    na, nb, nc = 5000, 3, 1000  # 5M pairs > LOOKUP_SLOTS
    a, b, c = rng.integers(0, na, n), rng.integers(0, nb, n), rng.integers(-1, nc, n)
    ids, bound = kernel.key_ids(a, b, c, na, nb, nc)
    pairs: dict[tuple[int, int], int] = {}
    pair = [pairs.setdefault((x, z), len(pairs)) if z >= 0 else -1 for x, z in zip(a.tolist(), c.tolist(), strict=True)]
    keys: dict[tuple[int, int], int] = {}
    want = [keys.setdefault((p, y), len(keys)) if p >= 0 else -1 for p, y in zip(pair, b.tolist(), strict=True)]
    assert ids.tolist() == want
    assert bound == len(keys)
