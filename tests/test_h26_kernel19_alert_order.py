"""Issue 14 (session 19, kernel19): ``fast.signals.alert_order`` writes the alerts' two columns in
one pass over the moves (no merge of concatenations and gathers after it).

- Compiled and interpreted, the order is the sort by (move, steam) with a move before the steam
  it completed (steam15's reference, here also with several steams completed by one move and
  with steams whose move is not returned), and the columns are int32 (every index fits).
- A steam's move out of order or beyond the moves (a routing defect: a RuntimeError, as
  ``json_arrays``' detector, not a ConfigError, which is a caller's option) is an error naming
  ``fire_move``, not a column with entries never written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import require_fast


@st.composite
def _routed(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    n = draw(st.integers(0, 50))
    returned = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
    fire = np.array(sorted(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n))) if n else [], dtype=np.int64)
    ok = np.array(draw(st.lists(st.booleans(), min_size=len(fire), max_size=len(fire))), dtype=np.bool_)
    return returned, fire, ok


@settings(max_examples=80, deadline=None)
@given(routed=_routed(), compiled=st.booleans())
def test_one_pass_is_the_sort_by_move_then_steam(routed: tuple[Any, Any, Any], compiled: bool) -> None:
    if compiled:
        require_fast()
    from dropengine.fast import signals

    returned, fire, ok = routed
    moves = np.flatnonzero(returned)
    which = np.flatnonzero(ok)
    at = np.concatenate((moves, fire[which])).astype(np.int64)
    steam = np.concatenate((np.full(len(moves), -1), which)).astype(np.int64)
    order = np.lexsort((steam, at))  # by move, the move (-1) before its steams, steams in firing order
    got_at, got_steam = signals.alert_order(returned, fire, ok, compiled=compiled)
    assert got_at.dtype == np.int32 and got_steam.dtype == np.int32
    assert got_at.tolist() == at[order].tolist()
    assert got_steam.tolist() == steam[order].tolist()


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("fire", [[2, 1], [0, 5]])
def test_a_steam_move_out_of_order_or_range_is_an_error(compiled: bool, fire: list[int]) -> None:
    if compiled:
        require_fast()
    from dropengine.fast import signals

    returned = np.ones(3, np.bool_)
    with pytest.raises(RuntimeError, match="fire_move"):
        signals.alert_order(returned, np.array(fire, np.int64), np.ones(2, np.bool_), compiled=compiled)
