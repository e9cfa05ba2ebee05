"""break19 (issue 14): trying to break state16's deferred key tree (``core/keystate.py``: a new key
in the hot dict alone until it goes cold or a reader, remover or loader fills the tree).

- Every reader at adversarial points: random programs of ``observe`` / ``observe_many`` (stale and
  equal times, suspensions, line-only quotes, +-100 and +-100000, floats, ``-0.0``), ``evict``
  (by age, by event start), ``evict_iter`` with quotes and snapshots between its steps (and
  abandoned part way), ``snapshot``, ``restore`` mid-stream, ``price_of``, ``keys_held``,
  ``with_options`` (signals on and off) give the same log (alerts' bytes, counters, evict counts
  and their steps, snapshot bytes, prices) with hot sets of 1 to 3 keys spilling 1 to 3 at a time
  (growing or not) as with a hot set nothing leaves. (The same programs gave the same log at
  59b5c38 and at 9c9bcf0, over 3,000 seeds, run by break19 in two processes.)
- The fused NDJSON replay (``_observe_prices``' observation tuples, ``_diff`` rows, initial_state
  resumes) == the general one with hot sets of 1 to 3 keys, and == the default hot set.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as keystate
from dropengine import DropEngine, Quote
from dropengine.core.options import DetectOptions

from .test_h14_frames_fused import run as replay_run
from .test_h14_frames_fused import streams, write

_ENC = msgspec.json.Encoder()
_EVENTS = ("e1", "e2", "e3", "e4")
_BOOKS = ("b1", "b2", "b3")
_SIDES = ("h2h_home", "h2h_away", "spread_home@-3", "spread_home@-3.5", "total_over@41.5", "total_over@42")
_PRICES = (-110, 150, -100, 100, 100000, -100000, -120.5, 101.3, -0.0, 0, 99, None, None, -115, 130, -105.25,
           -100.0)
_NEVER_COLD = (1 << 30, 1, 1 << 30)


@contextmanager
def _limits(hot: int, spill: int, grow_after: int) -> Iterator[None]:
    saved = keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER
    keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER = hot, spill, grow_after  # type: ignore[misc]
    try:
        yield
    finally:
        keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER = saved  # type: ignore[misc]


def _quotes(r: random.Random, n: int, t: int) -> tuple[list[Quote], int]:
    out: list[Quote] = []
    for _ in range(n):
        t = max(0, t + r.choice((0, 0, 1, 500, 60_000, -1, -60_000)))
        side = r.choice(_SIDES)
        market = "h2h" if side.startswith("h2h") else "spreads" if side.startswith("spread") else "totals"
        start = r.choice((None, "2025-05-12T00:00:00Z", "2025-05-11T23:00:00+00:00")) if r.random() < 0.3 else None
        line_only = market != "h2h" and r.random() < 0.05
        price = None if line_only else r.choice(_PRICES)
        try:
            out.append(Quote("americanfootball_nfl", r.choice(_EVENTS), r.choice(_BOOKS), side, price, t,
                             market_key=market, commence_time=start, line_only=line_only))
        except Exception:  # an invalid quote (a price of 0 or 99): not a Quote
            continue
    return out, t


def _program_log(seed: int) -> str:
    """The log (hashed) of one random program of engine calls (``seed``), readers at every point."""
    r = random.Random(seed)
    opts: dict[str, Any] = {"threshold": r.choice((5, 10)), "reference": r.choice(("last", "anchor")),
                            "types": r.choice(("odds_drop", "odds_drop,line_move,steam", "odds_drop,steam")),
                            "steam_books": 2, "cooldown_ms": r.choice((0, 1000))}
    eng = DropEngine(**opts)
    log: list[Any] = []
    t = 1_747_000_000_000

    def alerts(got: list[Any]) -> list[bytes]:
        return [_ENC.encode(a) for a in got]

    for _ in range(r.randint(5, 40)):
        op = r.choice(("many",) * 4 + ("one",) * 2 + ("evict", "evict_started", "evict_iter", "snapshot", "restore",
                                                       "read", "with_options"))
        if op in ("many", "one"):
            quotes, t = _quotes(r, r.randint(1, 12), t)
            if op == "many":
                log.append(alerts(eng.observe_many(quotes)))
            else:
                log.extend(alerts(eng.observe(q)) for q in quotes)
        elif op == "evict":
            log.append(("evict", eng.evict(t - r.choice((0, 1, 500, 60_000, 10**9)))))
        elif op == "evict_started":
            log.append(("evict", eng.evict(t - r.choice((10**12, 10**9)), started_before_ms=r.choice(
                (1_747_000_000_000, 1_746_921_600_001, 2**62)))))
        elif op == "evict_iter":
            for step in eng.evict_iter(t - r.choice((0, 500, 60_000)), chunk=r.randint(1, 4)):
                log.append(("step", step))
                if r.random() < 0.5:
                    quotes, t = _quotes(r, r.randint(1, 4), t)
                    log.append(alerts(eng.observe_many(quotes)))
                if r.random() < 0.2:
                    log.append(("snapshot", hashlib.sha256(eng.snapshot()).hexdigest()))
                if r.random() < 0.1:
                    break  # abandoned part way
        elif op == "snapshot":
            log.append(("snapshot", hashlib.sha256(eng.snapshot()).hexdigest()))
        elif op == "restore":
            eng = DropEngine.restore(eng.snapshot())
            log.append(("restored", eng.keys_held))
        elif op == "read":
            log.extend(("price", repr(eng.price_of(r.choice(_EVENTS), r.choice(_BOOKS), r.choice(_SIDES))))
                       for _ in range(3))
            log.append(("held", eng.keys_held, len(eng)))
        else:
            other = {**opts, "threshold": r.choice((5, 10, 15)),
                     "types": r.choice(("odds_drop", "odds_drop,line_move,steam"))}
            eng, kept = eng.with_options(DetectOptions.build(**other))
            log.append(("with_options", kept))
        log.append(("counters", _ENC.encode(eng.counters)))
    log.append(("final", hashlib.sha256(eng.snapshot()).hexdigest(), eng.keys_held))
    return hashlib.sha256(repr(log).encode()).hexdigest()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), limits=st.sampled_from(((1, 1, 1 << 30), (2, 1, 1), (3, 2, 1 << 30), (1, 3, 1),
                                                            (2, 2, 2))))
def test_readers_at_any_point_see_what_a_never_cold_engine_shows(seed: int, limits: tuple[int, int, int]) -> None:
    with _limits(*_NEVER_COLD):
        want = _program_log(seed)
    with _limits(*limits):
        assert _program_log(seed) == want


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(lines=streams, limits=st.sampled_from(((1, 1, 1 << 30), (2, 1, 1), (3, 2, 1 << 30))),
       options=st.sampled_from(({}, {"reference": "anchor"}, {"reprime_after_suspension": False})))
def test_fused_replay_with_tiny_hot_sets(tmp_path: Path, lines: list[bytes], limits: tuple[int, int, int],
                                         options: dict[str, Any]) -> None:
    path = write(tmp_path / "s.ndjson", lines)
    want = replay_run([path], False, **options)
    with _limits(*limits):
        fused = replay_run([path], True, **options)
        general = replay_run([path], False, **options)
    assert fused == want and general == want
