"""steam16 (issue 14): the steams' books written by one compiled pass (``fast.kernel.json_arrays``,
called by ``batch._books_compiled``) instead of polars' text columns.

- ``json_arrays`` writes exactly the pieces and ints it is given, joined as JSON arrays of
  objects (a Python rendering of the same layout, on drawn pieces: unicode, quotes, escapes,
  ints up to int64's ends, empty groups), and refuses an index out of range (it writes into a
  raw block: an index is never trusted);
- in ``detect``, the compiled books give the table the polars way gives (``_books_compiled``
  forced to decline), on steam streams with int and float numbers (prices with halves, moves in
  probability points), the compiled writer taken where it may be;
- the numbers it leaves to the polars way (a float zero, a value that is not finite, a null)
  are declined;
- ``signals.moves_in_order`` (the routing's move columns in one compiled pass) gives the numpy
  gathers it replaced.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis import batch

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of
from .test_h14_steam_batch import steam_options, steam_streams

_INT64 = st.integers(-(2**63) + 1, 2**63 - 1)


@st.composite
def _arrays(draw: st.DrawFn) -> tuple[Any, ...]:
    """Pieces, groups and per object its pieces and ints, all indices in range."""
    pieces = draw(st.lists(st.text(max_size=12), min_size=1, max_size=8))
    n_fields = draw(st.integers(0, 3))
    kinds = draw(st.integers(1, 2))
    sizes = draw(st.lists(st.integers(0, 4), max_size=6))
    n = sum(sizes)
    piece = st.integers(0, len(pieces) - 1)
    keys = [[draw(piece) for _ in range(n_fields)] for _ in range(kinds)]
    opening = [draw(piece) for _ in range(n)]
    kind = [draw(st.integers(0, kinds - 1)) for _ in range(n)]
    number = [[draw(_INT64) for _ in range(n_fields + 1)] for _ in range(n)]
    text = [[draw(st.one_of(st.just(-1), piece)) for _ in range(n_fields + 1)] for _ in range(n)]
    start = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).astype(np.int64)
    shape = (n, n_fields + 1)
    return (start, pieces, np.array(opening, np.int64), np.array(kind, np.int64),
            np.array(keys, np.int64).reshape(kinds, n_fields), np.array(number, np.int64).reshape(shape),
            np.array(text, np.int64).reshape(shape))


def _rendered(start: Any, pieces: list[str], opening: Any, kind: Any, keys: Any, number: Any, text: Any) -> list[str]:
    out = []
    for j in range(len(start) - 1):
        objects = []
        for i in range(start[j], start[j + 1]):
            parts = []
            for slot in range(keys.shape[1] + 1):
                parts.append(pieces[opening[i] if slot == 0 else keys[kind[i], slot - 1]])
                parts.append(pieces[text[i, slot]] if text[i, slot] >= 0 else str(int(number[i, slot])))
            objects.append("".join(parts) + "}")
        out.append("[" + ",".join(objects) + "]")
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_arrays())
def test_json_arrays_write_the_pieces_and_ints(arrays: tuple[Any, ...]) -> None:
    require_fast()
    from dropengine.fast import kernel

    got = pl.Series(kernel.json_arrays("books", *arrays))
    assert got.name == "books" and got.dtype == pl.String
    want = _rendered(*arrays)
    assert got.to_list() == want
    # the column outlives its inputs, and slices of it (polars' own references to the block) too
    tail = got.slice(len(want) // 2)
    del got, arrays
    assert tail.to_list() == want[len(want) // 2:]


def test_json_arrays_refuse_an_index_out_of_range() -> None:
    require_fast()
    from dropengine.fast import kernel

    ok = {"opening": np.zeros(1, np.int64), "kind": np.zeros(1, np.int64), "keys": np.zeros((1, 1), np.int64),
          "number": np.zeros((1, 2), np.int64), "text": np.full((1, 2), -1, np.int64)}
    assert pl.Series(kernel.json_arrays("b", np.array([0, 1]), ["{"], **ok)).to_list() == ["[{0{0}]"]
    for name, bad in (("opening", [1]), ("kind", [1]), ("keys", [[1]]), ("text", [[-1, 1]]), ("text", [[-2, -1]]),
                      ("number", [[-(2**63), 0]])):
        with pytest.raises(ValueError, match="json_arrays"):
            kernel.json_arrays("b", np.array([0, 1]), ["{"], **{**ok, name: np.array(bad, np.int64)})
    with pytest.raises(ValueError, match="json_arrays"):  # the groups past the objects
        kernel.json_arrays("b", np.array([0, 2]), ["{"], **ok)


def _halves(quotes: list[Quote], flip: bool) -> list[Quote]:
    """Every other priced quote's price a half cent off (floats among the ints), when ``flip``."""
    if not flip:
        return quotes
    return [msgspec.structs.replace(q, price=q.price + 0.5) if q.price is not None and k % 2 else q
            for k, q in enumerate(quotes)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steam_streams(), steam_options(), st.booleans(), st.booleans())
