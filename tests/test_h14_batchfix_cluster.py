"""Issue 14 regression, sharded: a backtest (and a replay) with ``--workers 2`` over two
dictionary-encoded Parquet shards whose category sets differ (other events, a book only one of
them has, so other dictionaries and codes per file and per worker process) gives exactly what one
process gives: the same tables, types included, and the same files byte for byte.

Before the fix a dictionary-keyed backtest raised a polars SchemaError in every shard task."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from click.testing import CliRunner

from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.cli.group import main
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, load_table, replay_batch

pytest.importorskip("distributed")

from dropengine.cluster.shard import backtest_sharded, detect_sharded, open_client

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(90)]

ALL_TYPES = "odds_drop,line_move,steam"
_ENC = msgspec.json.Encoder()


def _run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One local cluster of 2 worker processes (what --workers 2 opens) for the module."""
    with open_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of two Parquet shards of a simulated recording, split by event; each file's
    text columns dictionary-encoded from its own values, and one book only in the second."""
    d = tmp_path_factory.mktemp("shards")
    code, _, err = _run(["simulate", "--events", "4", "--books", "3", "--hours", "1.5", "--props", "--line-moves",
                         "0.1", "--seed", "5", "--out", str(d / "all.parquet")])
    assert code == 0, err
    table = pl.read_parquet(d / "all.parquet")
    (d / "all.parquet").unlink()
    events = sorted(table.get_column("event_id").cast(pl.String).unique().to_list())
    only_b = sorted(set(table.get_column("bookmaker").cast(pl.String).to_list()) - {"pinnacle"})[0]
    event, book = pl.col("event_id").cast(pl.String), pl.col("bookmaker").cast(pl.String)
    first = table.filter(event.is_in(events[:2]) & (book != only_b))
    second = table.filter(~event.is_in(events[:2]))
    for name, part in (("a.parquet", first), ("b.parquet", second)):
        # the file's own dictionaries: only the values it holds, in its own order
        part.with_columns(pl.col(pl.Categorical).cast(pl.String).cast(pl.Categorical)).write_parquet(d / name)
    a, b = (load_table([d / n], "auto", ReplayStats())[0] for n in ("a.parquet", "b.parquet"))
    assert a.schema["bookmaker"] == b.schema["event_id"] == pl.Categorical  # the premise: dictionary keys
    assert set(a.get_column("event_id").to_list()).isdisjoint(b.get_column("event_id").to_list())
    assert only_b in b.get_column("bookmaker").to_list() and only_b not in a.get_column("bookmaker").to_list()
    return d


def test_sharded_backtest_equals_one_process(client: Any, shards: Path) -> None:
    """The per-alert table (types too), summary, counters and warnings of one process."""
    paths = sorted(shards.glob("*.parquet"))
    options = DetectOptions.build(types=ALL_TYPES)
    cfg = BacktestConfig(close="last", take="best-other", sharp="pinnacle")
    table, _ = load_table(paths, "auto", ReplayStats())
    one = run_backtest(table, cfg, options=options)
    sharded = backtest_sharded(client, paths, cfg, options, shards=2).backtest
    assert one.alerts.height > 100
    assert sharded.alerts.schema == one.alerts.schema
    assert sharded.alerts.equals(one.alerts)
    assert sharded.summary.equals(one.summary)
    assert (sharded.counters, sharded.warnings, sharded.types) == (one.counters, one.warnings, one.types)


def test_sharded_replay_equals_one_process(client: Any, shards: Path) -> None:
    """The merged alerts of shards with different category sets: one process's values and table,
    its Categorical columns included."""
    paths = sorted(shards.glob("*.parquet"))
    options = DetectOptions.build(types=ALL_TYPES)
    one = replay_batch(paths, "auto", ReplayStats(), options=options)
    sharded = detect_sharded(client, paths, options, "auto", ReplayStats(), shards=2)
    assert one.alerts.schema["event_id"] == pl.Categorical
    assert sharded.alerts.schema == one.alerts.schema
    assert sharded.alerts.equals(one.alerts)
    assert [_ENC.encode(a) for a in sharded.alert_values()] == [_ENC.encode(a) for a in one.alert_values()]
    assert sharded.counters == one.counters


def test_workers_2_write_the_files_of_one_process(client: Any, shards: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``backtest --workers 2 --out`` and ``replay --workers 2 --output x.parquet`` on the
    directory of shards (open_client(2) answered by the module's cluster of 2 workers): the files
    and lines of one process, byte for byte."""
    from dropengine.cluster import shard

    asked: list[tuple[int | None, str | None]] = []

    @contextlib.contextmanager
    def fake(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
        asked.append((workers, scheduler))
        yield client

    monkeypatch.setattr(shard, "open_client", fake)
    args = ["backtest", "--types", ALL_TYPES, "--close", "last", str(shards), "--out"]
    code, line, err = _run([*args, str(tmp_path / "one")])
    assert code == 0, err
    code, sharded_line, sharded_err = _run([*args, str(tmp_path / "sharded"), "--workers", "2"])
    assert code == 0, sharded_err
    assert (sharded_line.replace("sharded", "one"), sharded_err) == (line, err)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert {"alerts.parquet", "alerts.csv", "summary.csv", "report.md"} <= set(names)
    assert names == sorted(p.name for p in (tmp_path / "sharded").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "sharded" / name).read_bytes(), name
    args = ["replay", "--engine", "batch", "-q", "--types", ALL_TYPES, str(shards), "--output"]
    assert _run([*args, str(tmp_path / "one.parquet")])[0] == 0
    assert _run([*args, str(tmp_path / "sharded.parquet"), "--workers", "2"])[0] == 0
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "sharded.parquet").read_bytes()
    assert asked == [(2, None), (2, None)]


def test_sharded_replay_reads_decimal_tables_as_one_process(client: Any, shards: Path, tmp_path: Path) -> None:
    """Issue 15: a table of decimal prices (``--odds-format decimal``) shards as one process reads it
    (the client decodes it once through the same reader; before, --workers refused such inputs)."""
    from dropengine.core.odds import american_to_decimal
    from dropengine.io.inputs import InputOptions

    table = pl.concat([pl.read_parquet(p).with_columns(pl.col(pl.Categorical).cast(pl.String))
                       for p in sorted(shards.glob("*.parquet"))], how="diagonal_relaxed")
    dec = table.with_columns(pl.col("price").map_elements(american_to_decimal, return_dtype=pl.Float64))
    path = tmp_path / "decimal.csv"
    dec.write_csv(path)
    inputs = InputOptions(odds_format="decimal")
    options = DetectOptions.build(types=ALL_TYPES)
    one = replay_batch([path], "auto", ReplayStats(), options=options, inputs=inputs)
    merged = detect_sharded(client, [path], options, "auto", ReplayStats(), shards=2, inputs=inputs)
    assert one.alerts.height > 50
    got = [a.to_json() for chunk in merged.value_chunks() for a in chunk]
    assert got == [a.to_json() for a in one.alert_values()]
    assert merged.counters == one.counters
