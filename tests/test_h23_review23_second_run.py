"""review23 (session 16): when the Parquet paths detect a second time (io.replay.in_replay_order,
cluster/shard.py's _in_replay_order).

README (Sharded batch runs) says of the second detection in core/merge.py's order: "it runs only
when a skipped row was ahead of its file". The decision is whether a skipped row set its file's
clock (the running maximum of every row's time) higher: true of almost any skipped row with a valid
time in a time-sorted file (its time is a new maximum), though the order of the usable rows, and so
every alert, counter and skip, is then the same as loaded. The sharded path decides it per file
(io.tables.held_moves_clock) and also for ONE file, which one process never re-detects (one file's
clock never decreases: the merge is its own order). So a sharded replay of one time-sorted file with
one bad row runs every task twice.

Strict xfails (R23-1, R23-2 in /tmp/notes/review23-findings.md): each states that the detection
runs once for such input, beside the rule's result (stream == batch; sharded == one process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from dropengine import DropEngine
from dropengine.analysis import batch
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, replay, replay_batch

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA

_ENC = msgspec.json.Encoder()
_OPTIONS = DetectOptions.build(threshold=5)


def _row(t: int, price: float, sport: str | None = "basketball_nba") -> dict[str, Any]:
    return {
        "sport_key": sport,
        "event_id": "E1",
        "bookmaker": "pin",
        "side": "h2h_home",
        "price": price,
        "last_update": t,
        "market_key": "h2h",
        "line": None,
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    pl.DataFrame(rows, schema=QUOTE_SCHEMA).write_parquet(path)
    return path


@pytest.fixture
def sorted_files(tmp_path: Path) -> list[Path]:
    """Two time-sorted files quoting one key; a row without its sport at 2000 in the first, in its
    time order (not ahead of its file: the next usable row is at 3000)."""
    return [
        _write(tmp_path / "a.parquet", [_row(1000, -110.0), _row(2000, -150.0, None), _row(3000, -130.0)]),
        _write(tmp_path / "b.parquet", [_row(1500, -120.0), _row(4000, -180.0)]),
    ]


def _detections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each batch detection (replay_batch imports detect_counted when called)."""
    calls: list[int] = []
    real = batch.detect_counted

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "detect_counted", spy)
    return calls


def test_the_rule_holds_on_the_sorted_files(sorted_files: list[Path]) -> None:
    """The input of the xfail below, detected: the batch replay is the stream engine's (alerts,
    counters, skip report), whatever the number of detections."""
    require_fast()
    engine = DropEngine(options=_OPTIONS)
    stream_stats, batch_stats = ReplayStats(), ReplayStats()
    stream = [_ENC.encode(a) for a in replay(sorted_files, engine, "auto", stream_stats)]
    got = replay_batch(sorted_files, "auto", batch_stats, options=_OPTIONS)
    assert [_ENC.encode(a) for a in got.alert_values()] == stream
    assert got.counters == engine.counters
    assert batch_stats == stream_stats
    assert sum(batch_stats.skips.counts.values()) == 1


@pytest.mark.xfail(strict=True, reason="R23-1: a skipped row in its file's time order re-detects everything")
def test_a_skipped_row_in_time_order_is_detected_once(
    sorted_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usable rows' order (and the skipped rows') is the same by every row's time and by the
    rule's clock: the first detection is the rule's, so there is one (README: "it runs only when a
    skipped row was ahead of its file")."""
    require_fast()
    calls = _detections(monkeypatch)
    replay_batch(sorted_files, "auto", ReplayStats(), options=_OPTIONS)
    assert len(calls) == 1


# -- sharded (a Dask LocalCluster of 2 workers for the module) ------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    pytest.importorskip("distributed")
    from dropengine.cluster.shard import open_client

    with open_client(workers=2) as c:
        yield c


@pytest.mark.cluster
@pytest.mark.timeout(180)
@pytest.mark.xfail(strict=True, reason="R23-2: the sharded path runs one Parquet file's tasks twice")
def test_one_file_sharded_runs_its_tasks_once(client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One time-sorted Parquet file with a bad row: one process detects once (one file is its own
    replay order); the sharded replay gives its result and gathers its tasks once."""
    require_fast()
    from dropengine.cluster import shard

    path = _write(tmp_path / "one.parquet", [_row(1000, -110.0), _row(2000, -150.0, None), _row(3000, -130.0)])
    one = replay_batch([path], "auto", ReplayStats(), options=_OPTIONS)
    gathered: list[int] = []
    real = shard._gather

    def spy(c: Any, futures: list[Any], on_shard: Any) -> list[Any]:
        gathered.append(len(futures))
        return real(c, futures, on_shard)

    monkeypatch.setattr(shard, "_gather", spy)
    sharded = shard.detect_sharded(client, [path], _OPTIONS, "auto", ReplayStats(), shards=2)
    assert sharded.alerts.equals(one.alerts) and sharded.counters == one.counters
    assert gathered == [2]
