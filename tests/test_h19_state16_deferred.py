"""state16 (issue 14, aim 3): a new key lives in the hot dict alone and takes its place in the key
tree (the snapshot's order) only when it goes cold or before anything reads, removes or loads
(``_Keys._fill``); while no key is cold, a key that is not hot is new without a look at the tree
(``_Keys.ncold``), and the price loop stores it in the hot dict itself while the hot set has room.
It must hold the states and the order a plain model holds:
a dict of states and a nested dict event -> bookmaker -> side whose order is the insertion order
of keys (a new key at the end of its bookmaker's, its bookmaker's at the end of its event's...),
whatever is hot, cold, new, removed, loaded or copied in between."""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as ks
from dropengine import DropEngine, Quote
from tests.test_h14_state_store import enter_model, hot_keys

T0 = 1_747_000_000_000
_Key = tuple[str, str, str]
_POOL: list[_Key] = [(e, b, s) for e in ("e1", "e2", "e3") for b in ("b1", "b2") for s in ("s1", "s2")]
_PRICES = (-110, 150, 100_000, -0.0, 100.0, -120.5, None)
_TIMES = (0, T0, 2**41, 2**63 - 1)


def _state(r: random.Random) -> list[Any]:
    """A first quote's state (the primed int cold form when it fits; suspended without a price),
    or one that moved (packed bytes when cold)."""
    if r.random() < 0.5:
        p, t = r.choice(_PRICES), r.choice(_TIMES)
        return [p, t, t, p is None, p, t]
    p, a, t, d = r.choice(_PRICES[:3]), r.choice((-110, -130)), r.randint(0, 2**62), r.randint(0, 2**33)
    return [p, max(0, t - d), t, r.random() < 0.3, a, max(0, t - 2 * d)]


def _random_ops(r: random.Random) -> list[tuple[Any, ...]]:
    """Mostly quotes (new keys wait in the hot dict across the other operations), then removes, loads,
    cools, copies and reads in any order."""
    ops: list[tuple[Any, ...]] = []
    for _ in range(r.randint(1, 80)):
        kind = r.choice(("quote",) * 6 + ("remove", "load", "cool", "copy", "read"))
        i = r.randrange(len(_POOL))
        if kind == "quote":
            ops.append(("quote", i, r.random() < 0.5, r.choice(("enter", "loop", "warm")), _state(r)))
        elif kind == "remove":
            ops.append(("remove", {r.randrange(len(_POOL)) for _ in range(r.randint(1, 4))}))
        elif kind == "load":
            ops.append(("load", i, _state(r)))
        elif kind == "cool":
            ops.append(("cool", r.randint(0, 5)))
        elif kind == "copy":
            ops.append(("copy",))
        else:
            ops.append(("read", r.choice(("items", "iter", "newest", "eq"))))
    return ops


def _model_insert(order: dict[str, dict[str, dict[str, None]]], k: _Key) -> None:
    order.setdefault(k[0], {}).setdefault(k[1], {}).setdefault(k[2], None)


def _model_order(order: dict[str, dict[str, dict[str, None]]]) -> list[_Key]:
    return [(e, b, s) for e, books in order.items() for b, sides in books.items() for s in sides]


