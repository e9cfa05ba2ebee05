"""breaker14c: the stream engine's growing hot set (core.engine ``_Keys._spill``, f78eeb9) changes
nothing a caller sees.

Invariant: whatever the hot limit, the spill size and when the limit grows (``hot_keys(n, spill,
grow_after)`` shrinks them; ``grow_after=0`` doubles the limit at every spill that saw one cold key
warm again), a stream cut in chunks with, between chunks, an eviction (by age, by event start, or
stepped with ``evict_iter`` and quotes interleaved), a copy (``with_options`` of the same options),
a snapshot/restore or a key count, gives the alerts, counters, prices, key counts and snapshots of
an engine whose hot set holds every key. The hot set's limit never shrinks (evicting every key
leaves it as high as it grew): documented, not asserted as a defect (SPEC says nothing of memory).
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core import keystate as engine_mod  # the key state (split from engine.py)

from .strategies import detect_options, signal_options, signal_streams_with_options, streams_with_options
from .test_h14_state_store import hot_keys

_OPS = ("none", "evict_age", "evict_start", "evict_iter", "copy", "restore", "len")


def _apply(eng: DropEngine, op: str, bound: int, opts: dict[str, Any], later: list[Quote],
           log: list[Any]) -> DropEngine:
    if op == "evict_age":
        log.append(eng.evict(bound))
    elif op == "evict_start":
        log.append(eng.evict(bound, started_before_ms=bound))
    elif op == "evict_iter":
        steps = eng.evict_iter(bound, chunk=1)
        log.append(next(steps, None))
        log.append(eng.observe_many(later))  # quotes between two steps (SPEC of evict_iter)
        log.append(list(steps))
    elif op == "copy":
        eng, kept = eng.with_options(eng.config)
        log.append(kept)
    elif op == "restore":
        eng = DropEngine.restore(eng.snapshot())
    elif op == "len":
        log.append(len(eng))
    return eng


def _run(quotes: list[Quote], opts: dict[str, Any], cuts: list[int], ops: list[str]) -> tuple[Any, ...]:
    eng = DropEngine(**opts)
    log: list[Any] = []
    bounds = sorted({0, len(quotes), *(min(c, len(quotes)) for c in cuts)})
    for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        log.append(eng.observe_many(quotes[lo:hi]))
        if hi < len(quotes):
            bound = quotes[hi].last_update - 1000 * (j % 3)
            extra = quotes[hi:hi + 2]
            eng = _apply(eng, ops[j % len(ops)], bound, opts, extra, log)
            if ops[j % len(ops)] == "evict_iter":
                quotes = quotes[:hi] + quotes[hi + 2:]  # (observed already, between the steps)
    prices = {k: eng.price_of(*k) for k in eng._state}
    return log, eng.counters, eng.snapshot(), prices, len(eng)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(streams_with_options(detect_options()), signal_streams_with_options(signal_options())),
       cuts=st.lists(st.integers(0, 30), max_size=4),
       ops=st.lists(st.sampled_from(_OPS), min_size=1, max_size=4),
       # any spill size, one larger than the limit included (B14C-3, below: the key warm()/add()
       # hands back is never packed)
       limits=st.tuples(st.sampled_from((1, 2, 3, 5)), st.sampled_from((1, 2, 3, 5, 8)),
                        st.sampled_from((0, 1, 2, 1 << 30))))
def test_any_hot_limit_and_growth_changes_nothing(case: tuple[list[Quote], dict[str, Any]], cuts: list[int],
                                                  ops: list[str], limits: tuple[int, int, int]) -> None:
    quotes, opts = case
    want = _run(quotes, opts, cuts, ops)
    with hot_keys(*limits):
        got = _run(quotes, opts, cuts, ops)
    assert got == want


def test_hot_limit_grows_and_never_shrinks() -> None:
    """Documents f78eeb9: keys quoted again after going cold double the limit; evicting every
    key leaves the limit (and the hot dict's table) where it grew. Results are unaffected."""
    t0 = 1_747_000_000_000
    quotes = [Quote("basketball_nba", f"ev{i}", "pin", "h2h_home", -110 - (r % 2) * 20, t0 + r * 100 + i)
              for r in range(4) for i in range(40)]
    with hot_keys(4, 2, 1):
        eng = DropEngine(threshold=10)
        alerts = eng.observe_many(quotes)
        grown = eng._state.cap
        assert grown > 4  # the churn of 40 keys quoted round robin grew it
        assert eng.evict(t0 + 10**9) == 40
        assert len(eng) == 0 and eng._state.cap == grown  # not shrunk (memory: the hot dict empty)
    assert alerts == DropEngine(threshold=10).observe_many(quotes)
    assert engine_mod._HOT_KEYS == 5 << 15  # 1 << 16 before the primed cold form (state14b)


def test_a_spill_larger_than_the_limit_loses_no_update() -> None:
    t0 = 1_747_000_000_000
    quotes = [Quote("basketball_nba", "ev1", "pin", side, price, t0 + i)
              for i, (side, price) in enumerate((("h2h_home", -110), ("h2h_away", -110), ("h2h_home", -120),
                                                 ("h2h_away", -120), ("h2h_away", -120)))]
    want = DropEngine(threshold=10)
    want_alerts = want.observe_many(quotes)
    with hot_keys(1, 2):
        got = DropEngine(threshold=10)
        alerts = got.observe_many(quotes)
        assert got.price_of("ev1", "pin", "h2h_away") == -120
        assert alerts == want_alerts  # (the repeat of -120 fires again when the move was lost)
        assert got.snapshot() == want.snapshot()
