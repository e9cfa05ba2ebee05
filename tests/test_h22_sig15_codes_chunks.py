"""``kernel.codes`` of a Categorical's physical codes chunk by chunk (session 15, sig15: the batch
path reads a Parquet file's row groups where polars holds them, no copy into one array): the
same codes, count and first rows as the codes of the whole column in one array, wherever the
chunks are cut (empty chunks, nulls as ``NO_CODE``, codes past ``stop``)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import require_fast


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 30)), max_size=120),
    st.lists(st.integers(0, 120), max_size=6),
    st.integers(0, 32),
)
def test_codes_of_chunks_are_the_codes_of_the_column(values: list[int | None], cuts: list[int], stop: int) -> None:
    require_fast()
    from dropengine.fast import kernel

    whole = np.array([kernel.NO_CODE if v is None else v for v in values], np.uint32)
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    chunks = [whole[lo:hi] for lo, hi in itertools.pairwise(bounds)] or [whole]
    got = kernel.codes(chunks, stop)
    want = kernel.codes(whole, stop)
    assert got[0].tolist() == want[0].tolist()
    assert got[1] == want[1]
    assert got[2].tolist() == want[2].tolist()
    # and the model: first appearance of each code below stop, -1 otherwise
    seen: dict[int, int] = {}
    model = [seen.setdefault(v, len(seen)) if v is not None and v < stop else -1 for v in values]
    assert got[0].tolist() == model
    assert got[2].tolist() == [model.index(g) for g in range(len(seen))]