def _check_without_reading(keys: ks._Keys, ref: dict[_Key, list[Any]], arrived: dict[_Key, int]) -> None:
    """What must hold between reads, checked without filling the tree: the same states (peek,
    newest_of), every key once in the tree or waiting in the hot dict (hot, not in the tree:
    ``len(hot) - filled`` of them) in arrival order, a hot key's list the tree's and no other
    key's, ``ncold`` the cold keys counted."""
    assert len(keys) == len(ref)
    for k in _POOL:
        got = keys.peek(k)
        assert got == ref.get(k) and [type(x) for x in got or ()] == [type(x) for x in ref.get(k, ())]
        assert keys.newest_of(k) == (None if k not in ref else ref[k][2])
    in_tree = {(e, b, s): v for e, books in keys.tree.items() for b, sides in books.items() for s, v in sides.items()}
    waiting = [k for k in keys.hot if k not in in_tree]
    assert len(keys.hot) - keys.filled == len(waiting)
    assert set(waiting) | in_tree.keys() == ref.keys()
    assert [arrived[k] for k in waiting] == sorted(arrived[k] for k in waiting)  # in arrival order
    for k, v in keys.hot.items():
        assert k in waiting or in_tree[k] is v
    # a spare list (a cooled key's, kept for a key warmed later) is empty and nobody's state
    held = {id(v) for v in keys.hot.values()}
    assert len(held) == len(keys.hot) and not any(id(v) in held for v in keys.spare) and not any(keys.spare)
    assert keys.ncold == sum(type(v) is not list for v in in_tree.values())


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), limit=st.sampled_from((1, 2, 4, 100)), spill=st.sampled_from((1, 3)),
       grow=st.sampled_from((0, 1, 2**30)))
def test_deferred_tree_holds_what_a_plain_model_holds(seed: int, limit: int, spill: int, grow: int) -> None:
    ops = _random_ops(random.Random(seed))
    ref: dict[_Key, list[Any]] = {}
    order: dict[str, dict[str, dict[str, None]]] = {}
    arrived: dict[_Key, int] = {}  # when each key last arrived new (a loaded key goes into the tree)
    clock = itertools.count()
    with hot_keys(limit, spill, grow):
        keys = ks._Keys(ks._PRICE_CODEC)
        for op in ops:
            if op[0] == "quote":
                _, i, same_object, how, state = op
                k = _POOL[i] if same_object else tuple(list(_POOL[i]))  # the same tuple object, or an equal one
                cur = keys.hot.get(k)  # type: ignore[arg-type]
                if cur is None:
                    if how == "loop":  # the price loop's steps (DropEngine._detect)
                        if keys.ncold:  # while no key is cold, a key that is not hot is new
                            cur = keys.warm(k)  # type: ignore[arg-type]
                        if cur is None:
                            keys.hot[k] = list(state)  # type: ignore[index]
                            if len(keys.hot) > keys.cap:
                                keys.spill()
                    elif how == "enter":
                        cur = enter_model(keys, k, list(state))  # type: ignore[arg-type]
                    else:  # the line series' step
                        cur = keys.warm(k)  # type: ignore[arg-type]
                        if cur is None:
                            keys.add(k, list(state))  # type: ignore[arg-type]
                assert (cur is None) == (_POOL[i] not in ref)
                if cur is not None:
                    assert cur == ref[_POOL[i]]
                    cur[:] = state  # the loop updates the list it was given
                else:
                    _model_insert(order, _POOL[i])
                    arrived[_POOL[i]] = next(clock)
                ref[_POOL[i]] = list(state)
            elif op[0] == "remove":
                gone = [_POOL[i] for i in op[1] if _POOL[i] in ref]
                keys.remove(gone)
                for e, b, s in gone:
                    del ref[(e, b, s)]
                    del order[e][b][s]
                    if not order[e][b]:
                        del order[e][b]
                        if not order[e]:
                            del order[e]
            elif op[0] == "load":
                assert keys.load(_POOL[op[1]], list(op[2])) == (_POOL[op[1]] not in ref)
                ref[_POOL[op[1]]] = list(op[2])
                _model_insert(order, _POOL[op[1]])
            elif op[0] == "cool":
                keys.cool(min(op[1], max(0, len(keys.hot) - 1)))
            elif op[0] == "copy":
                keys = keys.copy()
            else:  # a reader: the tree filled, in the model's order
                want = _model_order(order)
                if op[1] == "items":
                    got = list(keys.items())
                    assert got == [(k, ref[k]) for k in want]
                    assert [[type(x) for x in v] for _, v in got] == [[type(x) for x in ref[k]] for k in want]
                elif op[1] == "iter":
                    assert list(keys) == want
                elif op[1] == "newest":
                    assert list(keys.newest_items()) == [(k, ref[k][2]) for k in want]
                else:
                    other = ks._Keys(ks._PRICE_CODEC)
                    for k in want:
                        other.load(k, ref[k])
                    assert keys == other
                assert keys.filled == len(keys.hot)
            _check_without_reading(keys, ref, arrived)
        assert list(keys) == _model_order(order)


