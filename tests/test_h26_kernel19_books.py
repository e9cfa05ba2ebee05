"""Issue 14 (session 19, kernel19): the books' text is copied 16 bytes at a time.

``kernel.json_arrays`` copies each piece of text in chunks of ``kernel._CHUNK`` bytes, the last
one running past the piece into spare bytes at the ends of its buffers: on pieces of every
length around the chunk (0 to 5 chunks and a byte, ASCII and multi-byte text), next to each
other and at the very end of the column, the column is exactly the pieces and ints joined (the
rendering steam16's test holds it to).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import require_fast
from .test_h19_steam16_books import _rendered

#: Pieces from empty to a few chunks long (16-byte chunks), one- and multi-byte characters.
_PIECE = st.one_of(
    st.integers(0, 81).map(lambda k: "".join(chr(ord("a") + i % 26) for i in range(k))),
    st.text(alphabet=st.sampled_from('é€"\\{}x'), max_size=30),
)


@st.composite
def _arrays(draw: st.DrawFn) -> tuple[Any, ...]:
    pieces = draw(st.lists(_PIECE, min_size=1, max_size=10))
    n_fields = draw(st.integers(0, 3))
    sizes = draw(st.lists(st.integers(0, 5), min_size=1, max_size=6))
    n = sum(sizes)
    piece = st.integers(0, len(pieces) - 1)
    keys = [[draw(piece) for _ in range(n_fields)] for _ in range(2)]
    opening = [draw(piece) for _ in range(n)]
    kind = [draw(st.integers(0, 1)) for _ in range(n)]
    number = [[draw(st.integers(-(10**18), 10**18)) for _ in range(n_fields + 1)] for _ in range(n)]
    text = [[draw(st.one_of(st.just(-1), piece)) for _ in range(n_fields + 1)] for _ in range(n)]
    start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    shape = (n, n_fields + 1)
    return (
        start,
        pieces,
        np.array(opening, np.int64),
        np.array(kind, np.int64),
        np.array(keys, np.int64).reshape(2, n_fields),
        np.array(number, np.int64).reshape(shape),
        np.array(text, np.int64).reshape(shape),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_arrays())
def test_chunked_copies_write_exactly_the_pieces(arrays: tuple[Any, ...]) -> None:
    require_fast()
    from dropengine.fast import kernel

    column = kernel.json_arrays("books", *arrays)
    assert column is not None
    got = pl.Series(column)
    assert got.to_list() == _rendered(*arrays)
