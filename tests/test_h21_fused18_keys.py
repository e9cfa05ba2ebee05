"""Issue 14 aim 2, session 14: the fused envelope remembers each row identity's keys.

``FusedFrames.envelope`` builds an identity's key tuples once (its h2h keys, and a line side's key
while the identity's line stays equal) and hands the engine the same objects on every row; a row's
identity is valid (event, book, market key, player) when it is known; the schema bounds a time to
0..MAX_MS and an integer line to int64, so a line with a value past them is decoded the general way.
Each is held to the general decoder (alerts' JSON, counters, every skip with its position) on rows
whose lines move to and fro through equal values of other types and signs (5 and 5.0, 0 and -0.0:
an alert prints its line, so a key or a line reused where it differs is seen), with the memory of
identities forgotten at every row or never. Performance is measured in benchmarks/engine.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.quote import MAX_MS
from dropengine.core.skips import SkipLog
from dropengine.formats import fused
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.fused import FusedFrames, decode_strict

from .test_h20_fused17_rows import run  # (the same replay of both paths, every skip kept)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ABSENT = object()
INT64 = 2**63
# equal lines of other types and signs, and no line; now and then an integer at or past int64's
# bounds (past them, the whole line is decoded the general way: rare, so most lines are fused)
LINES = st.sampled_from((ABSENT, None, 0, -0.0, 0.0, 3, 3.0, -3.5, 220.5))
BIG = st.sampled_from((2**53 + 1, 2**53, float(2**53), INT64 - 1, float(INT64), -INT64, INT64, -INT64 - 1, 2**1100))
TIMES = st.sampled_from((1000, 1001, 1002, 1003))
ODD_TIMES = st.sampled_from((MAX_MS, MAX_MS + 1, -1))
# prices far apart: almost every change alerts (threshold 5 cents), so a key's line is printed
PRICES = st.sampled_from((-110, -150, 120, 200, -300, None))


@st.composite
def row(draw: st.DrawFn) -> dict[str, Any]:
    """A game or prop row of a few identities (some unusable), its lines and prices drawn."""
    r: dict[str, Any] = {"event_id": draw(st.sampled_from(("e1", "e2", "", None))),
                         "bookmaker": draw(st.sampled_from(("pin", "dk"))),
                         "last_update": draw(ODD_TIMES if draw(st.integers(0, 15)) == 0 else TIMES)}
    names: tuple[str, ...]
    lines: tuple[str, ...]
    if draw(st.booleans()):
        r["kind"] = "game"
        names = ("home_ml", "away_ml", "home_spread_price", "away_spread_price", "over_price", "under_price")
        lines = ("home_spread", "away_spread", "total")
    else:
        r.update(kind="prop", market_key=draw(st.sampled_from(("pts", "a:b", ""))), player="Ann")
        names, lines = ("over_price", "under_price"), ("line",)
    for name in lines:
        v = draw(BIG if draw(st.integers(0, 15)) == 0 else LINES)
        if v is not ABSENT:
            r[name] = v
    for name in names:
        if draw(st.integers(0, 5)):  # mostly present
            r[name] = draw(PRICES)
    return r


def write(path: Path, envelopes: list[list[dict[str, Any]]]) -> None:
    lines = [msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": data}) for data in envelopes]
    path.write_bytes(b"\n".join(lines) + b"\n")


@SETTINGS
@given(envelopes=st.lists(st.lists(row(), min_size=1, max_size=4), min_size=1, max_size=12),
       forget=st.booleans())
def test_remembered_keys_fused_equals_general(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              envelopes: list[Any], forget: bool) -> None:
    # forget: the memory of identities is cleared at every new identity (its bound is 1)
    with monkeypatch.context() as m:
        if forget:
            m.setattr(fused, "_MAX_IDENTITIES", 1)
        path = tmp_path / "k.ndjson"
        write(path, envelopes)
        assert run([path], True) == run([path], False)


def test_lines_to_and_fro_alert_with_their_own_side_and_line(tmp_path: Path) -> None:
    """One identity whose lines come back equal in another type or sign: every alert's side and
    line are the general decoder's (-0.0 prints as such; 3 and 3.0 are one side)."""
    data: list[list[dict[str, Any]]] = []
    prices = (-110, -150, 120, -150, 200, -110, 150, -300)
    for i, line in enumerate((3, 3.0, -0.0, 0, 0.0, -0.0, 3.0, 3, None, 3)):
        p = prices[i % len(prices)]
        data.append([{"kind": "game", "event_id": "e1", "bookmaker": "pin", "last_update": 1000 + i,
                      "home_spread": line, "away_spread": line, "total": line, "home_spread_price": p,
                      "away_spread_price": p, "over_price": p, "under_price": p},
                     {"kind": "prop", "event_id": "e1", "bookmaker": "pin", "market_key": "pts", "player": "Ann",
                      "line": line, "over_price": p, "under_price": p, "last_update": 1000 + i}])
    path = tmp_path / "l.ndjson"
    write(path, data)
    out = run([path], True)
    assert out == run([path], False)
    assert out[0].count(b'"odds_drop"') >= 20 and b'"line":-0.0' in out[0]


def test_the_schema_takes_times_and_int_lines_within_their_bounds_only() -> None:
    def takes(**fields: Any) -> bool:
        r = {"kind": "game", "event_id": "e1", "bookmaker": "pin", "last_update": 1000, "home_ml": -110, **fields}
        return decode_strict(msgspec.json.encode({"type": "odds_update", "data": [r]})) is not None

    assert takes(last_update=0) and takes(last_update=MAX_MS)
    assert not takes(last_update=-1) and not takes(last_update=MAX_MS + 1)
    for name in ("home_spread", "away_spread", "total", "line"):
        assert takes(**{name: INT64 - 1}) and takes(**{name: -INT64}) and takes(**{name: 2.5})
        assert not takes(**{name: INT64}) and not takes(**{name: -INT64 - 1})


def test_an_identity_hands_the_engine_one_key_object_per_key() -> None:
    """The engine's and the decoder's dicts then find a key by identity (no tuple built, hashed
    and compared per price); the keys are equal to the ones the general decoder builds."""
    def line(lu: int, spread: float) -> bytes:
        return msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": [
            {"kind": "game", "event_id": "e1", "bookmaker": "pin", "last_update": lu, "home_ml": -110,
             "home_spread": spread, "home_spread_price": -110},
            {"kind": "prop", "event_id": "e1", "bookmaker": "pin", "market_key": "pts", "player": "Ann",
             "line": 24.5, "over_price": -110, "last_update": lu}]})

    frames = FusedFrames(FrameDecoder())
    seen: list[list[Any]] = []
    for lu, spread in ((1000, -3.5), (1001, -3.5), (1002, -3), (1003, -3.5)):
        b = line(lu, spread)
        env = decode_strict(b)
        assert env is not None
        out: list[Any] = []
        assert frames.envelope(env, b, "x", SkipLog(), out)
        seen.append([obs[0] for obs in out])
    first, same, moved, back = seen
    assert [k == f for k, f in zip(same, first, strict=True)] == [True, True, True]
    assert all(k is f for k, f in zip(same, first, strict=True))
    assert moved[0] is first[0] and moved[2] is first[2] and moved[1] == ("e1", "pin", "spread_home@-3")
    assert back[1] == first[1]
