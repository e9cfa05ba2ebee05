"""Issue 14 (session 19, kernel19): the routing computes a move's (group, book) pair in its pass.

``signals.route`` no longer writes a per-move pair array (group * books + book, two 8M-entry int64
arrays at 10M quotes) while the product indexes its table: the slots pass computes it per move,
and the per-move slots are int32. Both ways to a pair's id, the product and the ids hashed dense
(a product range past ``signals._PAIR_TABLE``, forced here), compiled and interpreted, route the
adversarial moves of steam14's test exactly as :class:`~dropengine.core.steam.SignalRouter`:
the same alerts byte for byte, in order, and the same counters.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.fast import signals

from .conftest import require_fast
from .test_h14_steam_route import _SETTINGS, _same, moves_st, options_st

# the interpreted passes hash with uint64 products that wrap on purpose (splitmix64: signals._dense_ids_py);
# numpy warns per wrap where numba wraps silently
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in scalar multiply:RuntimeWarning")


@_SETTINGS
@given(st.data(), st.sampled_from(["product", "hashed"]))
def test_both_pair_ids_route_as_the_router(data: st.DataObject, pairs: str) -> None:
    require_fast()
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    with mock.patch.object(signals, "_PAIR_TABLE", signals._PAIR_TABLE if pairs == "product" else 0):
        _same(moves, options, compiled=True)


@settings(_SETTINGS, max_examples=25)
@given(st.data(), st.sampled_from(["product", "hashed"]))
def test_both_pair_ids_interpreted(data: st.DataObject, pairs: str) -> None:
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    with mock.patch.object(signals, "_PAIR_TABLE", signals._PAIR_TABLE if pairs == "product" else 0):
        _same(moves, options, compiled=False)
