"""break16 (issue 14, session 9): the fused frames path after fused14's caches and batches.

- B16-1 (fixed: e4115c3): the memory a :class:`FusedFrames` holds beyond its decoder does not grow per distinct price
  key (the engine packs its cold keys without their tuples; a cache that keeps every key tuple a
  side ever had doubles a long replay's memory).
- B16-3 (fixed: e4115c3): nor per game identity beyond what it held before the session (h2h-only identities).
- The fused path equals the general one (alerts, counters, skips, statistics) on long streams of
  few identities whose lines move on and on and back, across the 256-quote batches.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.skips import SkipLog
from dropengine.formats import fused as fused_module
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.fused import FusedFrames, decode_strict

from .test_h14_frames_fused import assert_same, envelopes, write

_ENC = msgspec.json.Encoder()
T0 = 1_700_000_000_000


def _h2h_only(games: int) -> list[bytes]:
    """Two odds updates of ``games`` game identities quoting moneylines only (3 keys each)."""
    out = []
    t = T0
    for r in range(2):
        rows = []
        for g in range(games):
            t += 1
            rows.append({"kind": "game", "event_id": f"ev{g // 8}", "bookmaker": f"bk{g % 8}", "last_update": t,
                         "home_ml": -110 - r, "away_ml": 100 + r, "draw_ml": 250})
        out.append(_ENC.encode({"type": "odds_update", "sport_key": "nba", "data": rows}))
    return out


def _moving_lines(games: int, rounds: int) -> list[bytes]:
    """``rounds`` odds updates of ``games`` game identities whose spread and total lines move by a
    step every round: each round a new price key per line side (``games * (1 + 4 * rounds)`` keys)."""
    out = []
    t = T0
    for r in range(rounds):
        rows = []
        for g in range(games):
            t += 1
            hs = -3.5 + 0.5 * r
            rows.append({"kind": "game", "event_id": f"ev{g // 4}", "bookmaker": f"bk{g % 4}", "last_update": t,
                         "home_ml": -110, "home_spread": hs, "away_spread": -hs, "home_spread_price": -110,
                         "away_spread_price": -110, "total": 200.5 + r, "over_price": -110, "under_price": -110})
        out.append(_ENC.encode({"type": "odds_update", "sport_key": "nba", "data": rows}))
    return out


def _retained(lines: list[bytes], fused: bool) -> int:
    """Bytes still allocated after feeding ``lines`` to a decoder (fused: through a FusedFrames,
    its observations dropped as the engine would after applying them), both kept alive."""
    gc.collect()
    tracemalloc.start()
    try:
        decoder = FrameDecoder()
        skips = SkipLog()
        kept: tuple[Any, ...]
        if fused:
            frames = FusedFrames(decoder)
            for i, line in enumerate(lines):
                env = decode_strict(line)
                assert env is not None
                assert frames.envelope(env, line, f"m:{i + 1}", skips, [])
            env = None  # a replay drops each envelope: its typed rows are not the decoder's
            kept = (decoder, frames)
        else:
            for i, line in enumerate(lines):
                decoder.feed(msgspec.json.decode(line), skips, f"m:{i + 1}")
            kept = (decoder,)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept
    return held


# B16-1 (fixed by e4115c3, the per-identity memory dropped): ~130 B per distinct key failed this
def test_fused_frames_keep_no_memory_per_distinct_key() -> None:
    games, rounds = 300, 16
    lines = _moving_lines(games, rounds)
    keys = games * (1 + 4 * rounds)
    general = _retained(lines, False)
    fused = _retained(lines, True)
    per_key = (fused - general) / keys
    # 0f8d4cb: ~9 B per key (its bounded line-text tables); the engine itself keeps a cold key in
    # well under 120 B (API16), so a cache of ~130 B per key doubles a replay's memory
    assert per_key <= 48, f"the fused path holds {per_key:.0f} B per distinct key beyond its decoder"


# B16-3 (fixed by e4115c3): ~800 B more per game identity (~245 B per h2h key) failed this
@pytest.mark.parametrize("long_lines", ["kept as lines", "typed"])
def test_fused_frames_memory_per_identity_as_before(long_lines: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways the fused path keeps a long line's rows (review26's R26-10): within
    fused._LAZY_LONG_BYTES as the line + index (fused19), past it typed (its budget spent)."""
    if long_lines == "typed":
        monkeypatch.setattr(fused_module, "_LAZY_LONG_BYTES", 0)
    games = 4000
    lines = _h2h_only(games)
    per_key = (_retained(lines, True) - _retained(lines, False)) / (3 * games)
    # 0f8d4cb: -24 B per key (typed rows are smaller than the general decoder's dicts); now +245 B
    assert per_key <= 100, f"the fused path holds {per_key:.0f} B per key of h2h identities beyond its decoder"
    if long_lines == "kept as lines":  # (-38 B at 02e6503: the lines replace typed rows, never more than general's)
        assert per_key <= 0, f"lines kept whole cost {per_key:.0f} B per h2h key beyond the general decoder"


_SETTINGS = settings(max_examples=8, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_SETTINGS
@given(lines=st.lists(envelopes(), min_size=20, max_size=60),
       options=st.sampled_from(({}, {"reference": "anchor"}, {"reprime_after_suspension": False})))
def test_fused_equals_general_on_long_streams(tmp_path: Path, lines: list[bytes], options: dict[str, Any]) -> None:
    """Long adversarial streams (several 256-quote batches of the fused replay loop)."""
    assert_same([write(tmp_path / "s.ndjson", lines)], **options)


def test_fused_equals_general_on_lines_moving_on_and_back(tmp_path: Path) -> None:
    """A side's line moves away and back (the remembered key is found again), int and float
    spellings of one line (3 and 3.0, 0 and -0.0), repeated prices on hot keys across batches."""
    out = []
    t = T0
    spreads = (3, 3.0, 3.5, 0, -0.0, 3, 2.5, 3.0)
    for r in range(40):
        rows = []
        for g in range(12):
            t += 7
            hs = spreads[(r + g) % len(spreads)]
            rows.append({"kind": "game", "event_id": f"ev{g % 3}", "bookmaker": f"bk{g // 3}", "last_update": t,
                         "home_team": "H" if r % 5 else "H2", "home_ml": (-110, -125, -110.0, 110)[r % 4],
                         "home_spread": hs, "home_spread_price": (-110, -135)[(r // 3) % 2],
                         "total": 200 + 0.5 * (r % 3), "over_price": -110 - (r % 7) * 4})
        out.append(_ENC.encode({"type": "odds_update", "sport_key": "nba", "data": rows}))
    for options in ({}, {"reference": "anchor"}, {"threshold": 2}):
        assert assert_same([write(tmp_path / "m.ndjson", out)], **options)
