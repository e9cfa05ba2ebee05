"""fix17 (session 17): the batch skip report of several Parquet files, without a second detection
when only its order changes (review23's R23-4), and with each price as its file holds it (break23's
B23-1b) on the sharded path too.

R23-4: Parquet files are loaded in the order of every row's time; core/merge.py's order lets no
skipped row move its file's clock. When that changes only the skipped rows' order among themselves
(two files' bad rows whose clocks swap), the alerts and counters are those of the first detection
(the detector judges a row alone; a skipped row moves nothing): the report is re-sorted instead of
detecting again (io.tables.held_rows_reorder decides for both paths: HeldReorder). A held row that
changes a usable row's clock still detects again. Pinned: the number of detections (one process:
batch.detect_counted; sharded: the task runs gathered), and the stream engine's alerts, counters and
skip report (one per reason listed, so which rows are listed depends on the order) as properties.
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
from dropengine.core.options import DetectOptions
from dropengine.core.skips import SkipLog
from dropengine.io.replay import ReplayStats, replay, replay_batch

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA
from .test_h23_review23_second_run import _detections

_ENC = msgspec.json.Encoder()
_OPTIONS = DetectOptions.build(threshold=5)
_FAULT: dict[str, dict[str, Any]] = {
    "no sport": {"sport_key": None},
    "no event": {"event_id": None},
    "bad side": {"side": "sideways"},
}


def _row(t: int, price: float, fault: str | None = None, event: str = "E1", side: str = "h2h_home") -> dict[str, Any]:
    row = {
        "sport_key": "basketball_nba",
        "event_id": event,
        "bookmaker": "pin",
        "side": side,
        "price": price,
        "last_update": t,
        "market_key": "h2h",
        "line": None,
    }
    return row if fault is None else {**row, **_FAULT[fault]}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    pl.DataFrame(rows, schema=QUOTE_SCHEMA).write_parquet(path)
    return path


def _stats() -> ReplayStats:
    """One listed skip per reason: which rows are listed depends on their order."""
    return ReplayStats(skips=SkipLog(keep=6, per_reason=1))


def _swapped(tmp: Path) -> list[Path]:
    """Two time-sorted files, a bad row in each (review23's r234.py): by every row's time b's bad row
    (clock 3000) comes before a's (5000); by the rule's clock a's (1000) before b's (2000). Every usable
    row's clock is the same both ways."""
    return [
        _write(tmp / "a.parquet", [_row(1000, -110.0), _row(5000, -150.0, "no sport"), _row(6000, -130.0)]),
        _write(tmp / "b.parquet", [_row(2000, -120.0), _row(3000, -160.0, "no sport"), _row(7000, -180.0)]),
    ]


def _ahead(tmp: Path) -> list[Path]:
    """A bad row far ahead of its file: by every row's time it holds a's clock at 9000, so a's row at
    2000 came after b's at 3000; by the rule's clock it comes first (the usable rows' order changes)."""
    return [
        _write(tmp / "a.parquet", [_row(1000, -110.0), _row(9000, -150.0, "no sport"), _row(2000, -130.0)]),
        _write(tmp / "b.parquet", [_row(1500, -120.0), _row(3000, -160.0)]),
    ]


def _stream_and_batch(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> tuple[ReplayStats, int]:
    """The batch replay of ``paths`` checked against the stream engine's (alerts byte for byte,
    counters, the whole skip report); its skip report and how many detections it ran."""
    engine = DropEngine(options=_OPTIONS)
    stream_stats, batch_stats = _stats(), _stats()
    stream = [_ENC.encode(a) for a in replay(paths, engine, "auto", stream_stats)]
    with monkeypatch.context() as mp:
        calls = _detections(mp)
        got = replay_batch(paths, "auto", batch_stats, options=_OPTIONS)
    assert [_ENC.encode(a) for a in got.alert_values()] == stream
    assert got.counters == engine.counters
    assert batch_stats == stream_stats
    return batch_stats, len(calls)


def test_only_the_skip_reports_order_changes_one_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_fast()
    stats, detections = _stream_and_batch(_swapped(tmp_path), monkeypatch)
    assert [s.where for s in stats.skips.first] == ["a.parquet:row 2"]  # the rule's first (b's came first by time)
    assert detections == 1


def test_a_held_row_that_moves_a_usable_rows_clock_detects_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_fast()
    _, detections = _stream_and_batch(_ahead(tmp_path), monkeypatch)
    assert detections == 2


#: a time-sorted file's rows: (event, side, time step, what makes it bad or None, price)
_sorted_row = st.tuples(
    st.sampled_from(["E1", "E2", "E3"]),
    st.sampled_from(["h2h_home", "h2h_away"]),
    st.sampled_from([0, 1, 500, 1000]),
    st.sampled_from([None, None, None, *_FAULT]),
    st.sampled_from([-110.0, -130.0, -150.0, 105.0, 120.0]),
)
_files = st.lists(st.lists(_sorted_row, min_size=1, max_size=8), min_size=2, max_size=3)


def _write_sorted(tmp: Path, files: list[list[tuple[str, str, int, str | None, float]]], start: int) -> list[Path]:
    """Each file sorted by time (its bad rows too, in any file): no held row changes a usable row's
    clock, but two files' held rows may change places."""
    paths = []
    for f, rows in enumerate(files):
        t = start + 100 * f
        table = []
        for event, side, step, fault, price in rows:
            t += step
            table.append(_row(t, price, fault, event, side))
        paths.append(_write(tmp / f"s{f}.parquet", table))
    return paths


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=_files, start=st.integers(0, 3000))
def test_time_sorted_files_with_bad_rows_anywhere_detect_once(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    files: list[list[tuple[str, str, int, str | None, float]]],
    start: int,
) -> None:
    """Property: time-sorted Parquet files with bad rows in any of them give the stream engine's
    alerts, counters and skip report from one detection."""
    require_fast()
    paths = _write_sorted(tmp_path_factory.mktemp("sorted"), files, start)
    _, detections = _stream_and_batch(paths, monkeypatch)
    assert detections == 1


# -- sharded (the Dask LocalCluster of tests/conftest.py's `client`, 2 workers per module) -----------


def _sharded(
    client: Any, paths: list[Path], monkeypatch: pytest.MonkeyPatch, shards: int = 2
) -> tuple[list[int], ReplayStats]:
    """The sharded replay of ``paths`` checked against one process's (alerts, counters, the whole
    skip report); the number of tasks of each run it gathered, and its skip report."""
    from dropengine.cluster import shard

    one_stats, sharded_stats = _stats(), _stats()
    one = replay_batch(paths, "auto", one_stats, options=_OPTIONS)
    gathered: list[int] = []
    real = shard._gather

    def spy(c: Any, futures: list[Any], on_shard: Any) -> list[Any]:
        gathered.append(len(futures))
        return real(c, futures, on_shard)

    with monkeypatch.context() as mp:
        mp.setattr(shard, "_gather", spy)
        sharded = shard.detect_sharded(client, paths, _OPTIONS, "auto", sharded_stats, shards=shards)
    assert [_ENC.encode(a) for a in sharded.alert_values()] == [_ENC.encode(a) for a in one.alert_values()]
    assert sharded.counters == one.counters
    assert sharded_stats == one_stats
    return gathered, sharded_stats


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_sharded_only_the_skip_reports_order_changes_one_run(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both bad rows are in one shard (one event): it lists each file's first of a reason, so the
    report can take a's though b's came first in the shard's order."""
    require_fast()
    gathered, stats = _sharded(client, _swapped(tmp_path), monkeypatch)
    assert [s.where for s in stats.skips.first] == ["a.parquet:row 2"]
    assert gathered == [2]


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_sharded_a_held_row_that_moves_a_usable_rows_clock_runs_again(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_fast()
    assert _sharded(client, _ahead(tmp_path), monkeypatch)[0] == [2, 2]


@pytest.mark.cluster
@pytest.mark.timeout(300)
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(files=_files, start=st.integers(0, 3000), shards=st.integers(1, 3))
def test_sharded_time_sorted_files_with_bad_rows_anywhere_run_once(
    client: Any,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    files: list[list[tuple[str, str, int, str | None, float]]],
    start: int,
    shards: int,
) -> None:
    """Property: the sharded replay of time-sorted files with bad rows anywhere is one process's
    (alerts, counters, skip report) from one run of its tasks."""
    require_fast()
    paths = _write_sorted(tmp_path_factory.mktemp("sharded"), files, start)
    assert _sharded(client, paths, monkeypatch, shards)[0] == [shards]


# -- B23-1b on the sharded path: an int price of an Int64 file among Float64 ones -----------------


@pytest.mark.cluster
@pytest.mark.timeout(180)
@pytest.mark.parametrize("price", [0, 2**53 + 1])
def test_sharded_skip_message_quotes_the_price_as_its_file_holds_it(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, price: int
) -> None:
    require_fast()
    ints, floats = tmp_path / "a.parquet", tmp_path / "b.parquet"
    line = {"side": "spread_home@-3", "market_key": "spreads", "line": -3.0}
    # a line-only observation with a price is skipped, its message quoting the price
    pl.DataFrame(
        [{**_row(1000, -110.0), **line, "line_only": False}, {**_row(1500, price), **line, "line_only": True}],
        schema_overrides={"price": pl.Int64, "line": pl.Float64},
    ).write_parquet(ints)
    _write(floats, [_row(1200, -110.0, event="E2"), _row(2200, -130.5, event="E2")])
    stream_stats = _stats()
    list(replay([ints, floats], DropEngine(options=_OPTIONS), "auto", stream_stats))
    assert [s.message for s in stream_stats.skips.first] == [
        f"line_only: a line-only observation has no price (got {price})"
    ]
    assert _sharded(client, [ints, floats], monkeypatch)[1] == stream_stats
