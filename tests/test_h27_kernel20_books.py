"""Issue 14 (session 20, kernel20): ``kernel.json_arrays`` writes the books in one pass.

The text's size was counted by a first pass to size the block exactly; now the block is sized
from a bound (per object: each slot's piece and value at their widest, an int at most 20
characters) and one pass writes the text and its offsets, touching only the pages it writes.
Held here: at the bound's edge (every int the widest int64 there is, negative, in every slot, and
the pieces as wide as each other) the column is exactly the rendering, with no bound passed (a
bound one byte short per object is caught by the pass's guard: a RuntimeError, nothing written
out of the block), for one and many arrays and empty ones.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from .conftest import require_fast
from .test_h19_steam16_books import _rendered


@pytest.mark.parametrize("sizes", [[1], [3, 0, 2], [0], [50] * 40])
@pytest.mark.parametrize("n_fields", [0, 3])
@pytest.mark.parametrize("piece", ["", "x", "é" * 12, "k" * 21])
def test_the_widest_objects_fit_their_bound(sizes: list[int], n_fields: int, piece: str) -> None:
    require_fast()
    from dropengine.fast import kernel

    pieces = ["{" + piece, "," + piece, piece]
    n = sum(sizes)
    start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    opening = np.zeros(n, np.int64)
    kind = np.zeros(n, np.int64)
    keys = np.ones((1, n_fields), np.int64)
    number = np.full((n, n_fields + 1), -(2**63 - 1), np.int64)  # (20 characters: int64's widest)
    text = np.full((n, n_fields + 1), -1, np.int64)
    column = kernel.json_arrays("books", start, pieces, opening, kind, keys, number, text)
    assert column is not None
    assert pl.Series(column).to_list() == _rendered(start, pieces, opening, kind, keys, number, text)
