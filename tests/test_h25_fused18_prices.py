"""Issue 14 aim 2, session 18: the fused path's int prices stored as shared objects.

``DropEngine._detect``, applying the fused path's observations (``_observe_prices``), stores an int
price in a key's state as one shared object per value (``engine._SHARED_PRICES``), so a repeated
price compares with an object that is hot in the cache. Only the object changes, never the value or
its type: a float price equal to an int one (``-110.0``, ``-110``) stays a float, so alerts (their
JSON), counters and snapshots are the general path's.

Held to: after every envelope of rows whose prices mix ints and equal floats, the fused engine's
hot states equal the general engine's value for value and type for type, every int price the fused
engine stores is the shared object, and the alerts' JSON, counters and snapshot bytes are equal.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.core import engine as engine_mod
from dropengine.core.alerts import encode_alerts
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.fused import FusedFrames, decode_strict

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
# ints and floats of equal value (one key moving between them repeats its price), moves, an
# even-money pair, a suspension
PRICES = st.sampled_from((-110, -110.0, 150, 150.0, -150, 100, -100, 100.0, 250, None))


@st.composite
def envelopes(draw: st.DrawFn) -> list[bytes]:
    out = []
    t = 1000
    for _ in range(draw(st.integers(1, 8))):
        data = []
        for _ in range(draw(st.integers(1, 6))):
            t += draw(st.integers(0, 2))
            r: dict[str, Any] = {
                "kind": "game",
                "event_id": draw(st.sampled_from(("e1", "e2"))),
                "bookmaker": draw(st.sampled_from(("pin", "dk"))),
                "last_update": t,
            }
            for name in ("home_ml", "away_ml", "draw_ml"):
                if draw(st.integers(0, 3)):
                    r[name] = draw(PRICES)
            data.append(r)
        out.append(msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": data}))
    return out


def typed_state(engine: DropEngine) -> dict[Any, list[tuple[type, Any]]]:
    return {k: [(type(v), v) for v in st] for k, st in engine._state.hot.items()}


@SETTINGS
@given(lines=envelopes(), options=st.sampled_from(({}, {"reference": "anchor"}, {"reprime_after_suspension": False})))
def test_shared_int_prices_change_no_value_nor_type(lines: list[bytes], options: dict[str, Any]) -> None:
    fused_engine, general_engine = DropEngine(threshold=5, **options), DropEngine(threshold=5, **options)
    frames = FusedFrames(FrameDecoder())
    general = FrameDecoder()
    skips = SkipLog()
    fused_alerts: list[Any] = []
    general_alerts: list[Any] = []
    for n, line in enumerate(lines):
        env = decode_strict(line)
        assert env is not None
        out: list[Any] = []
        assert frames.envelope(env, line, f"x:{n}", skips, out)
        fused_alerts += fused_engine._observe_prices(out)
        general_alerts += general_engine.observe_many(general.feed(msgspec.json.decode(line), skips, f"x:{n}"))
        assert typed_state(fused_engine) == typed_state(general_engine)
        for st_ in fused_engine._state.hot.values():
            for v in (st_[0], st_[4]):
                if type(v) is int:
                    assert engine_mod._SHARED_PRICES[v] is v
    assert encode_alerts(fused_alerts) == encode_alerts(general_alerts)
    assert fused_engine.counters == general_engine.counters
    assert fused_engine.snapshot() == general_engine.snapshot()
