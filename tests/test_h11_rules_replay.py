"""Issue 11, defect 3 end to end: a recording whose prices mix integers and fractions replays
through the batch engine to the stream engine's alerts, byte for byte (SPEC 4: prices keep
the type they arrived with). Needs the table builder (``io/replay``) to mark integer prices in
:data:`dropengine.analysis.batch.PRICE_INT_COLUMN`."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from dropengine import DropEngine, Quote, encode_drops
from dropengine.formats.sse import encode_event
from dropengine.formats.vendor import vendor_row
from dropengine.io.replay import ReplayStats, replay, replay_batch

_ENC = msgspec.json.Encoder()
PRICES = [-110, -140, -112.5, -130, 120, 131.5, -150, 100, -100.0, -125]


def _quotes() -> list[Quote]:
    return [Quote("basketball_nba", "ev1", "pinnacle", "h2h_home", p, 1_000 * (i + 1), home_team="A",
                  away_team="B", commence_time="2026-05-12T22:30:00Z") for i, p in enumerate(PRICES)]


def _envelope(q: Quote) -> bytes:
    return _ENC.encode({"type": "odds_update", "sport_key": q.sport_key, "data": [vendor_row(q)]})


def _write(tmp: Path, fmt: str) -> Path:
    if fmt == "frames":
        path = tmp / "rec.ndjson"
        path.write_bytes(b"".join(_envelope(q) + b"\n" for q in _quotes()))
    else:
        path = tmp / "rec.sse"
        path.write_bytes(b"".join(encode_event(_envelope(q)) for q in _quotes()))
    return path


@pytest.mark.parametrize("fmt", ["frames", "sse"])
@pytest.mark.parametrize("reference", ["last", "anchor"])
def test_batch_replay_equals_stream_replay_on_mixed_prices(tmp_path: Path, fmt: str, reference: str) -> None:
    path = _write(tmp_path, fmt)
    eng = DropEngine(threshold=10, reference=reference)
    stream = encode_drops(list(replay([path], eng, fmt, ReplayStats())))
    assert b'"prev":-110,"new":-140,"delta":-30' in stream and b"-112.5" in stream
    res = replay_batch([path], fmt, ReplayStats(), threshold=10, reference=reference)
    assert encode_drops(res.drops()) == stream
    assert res.counters == eng.counters
