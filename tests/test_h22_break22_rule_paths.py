"""break22 (session 15): core/merge.py's rule for skipped rows on every batch path.

7ef5134 made ``replay --engine batch`` of several Parquet files follow the rule (a skipped row's
time moves no file clock), as the stream engine does. The rule decides more than the order of the
alerts: when one key is quoted in two files, a skipped row whose time is ahead of its file moved
that file's later rows behind the other file's, so one of the key's quotes came after a newer one
and was counted stale: another alert set. Here: key (E1, pin, h2h_home) in a.parquet at 1000, 3000
(and a row without sport_key at 9000) and in b.parquet at 2000, 4000, 5000. By the rule the key
sees 1000, 2000, 3000, 4000, 5000: 4 drops, nothing stale. By every row's time: 3000 comes after
4000 and is stale: 3 drops.

- stream == batch (one process): the rule's 4 drops (passes since 7ef5134);
- B22-5, B22-6 (break22-findings.md; strict xfails until ord16, session 16): the sharded replay
  (``--workers``: replay --help promises "the same alerts, in the same order, and the same summary as
  one process") and the backtest (cli/backtest.py: io.replay.replay_backtest) detect the rule's 4 too.
  Both detected 3 (one stale) by every row's time (cluster/shard.py's clock; load_table's order).
  tests/test_h23_ord16_rule_order.py states it as a property over generated inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dropengine import DropEngine
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, load_table, replay, replay_backtest, replay_batch

from .conftest import require_fast

_SCHEMA = {
    "sport_key": pl.String,
    "event_id": pl.String,
    "bookmaker": pl.String,
    "side": pl.String,
    "price": pl.Int64,
    "last_update": pl.Int64,
    "commence_time": pl.String,
}
_RULE = [(2000, -110, -130), (3000, -130, -150), (4000, -150, -110), (5000, -110, -160)]


def _row(t: int, price: int, sport: str | None = "basketball_nba") -> dict[str, Any]:
    return {
        "sport_key": sport,
        "event_id": "E1",
        "bookmaker": "pin",
        "side": "h2h_home",
        "price": price,
        "last_update": t,
        "commence_time": "2026-12-01T20:00:00Z",
    }


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.DataFrame([_row(1000, -110), _row(9000, -300, sport=None), _row(3000, -150)], schema=_SCHEMA).write_parquet(a)
    pl.DataFrame([_row(2000, -130), _row(4000, -110), _row(5000, -160)], schema=_SCHEMA).write_parquet(b)
    return [a, b]


_OPTIONS = DetectOptions.build(threshold=5)


def _moves(alerts: pl.DataFrame) -> list[tuple[int, int, int]]:
    return [(r["last_update"], r["prev"], r["new"]) for r in alerts.iter_rows(named=True)]


def test_the_stream_and_the_batch_engine_detect_by_the_rule(files: list[Path]) -> None:
    require_fast()
    engine = DropEngine(threshold=5)
    stream = [(a.last_update, a.prev, a.new) for a in replay(files, engine, "auto", ReplayStats())]
    assert stream == _RULE and engine.counters.stale == 0
    batch = replay_batch(files, "auto", ReplayStats(), options=_OPTIONS)
    assert _moves(batch.alerts) == _RULE and batch.counters.stale == 0


def test_the_backtest_detects_what_replay_detects(files: list[Path]) -> None:
    require_fast()
    from dropengine.analysis.backtest import BacktestConfig

    table, where = load_table(files, "auto", ReplayStats())
    got = replay_backtest(table, where, BacktestConfig(), _OPTIONS)
    assert _moves(got.alerts) == _RULE and got.counters.stale == 0


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_the_sharded_replay_detects_what_one_process_detects(client: Any, files: list[Path]) -> None:
    require_fast()
    from dropengine.cluster.shard import detect_sharded

    sharded = detect_sharded(client, files, _OPTIONS, "auto", ReplayStats(), shards=2)
    assert _moves(sharded.alerts) == _RULE and sharded.counters.stale == 0


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_the_sharded_backtest_detects_what_replay_detects(client: Any, files: list[Path]) -> None:
    require_fast()
    from dropengine.analysis.backtest import BacktestConfig
    from dropengine.cluster.shard import backtest_sharded

    got = backtest_sharded(client, files, BacktestConfig(), _OPTIONS, "auto", ReplayStats(), shards=2).backtest
    assert _moves(got.alerts) == _RULE and got.counters.stale == 0
