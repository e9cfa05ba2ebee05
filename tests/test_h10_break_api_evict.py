"""Issue 10 (api-breaker): ``DropEngine.evict_iter``, eviction in steps for the server.

At 2M keys one ``evict()`` holds ingestion for seconds; ``evict_iter`` lets a caller run quotes
between steps. What must hold: a key is judged when its step runs (a key refreshed since the
key list was copied stays), keys created since the copy are not looked at, and without
interleaved quotes the result is exactly ``evict()``'s.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import ConfigError, DropEngine, Quote

T0 = 1_747_000_000_000
COMMENCE = {"e0": "2025-05-11T22:00:00Z", "e1": "2025-05-12T22:00:00Z", "e2": None, "e3": "garbled"}
START_MS = {"e0": 1_747_000_800_000, "e1": 1_747_087_200_000}
SIDES = ("h2h_home", "h2h_away", "total_over@210.5")
BOOKS = ("pin", "dk")

quotes_st = st.lists(
    st.builds(
        lambda e, b, s, p, dt: Quote("nba", e, b, s, p, T0 + dt, commence_time=COMMENCE[e]),
        st.sampled_from(sorted(COMMENCE)),
        st.sampled_from(BOOKS),
        st.sampled_from(SIDES),
        st.one_of(st.none(), st.sampled_from([-150, -120, -110, 100, 110, 150])),
        st.integers(0, 100),
    ),
    max_size=30,
)


def newest(eng: DropEngine) -> dict[tuple[str, str, str], int]:
    return {k: v[2] for k, v in eng._state.items()}


def check_bookkeeping(eng: DropEngine) -> None:
    """The per-event key counts and event starts agree with the keys held."""
    assert eng._nkeys == dict(Counter(k[0] for k in eng._state))
    assert set(eng._events) <= set(eng._nkeys)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    quotes_st,
    st.integers(0, 101),
    st.one_of(st.none(), st.sampled_from([0, START_MS["e0"], START_MS["e0"] + 1, START_MS["e1"] + 1])),
    st.integers(1, 5),
    st.lists(quotes_st, max_size=8),
)
def test_interleaved_quotes_never_lose_a_fresh_key(
    initial: list[Quote], before_dt: int, started: int | None, chunk: int, between: list[list[Quote]]
) -> None:
    before = T0 + before_dt
    eng = DropEngine()
    eng.observe_many(initial)
    copied = set(eng._state)
    steps = eng.evict_iter(before, started_before_ms=started, chunk=chunk)
    last = 0
    for i in range(len(copied) // chunk + 2):
        if i < len(between):
            eng.observe_many(between[i])
        held = newest(eng)
        try:
            count = next(steps)
        except StopIteration:
            break
        gone = set(held) - set(eng._state)
        assert count - last == len(gone)
        last = count
        for k in gone:
            assert k in copied  # created after the copy: never looked at
            started_early = started is not None and START_MS.get(k[0], 2**63) < started
            assert held[k] < before or started_early, (k, held[k], before)
        check_bookkeeping(eng)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    quotes_st,
    st.integers(0, 101),
    st.one_of(st.none(), st.sampled_from([0, START_MS["e0"], START_MS["e0"] + 1, START_MS["e1"] + 1])),
    st.integers(1, 5),
    quotes_st,
)
def test_without_interleaving_it_is_evict(
    initial: list[Quote], before_dt: int, started: int | None, chunk: int, after: list[Quote]
) -> None:
    a = DropEngine()
    a.observe_many(initial)
    b = DropEngine.restore(a.snapshot())
    n = a.evict(T0 + before_dt, started_before_ms=started)
    counts = list(b.evict_iter(T0 + before_dt, started_before_ms=started, chunk=chunk))
    assert counts[-1] == n
    assert counts == sorted(counts)
    assert newest(a) == newest(b)
    assert a._events == b._events
    check_bookkeeping(a)
    check_bookkeeping(b)
    # and they go on alike (evicted keys prime again in both)
    assert a.observe_many(after) == b.observe_many(after)
    assert a.snapshot() == b.snapshot()


def test_a_key_refreshed_between_steps_stays_and_a_new_key_is_not_seen() -> None:
    eng = DropEngine()
    eng.observe_many([Quote("nba", "e", "b", f"h2h_{s}", -110, T0) for s in ("home", "away")])
    eng.observe(Quote("nba", "e", "b", "total_over@200", -110, T0))
    steps = eng.evict_iter(T0 + 10, chunk=1)
    assert next(steps) == 1  # h2h_home, old
    eng.observe(Quote("nba", "e", "b", "h2h_away", -110, T0 + 20))  # refreshed after the copy
    eng.observe(Quote("nba", "e", "b", "total_under@200", -110, T0))  # created after the copy
    assert list(steps) == [1, 2]
    assert sorted(k[2] for k in eng._state) == ["h2h_away", "total_under@200"]
    check_bookkeeping(eng)


def test_arguments_are_checked_at_the_call() -> None:
    eng = DropEngine()
    for kwargs in ({"chunk": 0}, {"chunk": -1}, {"chunk": 1.5}, {"chunk": True}, {"started_before_ms": "x"}):
        with pytest.raises(ConfigError):
            eng.evict_iter(T0, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="before_ms"):
        eng.evict_iter("x")  # type: ignore[arg-type]
    assert list(eng.evict_iter(T0)) == [0]


def test_an_abandoned_iteration_leaves_a_consistent_engine() -> None:
    eng = DropEngine()
    eng.observe_many(
        [Quote("nba", f"e{i}", "b", "h2h_home", -110, T0, commence_time="2025-05-11T22:00:00Z") for i in range(10)]
    )
    steps = eng.evict_iter(T0 + 1, chunk=3)
    assert next(steps) == 3
    del steps
    assert eng.keys_held == 7
    check_bookkeeping(eng)
    assert len(eng._events) == 7
    back = DropEngine.restore(eng.snapshot())
    check_bookkeeping(back)
    assert back._events == eng._events


def test_counts_stay_in_step_when_a_batch_stops_midway() -> None:
    def gen() -> Any:
        yield Quote("nba", "e", "b", "h2h_home", -110, T0)
        yield Quote("nba", "e", "b", "h2h_away", -110, T0)
        raise RuntimeError("the caller's generator failed")

    eng = DropEngine()
    with pytest.raises(RuntimeError):
        eng.observe_many(gen())
    assert eng.keys_held == 2
    assert eng.counters.seen == 2 and eng.counters.primed == 2
    check_bookkeeping(eng)
    assert eng.evict(T0 + 1) == 2
    check_bookkeeping(eng)
