"""Issue 14, session 9: the fused path's 256-quote batches and the engine's short repeat path.

The fused replay applies its observations every 256 quotes, and ``DropEngine._detect`` takes a
repeated price of a known key in a short path (observation tuples only). Both are held equal to
what they replace: the fused replay to the general decoder (alerts' JSON, counters, skips,
statistics) on streams that keep few identities changing their teams, sport, market and lines
(0 and -0.0, 3 and 3.0); ``_observe_prices`` to ``observe_many`` on the same quotes, in any
batches, and to a dict reference of SPEC 3. Performance is measured in benchmarks/engine.py,
never asserted here.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.core.quote import QuoteInfo
from dropengine.core.rules import cents_move, crosses, is_valid_price, round_delta, same_price, threshold_floor
from dropengine.core.skips import SkipLog
from dropengine.formats import fused as fused_mod
from dropengine.io.replay import ReplayStats, replay

ALL = 10**6
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(path: Path, fused: bool, options: dict[str, Any]) -> tuple[bytes, Any, Any]:
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine(**options)
    alerts = list(replay([path], engine, "frames", stats, fused=fused))
    return encode_alerts(alerts), engine.counters, (stats.quotes, stats.envelopes, stats.skips.counts,
                                                      stats.skips.first)


# -- one identity, changing: the fused path's memory --------------------------------------------

PRICES = (-110, -110, -110, -120, -125, 100, -100, 150, -110.0, None, 99)
LINES = (-3.5, -3, -3.0, 0, -0.0, 220.5, 221, 2**70, 1e-7)
META = st.sampled_from(("H", "A", "", None, "2026-05-12T19:30:00Z"))


@st.composite
def row(draw: st.DrawFn) -> dict[str, Any]:
    """A row of the typed schema for one of few identities, its meta and lines changing."""
    r: dict[str, Any] = {"event_id": draw(st.sampled_from(("e1", "e2"))),
                         "bookmaker": draw(st.sampled_from(("pin", "dk"))),
                         "last_update": draw(st.integers(1000, 1012))}
    for name in ("home_team", "away_team", "commence_time"):
        if draw(st.integers(0, 3)):
            r[name] = draw(META)
    if draw(st.integers(0, 5)) == 0:
        r["sport_key"] = draw(st.sampled_from(("nfl", "", None)))
    price = st.sampled_from(PRICES)
    if draw(st.integers(0, 2)) == 0:
        r.update(kind=draw(st.sampled_from(("prop", None))), market_key=draw(st.sampled_from(("pts", "reb"))),
                 player=draw(st.sampled_from(("Ann", "Bo"))))
        if draw(st.integers(0, 3)):
            r["market"] = draw(st.sampled_from(("Points", "", None)))
        r["line"] = draw(st.sampled_from((*LINES, None)))
        for name in ("over_price", "under_price"):
            if draw(st.integers(0, 4)):
                r[name] = draw(price)
        return r
    if draw(st.booleans()):
        r["kind"] = "game"
    for name in ("home_ml", "away_ml", "draw_ml", "home_spread_price", "away_spread_price", "over_price",
                 "under_price"):
        if draw(st.integers(0, 4)):
            r[name] = draw(price)
    for name in ("home_spread", "away_spread", "total"):
        if draw(st.integers(0, 5)):
            r[name] = draw(st.sampled_from((*LINES, None)))
    return r


@st.composite
def stream(draw: st.DrawFn) -> list[bytes]:
    out = []
    for _ in range(draw(st.integers(1, 12))):
        env = {"type": draw(st.sampled_from(("odds_update",) * 5 + ("initial_state",))), "sport_key": "nba",
               "data": draw(st.lists(row(), min_size=1, max_size=6))}
        out.append(msgspec.json.encode(env))
    return out


@SETTINGS
@given(lines=stream(),
       options=st.sampled_from(({}, {"reference": "anchor"}, {"reprime_after_suspension": False},
                                {"unit": "prob", "threshold": 2})))
def test_fused_path_on_changing_identities_gives_the_general_paths_results(
    tmp_path: Path, lines: list[bytes], options: dict[str, Any]
) -> None:
    """Same alerts (each carries its own row's teams, sport, market and line), counters and
    skips, whatever an identity's earlier rows held."""
    path = tmp_path / "s.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert run(path, True, options) == run(path, False, options)


def test_an_identity_whose_teams_change_alerts_with_the_new_ones(tmp_path: Path) -> None:
    """An alert carries its own row's meta (here only the away team changed)."""
    g = {"event_id": "e1", "bookmaker": "pin", "home_team": "H", "commence_time": "2026-05-12T19:30:00Z"}
    lines = [msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": [d]}) for d in (
        {**g, "away_team": "A", "last_update": 1, "home_ml": -110},
        {**g, "away_team": "B", "last_update": 2, "home_ml": -150},
    )]
    path = tmp_path / "t.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    alerts = list(replay([path], DropEngine(), "frames"))
    assert [a.away_team for a in alerts] == ["B"]
    assert run(path, True, {}) == run(path, False, {})


