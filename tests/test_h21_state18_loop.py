"""state18 (issue 14, aim 3): the price loop makes a key that is not hot hot by itself: it calls
``_Keys.warm`` only while some key is cold, stores a new key in the hot dict at the state its
first quote makes and calls ``_Keys.spill`` past the limit. That must leave the key state as
``_Keys.enter`` (warm, else add) leaves it: the same hot keys in the same order, the same tree
(the snapshot's order), limit, cold/filled/warmed counts, and the same states. And the loop's
"not crossed" tests (``continue`` instead of a flag) are ``not rules.crosses`` at the bound in
probability points too.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as ks
from dropengine import DropEngine, Quote
from dropengine.core.rules import THRESHOLD_EPSILON, crosses, prob_move
from tests.test_h14_state_store import enter_model, hot_keys

T0 = 1_747_000_000_000
_SIDES = ("h2h_home", "h2h_away", "total_over@210.5", "total_under@210.5")
_KEYS = [(f"e{e}", f"b{b}", s) for e in range(4) for b in range(3) for s in _SIDES]


def _model(quotes: list[Quote]) -> ks._Keys:
    """A key state driven by ``enter_model``, its states kept by a plain model of SPEC 3 with the
    default options (valid prices only, none at even money: the streams below have no other)."""
    keys = ks._Keys(ks._PRICE_CODEC)
    for q in quotes:
        key = (q.event_id, q.bookmaker, q.side)
        p, t = q.price, q.last_update
        st_ = keys.hot.get(key)
        if st_ is None:
            st_ = enter_model(keys, key, [p, t, t, p is None, p, t])
            if st_ is None:
                continue
        if t < st_[2]:
            continue
        st_[2] = t
        if p is None:
            st_[3] = True
            continue
        if st_[3]:  # the default reprimes after a suspension
            st_[3] = False
            st_[0] = st_[4] = p
            st_[1] = st_[5] = t
            continue
        if p != st_[0]:  # (no even-money prices here) a move: reference "last" keeps no anchor
            st_[0], st_[1] = p, t
    return keys


def _shape(keys: ks._Keys) -> tuple[Any, ...]:
    """Everything about the key state but its lists' identity, without filling the tree."""
    tree = [(e, b, [(s, v if type(v) is not list else ("hot", list(v))) for s, v in sides.items()])
            for e, books in keys.tree.items() for b, sides in books.items()]
    return (list(keys.hot.items()), tree, keys.cap, keys.ncold, keys.filled, keys.warmed, len(keys.spare))


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), limit=st.sampled_from((1, 2, 3, 5, 100)),
       spill=st.sampled_from((1, 2, 4)), grow=st.sampled_from((0, 1, 3, 2**30)),
       cuts=st.lists(st.integers(0, 120), max_size=3))
def test_the_loop_leaves_the_key_state_enter_leaves(seed: int, n: int, limit: int, spill: int, grow: int,
                                                      cuts: list[int]) -> None:
    r = random.Random(seed)
    pool = r.sample(_KEYS, r.randint(1, len(_KEYS)))
    quotes = [Quote("nba", *r.choice(pool), r.choice((-130, -120, -110, 105, 120, None)), T0 + r.randint(-2, 50) + i)
              for i in range(n)]
    with hot_keys(limit, spill, grow):
        eng = DropEngine()
        bounds = sorted({0, n, *(min(c, n) for c in cuts)})
        for lo, hi in itertools.pairwise(bounds):
            eng.observe_many(quotes[lo:hi])
        model = _model(quotes)
        assert _shape(eng._state) == _shape(model)
        assert len(eng._state.hot) <= max(eng._state.cap, 1)
        for k, v in eng._state.hot.items():  # a hot key's list is the tree's, once it has its place
            sides = eng._state.tree.get(k[0], {}).get(k[1], {})
            assert k not in sides or sides[k[2]] is v
        assert list(eng._state.items()) == list(model.items())  # (fills both: the snapshot's order)


def _at_floor(floor: float) -> list[float]:
    """Thresholds whose crossing bound (``rules.threshold_floor``) is ``floor`` exactly or one float
    either side of it."""
    out = []
    for t in (floor + THRESHOLD_EPSILON, math.nextafter(floor + THRESHOLD_EPSILON, math.inf),
              math.nextafter(floor + THRESHOLD_EPSILON, -math.inf)):
        for near in (math.nextafter(t, -math.inf), t, math.nextafter(t, math.inf)):
            out.append(near)
    return out


# price pairs whose move in probability points is exact: +100 is 0.5, -300 is 0.75, +300 is 0.25
_EXACT_PROB = [((100, -300), 25.0), ((-300, 100), 25.0), ((100, 300), 25.0), ((300, -300), 50.0)]


@pytest.mark.parametrize(("prices", "floor"), _EXACT_PROB)
def test_a_prob_move_at_the_threshold_fires_on_both_sides_as_rules_crosses(prices: tuple[int, int],
                                                                           floor: float) -> None:
    """The loop's "not crossed" test (``move < t and move > -t``) is ``not rules.crosses``, also for a
    move exactly at the bound, up or down (the cents bounds are pinned by test_h20_state17_bounds)."""
    a, b = prices
    move = prob_move(a, b)
    assert abs(move) == floor  # exact: these implied probabilities are binary fractions
    hits = 0
    for t in _at_floor(floor):
        for first, second in ((a, b), (b, a)):
            eng = DropEngine(threshold=t, unit="prob")
            got = eng.observe_many([Quote("nba", "e1", "b1", "h2h_home", first, T0),
                                    Quote("nba", "e1", "b1", "h2h_home", second, T0 + 1)])
            want = crosses(prob_move(first, second), t)
            assert len(got) == want, (t, first, second)
            hits += want
    assert 0 < hits < 2 * len(_at_floor(floor))  # some thresholds on each side of the bound


@pytest.mark.parametrize("limit", [2, 3, 4])
def test_reprimes_before_the_first_spill_do_not_bring_it_forward(limit: int) -> None:
    """A re-prime (rule 4 after a suspension) counts in n_primed but adds no hot key: the loop's bound
    on n_primed (``full_at``) then runs ahead of the hot set, and only the hot set itself decides a
    spill (break21's F1 on fc2e206: it spilled a hot set that was not over its limit)."""
    k = _KEYS
    quotes = [Quote("nba", *k[0], -110, T0), Quote("nba", *k[0], None, T0 + 1), Quote("nba", *k[0], -120, T0 + 2),
              Quote("nba", *k[0], None, T0 + 3), Quote("nba", *k[0], -130, T0 + 4)]
    quotes += [Quote("nba", *k[i], -110, T0 + 5 + i) for i in range(1, limit)]  # the hot set just full
    with hot_keys(limit, 1):
        eng = DropEngine()
        eng.observe_many(quotes)
        assert _shape(eng._state) == _shape(_model(quotes))
