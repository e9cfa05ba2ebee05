"""Issue 14 aim 2, session 19: the price loop keeps a key's list in the observation's record itself.

``DropEngine._detect`` keeps a fused observation's hot list in its row identity's state record
(``_Keys.hold``). When the record is already this state's (its token) and still names the key
(``rec[at - 1] is key``), the loop stores the list at ``rec[at]`` itself, without the call; else it
calls ``hold`` as before. The key test is what matters: observations of one identity applied in one
batch can be older than the record (a line moved away and back within an envelope, each move a new
key object), and a list stored under another key would be read as that key's state.

Held to: fused == general (alerts, counters, skips) on streams whose identities' lines move away and
back within one envelope and across envelopes, with the default hot set and with a hot set of a few
keys (keys cooled and warmed: the warm branch's store). Performance: benchmarks/engine.py, never here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core import keystate

from .test_h14_frames_fused import assert_same, write

PRICES = (-110, -120, -150, -200, 105, 130, None)
SPREADS = (-3.5, -4.5, -3.5, 2.5)
PLAYERS = ("Ann", "Bo")


@pytest.fixture(params=["default", "tiny"])
def hot_set(request: pytest.FixtureRequest) -> Iterator[str]:
    """The default hot set, or one of 4 keys cooling 2 at a time (never growing): most prices of a
    stream then meet a cold key, warmed into a record that is already the state's."""
    if request.param == "default":
        yield "default"
        return
    saved = keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER
    keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER = 4, 2, 10**9  # type: ignore[misc]
    try:
        yield "tiny"
    finally:
        keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER = saved  # type: ignore[misc]


def game(book: str, t: int, spread: float, price: Any, total: float, over: Any, ml: Any = -110) -> dict[str, Any]:
    return {"kind": "game", "event_id": "e1", "bookmaker": book, "last_update": t, "home_ml": ml,
            "home_spread": spread, "away_spread": -spread, "home_spread_price": price, "away_spread_price": over,
            "total": total, "over_price": over, "under_price": over}  # fmt: skip


def prop(player: str, t: int, line: float, over: Any, under: Any) -> dict[str, Any]:
    return {"kind": "prop", "event_id": "e1", "bookmaker": "pin", "market_key": "pts", "player": player,
            "market": "Points", "line": line, "last_update": t, "over_price": over, "under_price": under}  # fmt: skip


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """Envelopes of a few identities, several rows of one identity per envelope, lines moving away
    and back (a line seen before makes a new key object equal to the old one)."""
    lines = [b'{"type":"connected","sport_key":"nba"}']
    t = 1000
    for _ in range(draw(st.integers(1, 6))):
        rows = []
        for _ in range(draw(st.integers(1, 12))):
            t += draw(st.sampled_from((0, 1, 1, 5, -2)))  # a step back now and then: a stale price
            if draw(st.booleans()):
                rows.append(game(draw(st.sampled_from(("pin", "dk"))), t, draw(st.sampled_from(SPREADS)),
                                 draw(st.sampled_from(PRICES)), draw(st.sampled_from((220.5, 221.5))),
                                 draw(st.sampled_from(PRICES)), draw(st.sampled_from(PRICES))))  # fmt: skip
            else:
                rows.append(prop(draw(st.sampled_from(PLAYERS)), t, draw(st.sampled_from((20.5, 21.5))),
                                 draw(st.sampled_from(PRICES)), draw(st.sampled_from(PRICES))))  # fmt: skip
        lines.append(msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": rows}))
    return lines


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=streams())
def test_lines_moving_away_and_back_in_one_batch_keep_each_keys_own_state(
    tmp_path: Path, hot_set: str, lines: list[bytes]
) -> None:
    assert_same([write(tmp_path / "s.ndjson", lines)])
    assert_same([write(tmp_path / "a.ndjson", lines)], reference="anchor", reprime_after_suspension=False)


def test_a_line_moved_away_and_back_within_one_envelope(tmp_path: Path, hot_set: str) -> None:
    """-3.5 at -110, -4.5 at -200, -3.5 at -110 again, one envelope (a prop's line too; every other
    price the same): the third row's key is the first's (equal, another object), so its price
    repeats: no alert. Its list stored under the
    second key's entry would make it a move from -200 (an alert the general path does not give)."""
    lines = [
        msgspec.json.encode(
            {
                "type": "odds_update",
                "sport_key": "nba",
                "data": [
                    game("pin", 1000, -3.5, -110, 220.5, -110),
                    game("pin", 1001, -4.5, -200, 220.5, -110),
                    game("pin", 1002, -3.5, -110, 220.5, -110),
                    prop("Ann", 1000, 20.5, -110, -110),
                    prop("Ann", 1001, 21.5, -200, -200),
                    prop("Ann", 1002, 20.5, -110, -110),
                ],
            }
        ),
    ]
    out = assert_same([write(tmp_path / "m.ndjson", lines)])
    assert out.count(b'"odds_drop"') == 0


def test_a_cold_key_warmed_into_a_record_moved_on(tmp_path: Path) -> None:
    """A hot set of 4 keys: the home moneyline (H) and the home spread's key at -3.5 (A) go cold; then
    one envelope quotes H (warmed: the record is the state's again), A at -3.5 (warmed) and, in its
    next row, the spread at -4.5 (B, new). The record names B when A is warmed: A's list stored there
    would be read as B's state (a move from -110 to -150; B is new: primed, no alert)."""
    saved = keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER
    keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER = 4, 2, 10**9  # type: ignore[misc]
    try:
        pin = {"kind": "game", "event_id": "e1", "bookmaker": "pin"}
        # 10 more keys: H and A go cold, and the hot set is left full (a spill cools 2 past 4 keys:
        # 5 -> 3), so warming H spills (the records let go), H takes the record again, and warming A
        # finds room: its list would be stored in a record that is the state's (the branch held here)
        others = [{"kind": "game", "event_id": f"o{i}", "bookmaker": "pin", "last_update": 1001, "home_ml": -110,
                   "away_ml": 100, "draw_ml": 300} for i in range(3)]  # fmt: skip
        others.append({"kind": "game", "event_id": "o9", "bookmaker": "pin", "last_update": 1001, "home_ml": -110})
        rows = [
            [{**pin, "last_update": 1000, "home_ml": -110, "home_spread": -3.5, "home_spread_price": -110}],
            others,
            [{**pin, "last_update": 1003, "home_ml": -110, "home_spread": -3.5, "home_spread_price": -110},
             {**pin, "last_update": 1004, "home_ml": -110, "home_spread": -4.5, "home_spread_price": -150}],
        ]  # fmt: skip
        lines = [msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": r}) for r in rows]
        out = assert_same([write(tmp_path / "w.ndjson", lines)])
    finally:
        keystate._HOT_KEYS, keystate._SPILL, keystate._GROW_AFTER = saved  # type: ignore[misc]
    assert out.count(b'"odds_drop"') == 0
