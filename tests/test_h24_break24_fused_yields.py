"""break24 (session 17): where the fused replay yields, for a caller that evicts between its yields.

fused16 pinned (tests/test_h23_fused16_records.py) that a caller evicting between the replay's yields
gets the same alerts on the fused path as on the general decoder's, one envelope a batch on both paths:
each yield then falls after a whole envelope is applied, so each eviction meets the same state. Since
f3640d2 the fused replay applies a large envelope's observations every ``_FLUSH_ROWS`` rows while it is
decoded and yields their alerts right after the envelope, before the envelope's last rows are applied:
the caller evicts in a state no other path shows (part of an envelope applied), and a key the rest of
the envelope quotes is forgotten before its price is seen (B24-1). fused16's test has envelopes of at
most four rows, under the flush interval of 32, so it does not see it. Fixed in 6973380 (after an
envelope that flushed, its last rows are applied too before the yield); this test fails at f3640d2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dropengine.io.replay as replay_mod
from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.io.replay import ReplayStats, replay

from .test_h23_fused16_records import envelope_lines


def _game(event: str, t: int, price: int) -> dict[str, Any]:
    return {"kind": "game", "event_id": event, "bookmaker": "pin", "last_update": t, "home_ml": price}


def _evicting(path: Path, fused_path: bool) -> tuple[Any, ...]:
    """The replay of ``path`` by a caller that evicts after each alert the keys not updated in the
    second before it: the alerts' events, the alerts, counters and state."""
    engine = DropEngine(threshold=5)
    got = []
    for alert in replay([path], engine, "frames", ReplayStats(), fused=fused_path):
        got.append(alert)
        engine.evict(alert.last_update - 1000)
    return [a.event_id for a in got], encode_alerts(got), engine.counters, engine.snapshot()


def test_a_40_row_envelope_evicted_between_yields_fused_equals_general(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """e1 and e2 primed at 1000; then one envelope at 100000 of 40 rows: e2's drop first, 38 new
    events, e1's drop last. The general path (one envelope a batch, fused16's setting) applies the
    envelope whole before the caller evicts after e2's alert: e1 was just updated and stays, its drop
    alerts. The fused path yields e2's alert after the flush at row 33, e1 not yet applied: the
    eviction forgets e1 and its price primes again."""
    monkeypatch.setattr(replay_mod, "_BATCH", 1)
    monkeypatch.setattr(replay_mod, "_FUSED_BATCH", 1)
    first = [_game("e1", 1000, -110), _game("e2", 1000, -110)]
    big = [_game("e2", 100_000, -150), *(_game(f"x{i}", 100_000, -110) for i in range(38)), _game("e1", 100_000, -150)]
    path = tmp_path / "r.ndjson"
    path.write_bytes(b"\n".join(envelope_lines([first, big])) + b"\n")
    general = _evicting(path, False)
    assert general[0] == ["e2", "e1"]
    assert _evicting(path, True) == general
