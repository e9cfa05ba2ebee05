"""review23 (session 16): when the Parquet paths detect a second time (io.replay.in_replay_order,
cluster/shard.py's _in_replay_order; the decision: io.tables.held_rows_reorder).

At 20577eb the second detection in core/merge.py's order ran whenever a skipped row had set its
file's clock (the running maximum of every row's time) higher: true of almost any skipped row with a
valid time in a time-sorted file (its time a new maximum), though the usable rows' order, and so every
alert, counter and skip, was the same as loaded (README: "it runs only when a skipped row was ahead of
its file"): R23-1, 1M quotes in two files + one such row, 2 detections, CPU 0.37-0.47 vs 0.23-0.25 s.
The sharded path decided it per file, also for ONE file, which one process never re-detects: every
task ran twice (R23-2). Fixed by c065ce0 (one predicate for both paths: R23-3).

Pinned here: one detection for such input beside the rule's result (stream == batch; sharded == one
process), on one example each and as a property over time-sorted files (it fails at f6a99d2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.analysis import batch
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, replay, replay_batch

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA, h2h_row

_ENC = msgspec.json.Encoder()
_OPTIONS = DetectOptions.build(threshold=5)


def _row(t: int, price: float, sport: str | None = "basketball_nba") -> dict[str, Any]:
    return h2h_row(t, price, sport=sport)


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
    """The input of the test below, detected: the batch replay is the stream engine's (alerts,
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


#: a sorted file's rows: (event, side, time step, what makes it bad or None, price); bad rows in
#: the first file only (where two files' bad rows swap places in the skip report, only the report is
#: re-sorted: tests/test_h24_fix17_skip_report.py pins that case)
_sorted_row = st.tuples(
    st.sampled_from(["E1", "E2"]),
    st.sampled_from(["h2h_home", "h2h_away"]),
    st.sampled_from([0, 0, 1, 500, 1000]),
    st.sampled_from([None, None, None, "no sport", "no event", "bad side"]),
    st.sampled_from([-110.0, -130.0, -150.0, 105.0, 120.0]),
)
_FAULT: dict[str, dict[str, Any]] = {
    "no sport": {"sport_key": None},
    "no event": {"event_id": None},
    "bad side": {"side": "sideways"},
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.lists(_sorted_row, min_size=1, max_size=8), min_size=2, max_size=3), start=st.integers(0, 3000)
)
def test_time_sorted_files_are_detected_once_in_the_rules_order(
    tmp_path_factory: pytest.TempPathFactory, files: list[list[tuple[str, str, int, str | None, float]]], start: int
) -> None:
    """Property: Parquet files each sorted by time, bad rows (valid times, in their file's order) in
    one of them: the stream engine's alerts, counters and skips, from one detection (no bad row is
    ahead of its file, so the order by every row's time is the rule's for every row that counts)."""
    require_fast()
    tmp = tmp_path_factory.mktemp("sorted")
    paths = []
    for f, rows in enumerate(files):
        t = start + 100 * f
        table = []
        for event, side, step, fault, price in rows:
            t += step
            row = {**_row(t, price), "event_id": event, "side": side}
            table.append({**row, **_FAULT[fault]} if fault is not None and f == 0 else row)
        paths.append(_write(tmp / f"s{f}.parquet", table))
    engine = DropEngine(options=_OPTIONS)
    stream_stats, batch_stats = ReplayStats(), ReplayStats()
    stream = [_ENC.encode(a) for a in replay(paths, engine, "auto", stream_stats)]
    with pytest.MonkeyPatch.context() as mp:
        calls = _detections(mp)
        got = replay_batch(paths, "auto", batch_stats, options=_OPTIONS)
    assert [_ENC.encode(a) for a in got.alert_values()] == stream
    assert got.counters == engine.counters
    assert batch_stats == stream_stats
    assert len(calls) == 1


# -- sharded (the Dask LocalCluster of tests/conftest.py's `client`, 2 workers per module) -----------


@pytest.mark.cluster
@pytest.mark.timeout(180)
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
