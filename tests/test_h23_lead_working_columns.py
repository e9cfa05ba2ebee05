"""A Parquet file's own columns named like the batch path's working columns (``_now``, the
arrival stamp of a decoded recording; ``_price_int``, which prices arrived as ints) are no quote
field: every path reads the file as the stream engine does, ignoring them (break23's B23-2: the
batch engine stamped every alert with a user's ``_now`` and printed int prices as floats under a
``_price_int`` of false). One file, several files, the backtest and the sharded run alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from dropengine import DropEngine
from dropengine.analysis.backtest import BacktestConfig
from dropengine.analysis.batch import PRICE_INT_COLUMN
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, load_table, replay, replay_backtest, replay_batch
from dropengine.io.tables import WORKING_COLUMNS

from .conftest import require_fast

_ENC = msgspec.json.Encoder()
_OPTIONS = DetectOptions.build(threshold=5)
_EXTRA = {"_now": 7, "_price_int": False}


def _rows(event: str, prices: list[Any], t0: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"sport_key": "basketball_nba", "event_id": event, "bookmaker": "pin", "side": "h2h_home", "price": p,
         "last_update": t0 + 1000 * i, **extra}
        for i, p in enumerate(prices)
    ]


def _files(tmp: Path, extra: dict[str, Any]) -> list[Path]:
    """Two files, one with float prices (so the batch path's mixed-price column is in play)."""
    a, b = tmp / "a.parquet", tmp / "b.parquet"
    pl.DataFrame(_rows("E1", [-110, -130, -150], 1000, **extra)).write_parquet(a)
    pl.DataFrame(_rows("E2", [-110.5, -130.5, -150.5], 1500, **extra)).write_parquet(b)
    return [a, b]


def test_the_working_columns_are_the_batch_paths_own_names() -> None:
    assert PRICE_INT_COLUMN in WORKING_COLUMNS and "_now" in WORKING_COLUMNS


@pytest.mark.parametrize("n_files", [1, 2])
def test_every_path_ignores_a_files_columns_with_working_names(tmp_path: Path, n_files: int) -> None:
    require_fast()
    (tmp_path / "plain").mkdir()
    (tmp_path / "named").mkdir()
    plain = _files(tmp_path / "plain", {})[:n_files]
    named = _files(tmp_path / "named", _EXTRA)[:n_files]
    engine = DropEngine(options=_OPTIONS)
    stream = [_ENC.encode(a) for a in replay(named, engine, "auto", ReplayStats())]
    assert len(stream) == 2 * n_files
    for paths in (plain, named):
        batch = replay_batch(paths, "auto", ReplayStats(), options=_OPTIONS)
        assert [_ENC.encode(a) for a in batch.alert_values()] == stream
    cfg = BacktestConfig(close="last")
    backtests = []
    for paths in (plain, named):
        table, where = load_table(paths, "auto", ReplayStats())
        assert "_now" not in table.columns
        backtests.append(replay_backtest(table, where, cfg, _OPTIONS).alerts)
    assert backtests[0].equals(backtests[1])


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_the_sharded_run_ignores_them_too(client: Any, tmp_path: Path) -> None:
    require_fast()
    from dropengine.cluster.shard import detect_sharded

    (tmp_path / "plain").mkdir()
    (tmp_path / "named").mkdir()
    plain, named = _files(tmp_path / "plain", {}), _files(tmp_path / "named", _EXTRA)
    want = replay_batch(plain, "auto", ReplayStats(), options=_OPTIONS)
    got = detect_sharded(client, named, _OPTIONS, "auto", ReplayStats(), shards=2)
    assert [_ENC.encode(a) for a in got.alert_values()] == [_ENC.encode(a) for a in want.alert_values()]
    assert got.counters == want.counters
