"""break18 (issue 14, session 11): the stream engine's key state and the fused frames path after
engine15's changes (``_Keys.enter``: a key that is not hot warmed or added in one call; the
fused observations' one type test and their repeat path counted once).

A hot set of two keys (every other key cold, spilled and warmed again all the time, new keys
entered between spills) against the default one, the fused replay against the general decoder,
on seeded adversarial vendor recordings (game and prop rows, ``_diff`` rows, unknown fields,
initial_state resumes, int/float/quarter prices and lines, both zeros, invalid prices, stale and
equal times): the alerts' JSON, the counters, every skip, the snapshot bytes and ``price_of``;
and on Quote streams with restores, evictions and copies between batches.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as keystate
from dropengine import DropEngine, Quote
from dropengine.core.alerts import encode_alerts
from dropengine.core.options import DetectOptions
from dropengine.core.skips import SkipLog
from dropengine.io.replay import ReplayStats, replay

_ENC = msgspec.json.Encoder()
ALL: Final = 10**6
PRICES: Final = (-110, -120, -135, -100, 100, 105, 120, 150, -200, -110.5, 100.0, -110.0, -112.25, None, 100_000,
                 -100_000, 99_999.5, 2000, -2000, 101, -101)
BAD: Final = (0, 99, -99, 100_001, 10**30, 1e300, -0.0, 0.5)
LINES: Final = (-3.5, 3.5, -3, 3, 3.0, 220.5, 220, 0, -0.0, 1e-7, -2.75, 47.25, None, 0.1, 1e15)
BOOKS: Final = ("pin", "dk", "fd", "mgm", "b\u00e9")
PLAYERS: Final = ("Ann", "C:D", "E@F")


def _recording(r: random.Random) -> list[bytes]:
    """Vendor envelopes over up to 12 events (many keys for a hot set of two)."""
    t = 1_000_000
    n_events = r.choice((1, 3, 12))
    out: list[bytes] = []
    for _ in range(r.randint(1, 40)):
        x = r.random()
        if x < 0.04:
            out.append(r.choice((b'{"type":"heartbeat"}', b"{", b'{"type":"odds_update","data":[],"x":{"a":1}}')))
            continue
        env: dict[str, Any] = {"type": "initial_state" if x < 0.12 else "odds_update",
                               "sport_key": r.choice(("nba", "nfl"))}
        rows = []
        for _ in range(r.randint(0, 8)):
            t += r.choice((0, 0, 1, 1000, 61_000, -5))
            row: dict[str, Any] = {"event_id": f"e{r.randrange(n_events)}", "bookmaker": r.choice(BOOKS),
                                   "last_update": t}
            if r.random() < 0.3:
                row.update(kind="prop", market_key=r.choice(("pts", "reb")), player=r.choice(PLAYERS),
                           market="Points", line=r.choice(LINES))
                fields: tuple[str, ...] = ("over_price", "under_price")
            else:
                row["kind"] = r.choice(("game", "game", None))
                if r.random() < 0.5:
                    row.update(home_team="H", away_team="A", commence_time=r.choice(("2026-05-12T19:30:00Z", "")))
                fields = ("home_ml", "away_ml", "draw_ml", "home_spread_price", "away_spread_price", "over_price",
                          "under_price")
                for f in ("home_spread", "away_spread", "total"):
                    if r.random() < 0.6:
                        row[f] = r.choice(LINES)
            for f in fields:
                if r.random() < 0.7:
                    row[f] = r.choice(PRICES) if r.random() < 0.93 else r.choice(BAD)
            if r.random() < 0.08:  # a _diff row: identifiers and a few fields
                row = {k: v for k, v in row.items()
                       if k in ("event_id", "bookmaker", "last_update", "kind", "market_key", "player")
                       or r.random() < 0.3}
                row["_diff"] = True
            if r.random() < 0.03:
                row["unknown"] = r.choice((1, "x", [1]))
            rows.append(row)
            if r.random() < 0.3 and "_diff" not in row:
                # the same identity again: each price kept (a repeat) or suspended, then back
                t += r.choice((0, 1))
                echo = {**row, "last_update": t}
                for f in fields:
                    if f in echo and r.random() < 0.5:
                        echo[f] = None
                rows += [echo, {**row, "last_update": t + 1}]
        env["data"] = rows
        out.append(json.dumps(env).encode())
    return out


def _tiny(engine: DropEngine, monkeypatch: pytest.MonkeyPatch) -> DropEngine:
    """``engine`` with a hot set of two keys, cooling one at a time (never growing)."""
    monkeypatch.setattr(keystate, "_SPILL", 1)
    monkeypatch.setattr(keystate, "_GROW_AFTER", 1 << 30)
    engine._state.cap = 2
    engine._lines.cap = 2
    return engine


def _replayed(path: Path, fused: bool, opts: dict[str, Any], tiny: pytest.MonkeyPatch | None) -> tuple[Any, ...]:
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine(**opts)
    if tiny is not None:
        _tiny(engine, tiny)
    alerts = encode_alerts(list(replay([path], engine, "auto", stats, fused=fused)))
    seen = (stats.quotes, stats.envelopes, stats.skips.counts, stats.skips.first)
    keys = list(engine._state)
    return alerts, engine.counters, seen, engine.snapshot(), [repr(engine.price_of(*k)) for k in keys]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(r=st.randoms(use_true_random=False),
       opts=st.sampled_from(({}, {"reference": "anchor"}, {"unit": "prob", "threshold": 2}, {"threshold": 1},
                             {"direction": "toward_dog", "bookmakers": ["pin"]}, {"reprime_after_suspension": False})))
def test_fused_and_general_with_a_hot_set_of_two_equal_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, r: random.Random, opts: dict[str, Any]
) -> None:
    path = tmp_path / "r.ndjson"
    path.write_bytes(b"\n".join(_recording(r)) + b"\n")
    want = _replayed(path, False, opts, None)
    with monkeypatch.context() as m:
        assert _replayed(path, True, opts, m) == want
        assert _replayed(path, False, opts, m) == want
    assert _replayed(path, True, opts, None) == want


T0: Final = 1_747_000_000_000


def _quotes(r: random.Random) -> list[Quote]:
    out = []
    t = T0
    for _ in range(r.randint(1, 120)):
        t += r.choice((0, 1, 1000, 61_000, -1000))
        side = r.choice(("h2h_home", "h2h_away", "spread_home@-3", "spread_home@-3.5", "total_over@220.5",
                         "pts:Ann:over@24.5"))
        price = r.choice(PRICES) if r.random() < 0.95 else r.choice(BAD)
        out.append(Quote("basketball_nba", f"e{r.randrange(6)}", r.choice(BOOKS), side, price, max(T0, t),
                         commence_time=r.choice((None, "2025-05-11T22:00:00Z"))))
    return out


def _driven(quotes: list[Quote], opts: dict[str, Any], r: random.Random, tiny: pytest.MonkeyPatch | None) -> list[Any]:
    """Batches of ``quotes`` with restores, evictions, copies and look-ups between them."""
    engine = DropEngine(**opts)
    if tiny is not None:
        _tiny(engine, tiny)
    out: list[Any] = []
    i = 0
    while i < len(quotes):
        step = r.choice((1, 3, 17))
        chunk = quotes[i:i + step]
        i += step
        got = [engine.observe(chunk[0])] if step == 1 else [engine.observe_many(chunk)]
        out.append(([_ENC.encode(a) for g in got for a in g], engine.counters, len(engine)))
        x = r.random()
        if x < 0.2:
            snap = engine.snapshot()
            engine = DropEngine.restore(snap)
            if tiny is not None:
                _tiny(engine, tiny)
            out.append(snap)
        elif x < 0.3 and i < len(quotes):
            before = quotes[i].last_update - r.choice((0, 1000, 60_000))
            out.append(list(engine.evict_iter(before, chunk=r.choice((1, 4)))) if r.random() < 0.5
                       else engine.evict(before, started_before_ms=r.choice((None, T0 + 1))))
        elif x < 0.4:
            engine, kept = engine.with_options(DetectOptions.build(**{**opts, **r.choice(
                ({}, {"threshold": 5}, {"reference": "last"}, {"types": "odds_drop,line_move,steam"}))}))
            if tiny is not None:
                _tiny(engine, tiny)
            out.append(kept)
        out.append(engine.snapshot())
    keys = sorted({(q.event_id, q.bookmaker, q.side) for q in quotes})
    out.append([repr(engine.price_of(*k)) for k in keys])
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1),
       opts=st.sampled_from(({}, {"reference": "anchor"}, {"types": "odds_drop,line_move,steam", "steam_books": 2},
                             {"reprime_after_suspension": False, "cooldown_ms": 1000})))
def test_a_hot_set_of_two_equals_the_default_across_restores_evictions_and_copies(
    monkeypatch: pytest.MonkeyPatch, seed: int, opts: dict[str, Any]
) -> None:
    quotes = _quotes(random.Random(seed))
    want = _driven(quotes, opts, random.Random(seed + 1), None)
    with monkeypatch.context() as m:
        assert _driven(quotes, opts, random.Random(seed + 1), m) == want