# -- the engine's short repeat path ---------------------------------------------------------------

KEYS = (("e1", "pin", "h2h_home"), ("e1", "pin", "spread_home@-3.5"), ("e2", "dk", "h2h_home"))
INFO = QuoteInfo("nba", "game", None, None, "H", "A", None)
OBS_PRICES = (-110, -110, -110, -110.0, -120, -135, 100, -100, 101, None, 99, 100001)


@st.composite
def observations(draw: st.DrawFn) -> list[Any]:
    """Observation tuples as the fused path builds them: mostly repeats, and every rule."""
    out = []
    for _ in range(draw(st.integers(1, 60))):
        k = draw(st.sampled_from(KEYS))
        line = -3.5 if "@" in k[2] else None
        out.append((k, draw(st.sampled_from(OBS_PRICES)), draw(st.integers(1000, 1010)),
                    "spreads" if line is not None else "h2h", line, INFO))
    return out


def reference(items: list[Any]) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """SPEC 3 with default options (last price, cents, 10, re-prime after a suspension), from
    the rules functions, over a dict of key -> [price, since, newest, suspended]."""
    state: dict[Any, list[Any]] = {}
    n = dict.fromkeys(("seen", "primed", "stale", "invalid", "suspended", "repeated", "detected"), 0)
    out = []
    floor = threshold_floor(10)
    for key, price, lu, *_ in items:
        n["seen"] += 1
        if price is not None and not is_valid_price(price):
            n["invalid"] += 1
            continue
        st_ = state.get(key)
        if st_ is not None and lu < st_[2]:
            n["stale"] += 1
            continue
        if price is None:
            n["suspended"] += 1
            if st_ is None:
                state[key] = [None, lu, lu, True]
            else:
                st_[2], st_[3] = lu, True
            continue
        if st_ is None or st_[3]:
            n["primed"] += 1
            state[key] = [price, lu, lu, False]
            continue
        st_[2] = lu
        if same_price(price, st_[0]):
            n["repeated"] += 1
            continue
        move = round_delta(cents_move(st_[0], price))
        if crosses(move, floor):
            n["detected"] += 1
            out.append((key, st_[0], price, move, lu, lu - st_[1]))
        st_[0], st_[1] = price, lu
    return out, n


@SETTINGS
@given(items=observations(), cuts=st.lists(st.integers(0, 60), max_size=4),
       options=st.sampled_from(({}, {"reference": "anchor"}, {"reprime_after_suspension": False},
                                {"unit": "prob", "threshold": 2})))
def test_observations_equal_quotes_and_the_reference(items: list[Any], cuts: list[int],
                                                      options: dict[str, Any]) -> None:
    """``_observe_prices`` (in any batches) does what ``observe_many`` does with the quotes the
    observations stand for: alerts, counters, state; with default options, what the reference does."""
    fast, general = DropEngine(**options), DropEngine(**options)
    alerts = []
    bounds = sorted({0, len(items), *(c for c in cuts if c < len(items))})
    for lo, hi in itertools.pairwise(bounds):
        alerts += fast._observe_prices(items[lo:hi])
    want = general.observe_many(fused_mod.as_quotes(items))
    assert encode_alerts(alerts) == encode_alerts(want)
    assert fast.counters == general.counters
    assert fast.snapshot() == general.snapshot()
    if not options:
        ref, n = reference(items)
        assert [((a.event_id, a.bookmaker, a.side), a.prev, a.new, a.delta, a.last_update, a.elapsed_ms)
                for a in alerts] == ref
        assert {k: v for k, v in fast.counters.as_dict().items() if k in n} == n
