"""The detection loop's steps for a key that is not hot (issue 14, aims 2-3: ``warm`` only while
some key is cold, else the key is new; a new key stored in the hot dict by the loop itself and
``spill`` past the limit) must leave the key state exactly as the model, ``warm`` then ``add``
(``enter_model``), does: the same states, the same tree order (the snapshot's), whatever is hot,
cold, removed, loaded or copied in between. (engine15 made this one call, ``_Keys.enter``;
state18 moved its steps into the loop, and ``enter`` into the tests as the model.)"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as ks
from dropengine import DropEngine, Quote
from tests.test_h14_state_store import enter_model, hot_keys

T0 = 1_747_000_000_000
_POOL = [(e, b, s) for e in ("e1", "e2", "e3") for b in ("b1", "b2") for s in ("s1", "s2", "s3")]
_states = st.one_of(
    # a first quote's state (the primed int cold form when it fits), or a suspended one
    st.tuples(st.sampled_from((-110, 150, (1 << 17) - 1, 100_000, -0.0, 100.0, None)),
              st.sampled_from((0, T0, 2**41, 2**63 - 1))).map(
        lambda pt: [pt[0], pt[1], pt[1], pt[0] is None, pt[0], pt[1]]),
    # a state that moved (packed bytes when cold)
    st.tuples(st.sampled_from((-110, 150, -120.5)), st.sampled_from((-110, -130)), st.integers(0, 2**63 - 1),
              st.integers(0, 2**33), st.booleans()).map(
        lambda v: [v[0], max(0, v[2] - v[3]), v[2], v[4], v[1], max(0, v[2] - 2 * v[3])]),
)
_ops = st.lists(st.one_of(
    st.tuples(st.just("quote"), st.integers(0, len(_POOL) - 1), st.booleans(), _states),
    st.tuples(st.just("remove"), st.sets(st.integers(0, len(_POOL) - 1), max_size=4)),
    st.tuples(st.just("load"), st.integers(0, len(_POOL) - 1), _states),
    st.tuples(st.just("cool"), st.integers(0, 5)),
    st.tuples(st.just("copy")),
), max_size=40)


def _quote(keys: ks._Keys, key: tuple[str, str, str], new: list[Any], by_loop: bool) -> list[Any] | None:
    """What is done with a key: its hot list, else (the loop's steps | the model)."""
    cur = keys.hot.get(key)
    if cur is not None:
        return cur
    if not by_loop:
        return enter_model(keys, key, new)
    if keys.ncold:
        cur = keys.warm(key)
    if cur is None:
        keys.hot[key] = new
        if len(keys.hot) > keys.cap:
            keys.spill()
    return cur


@settings(max_examples=80, deadline=None)
@given(ops=_ops, limit=st.sampled_from((1, 2, 4, 100)), spill=st.sampled_from((1, 3)),
       grow=st.sampled_from((0, 1, 2**30)))
def test_the_loops_steps_leave_the_state_warm_then_add_leaves(ops: list[tuple[Any, ...]], limit: int, spill: int,
                                                     grow: int) -> None:
    ref: dict[tuple[str, str, str], list[Any]] = {}
    with hot_keys(limit, spill, grow):
        a = ks._Keys(ks._PRICE_CODEC)  # driven by the loop's steps
        b = ks._Keys(ks._PRICE_CODEC)  # driven by the model: warm, then add
        for op in ops:
            if op[0] == "quote":
                k = _POOL[op[1]] if op[2] else tuple(list(_POOL[op[1]]))  # the same tuple object, or an equal one
                got_a = _quote(a, k, list(op[3]), True)  # type: ignore[arg-type]
                got_b = _quote(b, k, list(op[3]), False)  # type: ignore[arg-type]
                assert (got_a is None) == (got_b is None) == (_POOL[op[1]] not in ref)
                assert got_a == got_b
                if got_a is not None:
                    assert got_b is not None
                    got_a[:] = got_b[:] = op[3]  # the loop updates the list it was given
                ref[_POOL[op[1]]] = list(op[3])
            elif op[0] == "remove":
                gone = [_POOL[i] for i in op[1] if _POOL[i] in ref]
                a.remove(gone)
                b.remove(gone)
                for k in gone:
                    del ref[k]
            elif op[0] == "load":
                a.load(_POOL[op[1]], list(op[2]))
                b.load(_POOL[op[1]], list(op[2]))
                ref[_POOL[op[1]]] = list(op[2])
            elif op[0] == "cool":
                a.cool(min(op[1], max(0, len(a.hot) - 1)))
                b.cool(min(op[1], max(0, len(b.hot) - 1)))
            else:
                a, b = a.copy(), b.copy()
            assert len(a) == len(b) == len(ref)
            items_a, items_b = list(a.items()), list(b.items())
            assert items_a == items_b  # same keys, states and order (the snapshot's)
            assert [[type(x) for x in v] for _, v in items_a] == [[type(x) for x in v] for _, v in items_b]
            assert dict(items_a) == ref
            assert a.hot.keys() == b.hot.keys() and a.cap == b.cap
            for k, v in a.hot.items():  # a hot key's list is the tree's
                assert a.tree[k[0]][k[1]][k[2]] is v


def test_a_new_key_enters_as_its_first_quote_makes_it() -> None:
    """The state the loop passes to enter for a new key is the one it added before: primed at
    its price, or suspended (no price); the snapshot round trip holds."""
    eng = DropEngine()
    eng.observe_many([
        Quote("nba", "e1", "pin", "h2h_home", -110, T0),
        Quote("nba", "e1", "pin", "h2h_away", None, T0 + 1),
        Quote("nba", "e1", "pin", "h2h_home", -125, T0 + 2),
    ])
    assert eng._state.peek(("e1", "pin", "h2h_away")) == [None, T0 + 1, T0 + 1, True, None, T0 + 1]
    assert eng._state.peek(("e1", "pin", "h2h_home")) == [-125, T0 + 2, T0 + 2, False, -110, T0]
    c = eng.counters
    assert (c.primed, c.suspended, c.detected) == (1, 1, 1)
    assert DropEngine.restore(eng.snapshot()).snapshot() == eng.snapshot()
