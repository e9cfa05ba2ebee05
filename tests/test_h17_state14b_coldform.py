"""state14b (issue 14, aim 3): the primed cold form and the remembered miss of the stream engine's
key state (``core.engine._Codec.cold``, ``_Keys.warm``/``add``) change nothing a caller sees.

- A price state still as its first quote made it goes cold as one int (32 bytes for times before
  2039, against 59 for the packed bytes): the memory that buys the larger first hot limit.
- Every cold form reads back exactly (values keep their types, -0.0 its sign; the newest time),
  the primed int and the packed bytes alike, at the int form's edges (prices at +-2**17, floats
  equal to ints, a suspended first quote, far times).
- A key that ``warm`` found unknown is added where the tree holds it, even when the bookmaker's
  sides ``warm`` saw left the tree in between (an eviction), so no key is lost.
- Streams of keys primed once, quoted again after going cold: alerts, counters and snapshots are
  those of an engine whose hot set holds every key.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as engine_mod  # the key state (split from engine.py)
from dropengine import DropEngine, Quote
from tests.test_h14_state_store import hot_keys

T0 = 1_747_000_000_000
_OFF = 1 << 17

edge_prices = st.one_of(
    st.integers(-_OFF - 2, _OFF + 1),
    st.sampled_from((-_OFF - 1, -_OFF, _OFF - 1, _OFF, -100_000, 100_000, -100, 100, 0)),
    st.floats(allow_nan=False),
    st.sampled_from((-0.0, 0.0, 100.0, -110.0)),
    st.none(),
)
edge_times = st.one_of(st.integers(0, 2**63 - 1), st.sampled_from((0, 1, T0, 2**41 - 1, 2**41, 2**63 - 1)))


def _same(a: list[Any], b: list[Any]) -> bool:
    return [type(v) for v in a] == [type(v) for v in b] and all(
        x == y and (not isinstance(x, float) or math.copysign(1, x) == math.copysign(1, y))
        for x, y in zip(a, b, strict=True))


@settings(max_examples=60, deadline=None)
@given(price=edge_prices, t=edge_times, other=st.one_of(st.none(), edge_prices), dt=st.sampled_from((0, 0, 1, -1)),
       susp=st.booleans(), primed=st.booleans())
def test_every_cold_form_reads_back_exactly(price: Any, t: int, other: Any, dt: int, susp: bool,
                                            primed: bool) -> None:
    codec = engine_mod._PRICE_CODEC
    # a time the snapshot format holds (int64): t = 2**63 - 1 with dt = 1 is no state (break17b B17b-1)
    since = min(max(0, t + dt), 2**63 - 1)
    # a primed shape ([p, t, t, False, p, t]) half the time, and its near misses otherwise
    state = [price, t, t, False, price, t] if primed else [price, since, t, susp, other, t]
    cold = codec.cold(state)
    assert _same(codec.unpack(cold), state)
    assert codec.newest(cold) == t
    is_primed = (type(price) is int and -_OFF <= price < _OFF and state[1:4] == [t, t, False]
                 and type(state[4]) is int and state[4] == price)
    assert type(cold) is (int if is_primed else bytes)
    if type(cold) is bytes:
        assert cold == codec.pack(state)  # the packed form is the one it was
    line = [price, since, t, susp, other, t, other, price]  # the line codec has no int form
    assert engine_mod._LINE_CODEC.cold(line) == engine_mod._LINE_CODEC.pack(line)


def test_keys_quoted_once_go_cold_as_32_byte_ints() -> None:
    quotes = [Quote("basketball_nba", f"ev{i // 10}", f"book{i % 10 // 5}", f"win:{i % 5}", -110 - i, T0 + i)
              for i in range(200)]
    with hot_keys(8, 4):
        eng = DropEngine()
        eng.observe_many(quotes)
        cold = [v for books in eng._state.tree.values() for sides in books.values() for v in sides.values()
                if type(v) is not list]
        assert len(cold) >= 190
        assert all(type(v) is int and sys.getsizeof(v) <= 32 for v in cold)
        back = DropEngine.restore(eng.snapshot())  # a restored engine holds every key in that form
        held = [v for books in back._state.tree.values() for sides in books.values() for v in sides.values()]
        assert len(held) == 200 and all(type(v) is int for v in held)
        assert back.snapshot() == eng.snapshot()


def test_a_key_warm_found_unknown_is_added_to_the_tree_even_after_an_eviction() -> None:
    keys = engine_mod._Keys(engine_mod._PRICE_CODEC)
    keys.add(("ev1", "pin", "h2h_home"), [-110, T0, T0, False, -110, T0])
    new = ("ev1", "pin", "h2h_away")
    assert keys.warm(new) is None  # unknown: its bookmaker's sides are remembered for add
    keys.remove([("ev1", "pin", "h2h_home")])  # those sides (and the event) leave the tree
    keys.add(new, [-120, T0, T0, False, -120, T0])
    assert list(keys) == [new] and len(keys) == 1
    assert keys.peek(new) == [-120, T0, T0, False, -120, T0]


@settings(max_examples=30, deadline=None)
@given(n_keys=st.integers(1, 40), rounds=st.integers(1, 4), limit=st.sampled_from((1, 2, 3, 8)),
       spill=st.sampled_from((1, 2, 5)), moves=st.lists(st.integers(-30, 30), min_size=1, max_size=50),
       suspend=st.sets(st.integers(0, 200), max_size=5))
def test_wide_streams_of_primed_keys_change_nothing(n_keys: int, rounds: int, limit: int, spill: int,
                                                    moves: list[int], suspend: set[int]) -> None:
    quotes = []
    for i in range(n_keys * rounds):
        k = i % n_keys if i < n_keys else (i * 7919) % n_keys  # primed in order, then scattered
        price = None if i in suspend else -110 - moves[i % len(moves)] * (i >= n_keys)
        quotes.append(Quote("basketball_nba", f"ev{k % 3}", f"b{k % 2}", f"win:{k}", price, T0 + i))
    want = DropEngine(threshold=10)
    want_alerts = want.observe_many(quotes)
    with hot_keys(limit, spill):
        got = DropEngine(threshold=10)
        alerts = got.observe_many(quotes[: len(quotes) // 2])
        got = DropEngine.restore(got.snapshot())
        alerts += got.observe_many(quotes[len(quotes) // 2:])
    assert alerts == want_alerts
    assert got.counters == want.counters and got.snapshot() == want.snapshot()