def test_compiled_books_are_the_polars_ways(quotes: list[Quote], opts: dict[str, Any], halves: bool,
                                            prob: bool) -> None:
    require_fast()
    quotes = _halves(quotes, halves)
    if prob:
        opts = {**{k: v for k, v in opts.items() if k != "steam_threshold"}, "unit": "prob", "threshold": 0.5}
    frame = frame_of(quotes)
    taken: list[bool] = []
    real = batch._books_compiled

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        taken.append(got is not None)
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_books_compiled", spy)
        fast = batch.detect_counted(frame, accel="fast", **opts)
        mp.setattr(batch, "_books_compiled", lambda *args, **kwargs: None)
        polars_way = batch.detect_counted(frame, accel="fast", **opts)
    assert_frame_equal(fast.alerts, polars_way.alerts, check_exact=True, check_dtypes=True)
    assert fast.counters == polars_way.counters
    # no number here is of a declined kind (no float zero: a move is at least its threshold): with
    # steams, the compiled writer wrote their books (the test can fail)
    assert taken == ([True] if fast.counters.steam else [])


@pytest.mark.parametrize("bad", [0.0, -0.0, float("nan"), float("inf"), None])
def test_numbers_left_to_the_polars_way(bad: float | None) -> None:
    require_fast()
    drops = pl.DataFrame({"_rpint": [True, False], "_pint": [True, True], "_rp": [-110.0, bad],
                          "_p": [-120.0, -115.0], "_d": [10.0, 5.0]}, schema_overrides={"_rp": pl.Float64})
    args = (np.array([0, 2]), np.array([0, 1]), 2, np.zeros(2, np.int64), np.zeros(2, np.int64),
            np.array([1, 2], np.int64), drops, None, ["book"], ["h2h_home"])
    assert batch._books_compiled(*args) is None
    fine = drops.with_columns(pl.Series("_rp", [-110.0, -105.5]))
    got = batch._books_compiled(*args[:6], fine, *args[7:])
    assert got is not None and got.to_list() == [
        '[{"bookmaker":"book","type":"odds_drop","side":"h2h_home","last_update":1,"prev":-110,"new":-120,"delta":10},'
        '{"bookmaker":"book","type":"odds_drop","side":"h2h_home","last_update":2,"prev":-105.5,"new":-115,'
        '"delta":5.0}]']


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_moves_in_order_is_the_numpy_gathers(data: st.DataObject) -> None:
    """``signals.moves_in_order`` (compiled and interpreted) == the numpy gathers it replaced in
    ``_with_signals_compiled``: sizes of both signs and zero, over and other sides, sparse rows."""
    require_fast()
    from dropengine.fast import signals

    n_rows = data.draw(st.integers(1, 40))
    rows = st.lists(st.integers(0, n_rows - 1), unique=True, max_size=n_rows).map(sorted)
    drop_rows, line_rows = (np.array(data.draw(rows), np.int64) for _ in range(2))
    sizes = st.floats(-30, 30, allow_nan=False)
    drop_size, line_size = (np.array([data.draw(sizes) for _ in r], np.float64) for r in (drop_rows, line_rows))
    drop_lu, line_lu = (np.array([data.draw(st.integers(0, 10**13)) for _ in r], np.int64)
                        for r in (drop_rows, line_rows))
    n_sides, n_outcomes, n_keys = (data.draw(st.integers(1, top)) for top in (5, 4, 9))
    per_row = st.lists(st.integers(0, 8), min_size=n_rows, max_size=n_rows).map(lambda v: np.array(v, np.int64))
    side = np.array(data.draw(st.lists(st.integers(0, n_sides - 1), min_size=n_rows, max_size=n_rows)), np.int64)
    over = np.array(data.draw(st.lists(st.booleans(), min_size=n_sides, max_size=n_sides)), np.bool_)
    outcome_of = np.array(data.draw(st.lists(st.integers(0, n_outcomes - 1), min_size=n_sides, max_size=n_sides)),
                          np.int64)
    event, kid, lid, book = (data.draw(per_row) for _ in range(4))
    order = signals.arrival_order(drop_rows, line_rows)
    args = (order, drop_rows, line_rows, drop_size, line_size, drop_lu, line_lu, side, over, event, outcome_of,
            n_outcomes, kid, n_keys, lid, book)
    # the numpy way (batch before steam16)
    at = np.concatenate((drop_rows, line_rows))[order]
    is_line = order >= len(drop_rows)
    size = np.concatenate((drop_size, line_size))[order]
    favorite = np.where(is_line, np.where(over[side[at]], size > 0, size < 0), size < 0)
    cool = kid[at]
    cool[is_line] = n_keys + lid[at[is_line]]
    want = (at, is_line, size, (event[at] * n_outcomes + outcome_of[side[at]]) * 2 + favorite, cool,
            np.concatenate((drop_lu, line_lu))[order], book[at])
    for compiled in (True, False):
        got = signals.moves_in_order(*args, compiled=compiled)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