# sides with line series (SPEC 10) and without
_QUOTED: list[_Key] = [(e, b, s) for e in ("e1", "e2") for b in ("b1", "b2")
                       for s in ("h2h_home", "spread_home@-1.5", "spread_home@-2.5", "total_over@210.5")]


def _quotes(r: random.Random, n: int) -> list[Quote]:
    out = []
    t = T0
    for _ in range(n):
        t += r.choice((0, 1, 1000, -1000))
        e, b, s = r.choice(_QUOTED)
        price = r.choice((None, -110, -130, 150, 180, 100.5, 0, 250_000))
        out.append(Quote("nba", e, b, s, price, t, commence_time=r.choice((None, "2025-05-01T00:00:00Z"))))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), limit=st.sampled_from((1, 2, 3, 100)),
       opts=st.sampled_from(({}, {"reference": "anchor"}, {"types": ["odds_drop", "line_move", "steam"]})))
def test_an_engine_filling_late_equals_one_filling_at_once(seed: int, limit: int, opts: dict[str, Any]) -> None:
    """Two engines on the same batches, with snapshots, evictions, option changes and restores
    between: one whose key trees are filled after every call (as before state16: a new key in
    the tree on arrival), one left to fill when it must. Same alerts, counters, eviction counts,
    key order, prices and snapshot bytes; and the alerts, counters and key states (in order) of a
    third engine that is never restored or copied (a restored engine's keys are all cold while
    its hot set has room)."""
    r = random.Random(seed)
    with hot_keys(limit, 1, r.choice((0, 1 << 30))):
        lazy, eager, kept = DropEngine(**opts), DropEngine(**opts), DropEngine(**opts)
        for _ in range(r.randint(1, 8)):
            batch = _quotes(r, r.randint(0, 25))
            alerts = kept.observe_many(batch)
            assert lazy.observe_many(batch) == alerts
            assert eager.observe_many(batch) == alerts
            eager._state._fill()
            eager._lines._fill()
            assert eager._state.filled == len(eager._state.hot) and eager._lines.filled == len(eager._lines.hot)
            what = r.choice(("none", "none", "snapshot", "evict", "evict_iter", "restore", "with_options", "keys"))
            if what == "snapshot":
                assert lazy.snapshot() == eager.snapshot()
            elif what == "evict":
                bound, started = T0 + r.randint(-2000, 8000), r.choice((None, 1_746_100_000_000))
                dropped = kept.evict(bound, started_before_ms=started)
                assert lazy.evict(bound, started_before_ms=started) == dropped
                assert eager.evict(bound, started_before_ms=started) == dropped
            elif what == "evict_iter":
                bound = T0 + r.randint(-2000, 8000)
                steps = list(kept.evict_iter(bound, chunk=3))
                assert list(lazy.evict_iter(bound, chunk=3)) == list(eager.evict_iter(bound, chunk=3)) == steps
            elif what == "restore":
                lazy, eager = DropEngine.restore(lazy.snapshot()), DropEngine.restore(eager.snapshot())
            elif what == "with_options":
                lazy, eager = lazy.with_options(lazy.options)[0], eager.with_options(eager.options)[0]
            elif what == "keys":
                assert list(lazy._state) == list(eager._state) and lazy.keys_held == eager.keys_held
            assert lazy.counters == eager.counters == kept.counters
            assert [repr(lazy.price_of(*k)) for k in _QUOTED] == [repr(eager.price_of(*k)) for k in _QUOTED]
        assert lazy.snapshot() == eager.snapshot()
        # (not kept's snapshot bytes: with_options starts an empty steam tracker's sequence again)
        assert repr(list(lazy._state.items())) == repr(list(kept._state.items()))
        assert repr(list(lazy._lines.items())) == repr(list(kept._lines.items()))
        assert list(lazy._state) == list(eager._state) and list(lazy._lines) == list(eager._lines)
