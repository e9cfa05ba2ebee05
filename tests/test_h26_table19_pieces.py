"""Issue 14 (session 19, table19): the steams' books written in pieces, one after another per thread.

``batch._steam_table`` writes the books of a range of steams (a half when steam is the only type:
``_BOOKS_SPLIT``; else all of them) in pieces (``batch._pieces``) of at most ``batch._BOOKS_PIECE``
counted moves but where one steam alone has more, one after another (memory: one piece's working
arrays alive at a time: the steam-only 10M peak 2,431-2,491 -> 2,124-2,296 MiB), and joins them in
order. Pinned:

- ``_pieces`` on drawn steam sizes (skewed ones too): consecutive ranges covering every steam once,
  in order, each within the limit or a single steam;
- forced down to a few counted moves a piece (every steam its own piece at 1), the table is the
  pure path's and the stream engine's (test_h15_batch14_columnar's ``check``), and the pieces are
  taken: the compiled writer is called once per piece, within the same bound.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis import batch

from .test_h14_steam_batch import _by_hand, steam_options, steam_streams
from .test_h15_batch14_columnar import _SETTINGS, check


@given(st.lists(st.integers(1, 12), max_size=40), st.integers(1, 15), st.data())
@example([2, 2, 2, 2, 10, 2], 6, None)  # (review26's R26-4: an even cut by steams puts 12 moves in one piece)
@example([2, 5, 2], 5, None)
def test_pieces_cover_the_steams_within_the_limit(sizes: list[int], limit: int, data: st.DataObject | None) -> None:
    start = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
    n = len(sizes)
    lo, hi = (0, n) if data is None else sorted(data.draw(st.tuples(st.integers(0, n), st.integers(0, n))))
    got = batch._pieces(start, lo, hi, limit)
    if lo == hi:
        assert got == [(lo, hi)]
        return
    assert got[0][0] == lo and got[-1][1] == hi
    assert all(a < b for a, b in got)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(got))  # consecutive, in order
    for a, b in got:
        assert start[b] - start[a] <= limit or b == a + 1, (a, b)  # within the limit, or one steam
        # (as long as it may be: the next steam would not fit; none left behind for an empty piece)
        assert b == hi or start[b + 1] - start[a] > limit


def _spied(piece: int, quotes: list[Quote], opts: dict[str, Any]) -> tuple[Any, list[tuple[int, int]]]:
    """``check`` with the books in halves and pieces of ``piece`` counted moves; per call of the
    compiled writer, its steams and counted moves."""
    calls: list[tuple[int, int]] = []
    real = batch._books_compiled

    def spy(start: Any, index: Any, *args: Any) -> Any:
        calls.append((len(start) - 1, len(index)))
        return real(start, index, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_BOOKS_SPLIT", 1)
        mp.setattr(batch, "_BOOKS_PIECE", piece)
        mp.setattr(batch, "_books_compiled", spy)
        res = check(quotes, opts)
    return res, calls


@_SETTINGS
@given(steam_streams(), steam_options(), st.integers(1, 6))
def test_books_in_pieces_are_the_pure_paths(quotes: list[Quote], opts: dict[str, Any], piece: int) -> None:
    res, calls = _spied(piece, quotes, opts)
    assert sum(n for n, _ in calls) == res.counters.steam  # every steam once (order: check's tables)
    for steams, moves in calls:
        assert steams >= 1
        assert moves <= piece or steams == 1  # (one steam is never cut)


@pytest.mark.parametrize("types", ["steam", "odds_drop,steam", "line_move,steam"])
def test_steams_by_hand_one_piece_each(types: str) -> None:
    # the steams by hand, then again on two other events later: three steams at least, each with
    # two counted moves or more: with a piece of one move, every steam is a piece of its own
    quotes = _by_hand()
    more = [
        msgspec.structs.replace(q, event_id=f"{q.event_id}-{d}", last_update=q.last_update + d * 86_400_000)
        for d in (1, 2)
        for q in quotes
    ]
    res, calls = _spied(1, quotes + more, {"types": types, "cooldown_ms": 0, "steam_books": 2})
    assert res.counters.steam >= 3
    assert len(calls) == res.counters.steam  # the pieces are taken: the test can fail
    assert all(steams == 1 and moves >= 2 for steams, moves in calls)
