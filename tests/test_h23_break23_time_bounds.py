"""break23 (session 16), B23-6: times at the top of the accepted range (``last_update`` up to
2**63 - 1 ms is a valid time: core.quote) give the compiled batch path the stream engine's steams.

The compiled routing (fast/signals.py) tested a steam group's cooldown as ``t < fired + window``
in int64: with ``fired`` near 2**63 the sum wrapped negative, the cooldown was never on, and the
group fired again on every move (3 steams where the stream engine and the pure batch path give 1);
fixed by testing ``t - fired < window``.
The control (cooldown of a key's alerts at the same times) agrees on every path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from dropengine import DropEngine
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, replay, replay_batch

from .conftest import require_fast

_ENC = msgspec.json.Encoder()
_TOP = 2**63 - 1  # the largest time a quote takes


def _row(book: str, price: int, t: int) -> dict[str, Any]:
    return {
        "sport_key": "basketball_nba",
        "event_id": "E1",
        "bookmaker": book,
        "side": "h2h_home",
        "price": price,
        "last_update": t,
        "market_key": "h2h",
    }


def _both(path: Path, options: DetectOptions) -> tuple[list[bytes], list[bytes], DropEngine, Any]:
    engine = DropEngine(options=options)
    stream = [_ENC.encode(a) for a in replay([path], engine, "auto", ReplayStats())]
    batch = replay_batch([path], "auto", ReplayStats(), options=options)
    return stream, [_ENC.encode(a) for a in batch.alert_values()], engine, batch


def test_a_key_cooldown_at_the_top_of_the_time_range_is_the_stream_engines(tmp_path: Path) -> None:
    """The control: a cooldown of 60 s runs from an alert 3 ms before the largest time."""
    require_fast()
    path = tmp_path / "q.parquet"
    pl.DataFrame([_row("pin", -110, _TOP - 5), _row("pin", -130, _TOP - 3), _row("pin", -150, _TOP)]).write_parquet(
        path
    )
    options = DetectOptions.build(threshold=5, types="odds_drop,line_move", cooldown_ms=60_000)
    stream, batch, engine, result = _both(path, options)
    assert len(stream) == 1 and engine.counters.cooled == 1
    assert batch == stream
    assert result.counters == engine.counters


def test_a_steam_groups_cooldown_at_the_top_of_the_time_range_is_the_stream_engines(tmp_path: Path) -> None:
    """Two books move together three times at the largest time: one steam (the group's cooldown
    of one window holds the others back) on every path."""
    require_fast()
    path = tmp_path / "q.parquet"
    rows = [
        _row(book, price, t)
        for price, t in ((-110, _TOP - 5), (-130, _TOP), (-150, _TOP), (-170, _TOP))
        for book in ("pin", "dk")
    ]
    pl.DataFrame(rows).write_parquet(path)
    options = DetectOptions.build(threshold=5, types="odds_drop,steam", steam_books=2)
    stream, batch, engine, result = _both(path, options)
    assert engine.counters.steam == 1  # the stream engine's (SPEC 11's cooldown)
    assert batch == stream
    assert result.counters == engine.counters
