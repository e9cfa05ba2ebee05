"""Issue 13: sharded batch work (``--workers``/``--scheduler``) gives exactly the single-process
output, in the same order: alerts of every type, counters, skips with their positions, the
written files, the backtest tables and summary.

One LocalCluster (2 worker processes) serves the whole module; the command-line tests reach it
with ``--scheduler ADDRESS`` (a ``--workers`` run starts its own cluster, done once). The
reference is always one process: :func:`dropengine.io.replay.replay_batch` and
:func:`dropengine.analysis.backtest.run_backtest`, or the same command without the flags.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.cli.group import main
from dropengine.core.alerts import Alert
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.io.replay import ReplayStats, load_table, replay, replay_batch
from dropengine.io.tables import write_quote_table

from .conftest import require_data
from .strategies import quote_streams, signal_options

pytest.importorskip("distributed")

from dropengine.cluster.shard import (
    backtest_sharded,
    detect_sharded,
    open_client,
    partition_expr,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

_ENC = msgspec.json.Encoder()
SERIES = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
ALL_TYPES = "odds_drop,line_move,steam"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One local cluster of 2 worker processes for the module, closed at its end."""
    with open_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def address(client: Any) -> str:
    return str(client.scheduler.address)


def wire(alerts: list[Alert] | tuple[Alert, ...]) -> list[bytes]:
    return [_ENC.encode(a) for a in alerts]


# -- the shard rule ---------------------------------------------------------------------------


def test_partition_expr_is_partition_of() -> None:
    """The shard of a row is core.partition's of its event_id (one rule for bus and shards);
    rows without one go to shard 0."""
    ids = ["ev1", "ev2", "é", "", "a" * 300, None, "ev1"]
    got = pl.DataFrame({"event_id": ids}).select(partition_expr(7)).to_series().to_list()
    assert got == [0 if e is None else partition_of(e, 7) for e in ids]


# -- hypothesis: sharded == one process --------------------------------------------------------


@st.composite
def interleaved(draw: st.DrawFn) -> list[Quote]:
    """Two drawn streams (lines moving, every kind of adversarial price), the second's events
    renamed, interleaved at random: more events than one stream has, so the shards hold
    different events whose alerts must be merged back into arrival order."""
    a = draw(quote_streams(lines=True, max_len=25))
    b = [msgspec.structs.replace(q, event_id=q.event_id + "-b") for q in draw(quote_streams(max_len=25))]
    picks = draw(st.lists(st.booleans(), min_size=len(a) + len(b), max_size=len(a) + len(b)))
    out: list[Quote] = []
    i = j = 0
    for take_a in picks:
        if (take_a and i < len(a)) or j >= len(b):
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out


def _options(opts: dict[str, Any]) -> DetectOptions:
    return DetectOptions.build(**{k: (",".join(sorted(v)) if isinstance(v, frozenset) else v) for k, v in opts.items()})


@given(quotes=interleaved(), opts=signal_options(), layout=st.sampled_from(("parquet", "two-parquet", "ndjson",
                                                                             "csv")),
       shards=st.integers(1, 4))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
def test_sharded_detect_equals_one_process(client: Any, tmp_path: Path, quotes: list[Quote], opts: dict[str, Any],
                                           layout: str, shards: int) -> None:
    """Every type combination (and every signal option), on tables (one or two Parquet files,
    merged by clock; NDJSON and CSV decoded by the client): the same alerts byte for byte in
    the same order, the same alerts table, counters, skip counts and skip report."""
    options = _options(opts)
    d = tmp_path / f"in-{layout}-{len(quotes)}-{shards}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    if layout == "two-parquet":
        half = len(quotes) // 2
        paths = [d / "a.parquet", d / "b.parquet"]
        write_quote_table(paths[0], quotes[:half])
        write_quote_table(paths[1], quotes[half:])
    else:
        paths = [d / f"q.{layout}"]
        write_quote_table(paths[0], quotes)
    one_stats, sharded_stats = ReplayStats(), ReplayStats()
    one = replay_batch(paths, "auto", one_stats, options=options)
    sharded = detect_sharded(client, paths, options, "auto", sharded_stats, shards=shards)
    assert wire(sharded.alert_values()) == wire(one.alert_values())
    assert sharded.alerts.equals(one.alerts)
    assert sharded.alerts.schema == one.alerts.schema
    assert sharded.counters == one.counters
    assert sharded.skipped == one.skipped
    assert sharded_stats == one_stats


def test_a_skipped_row_keeps_its_position(client: Any, tmp_path: Path) -> None:
    """Rows set aside before detection are reported at their input positions, in input order,
    whichever shard held them (a bad side on every third row of 8 events, a missing event id)."""
    n = 24
    events: list[str | None] = [f"e{i % 8}" for i in range(n)]
    events[7] = None
    rows = pl.DataFrame({
        "sport_key": ["s"] * n, "event_id": events, "bookmaker": ["b"] * n,
        "side": ["no such side@x" if i % 3 == 1 else "h2h_home" for i in range(n)],
        "price": [-110 - 10 * (i % 4) for i in range(n)], "last_update": list(range(n)),
    })
    assert len({partition_of(e, 3) for e in events if e is not None}) == 3
    path = tmp_path / "q.parquet"
    rows.write_parquet(path)
    one_stats, sharded_stats = ReplayStats(), ReplayStats()
    replay_batch([path], "auto", one_stats)
    detect_sharded(client, [path], DetectOptions(), "auto", sharded_stats, shards=3)
    # the stream path's report: at most per_reason (5) rows of a reason are listed, in input order
    want = [f"q.parquet:row {i + 1}" for i in (1, 4, 7, 10, 13, 16)]
    stream_stats = ReplayStats()
    list(replay([path], DropEngine(), "auto", stream_stats))
    assert [s.where for s in stream_stats.skips.first] == want
    assert [s.where for s in sharded_stats.skips.first] == want
    assert sharded_stats.skips == stream_stats.skips
    assert sharded_stats == one_stats


# -- the real NFL recording ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def nfl() -> Path:
    return require_data("theoddsapi_nfl", SERIES)


@pytest.fixture(scope="module")
def nfl_table(nfl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recording decoded once, as a Parquet quote table (every quote and its line-only
    observations; its arrival stamp ``_now`` is a working column, which a file's reader drops:
    alerts from this table are stamped with their quotes' times, break23's B23-2)."""
    table, _ = load_table([nfl], "auto", ReplayStats(), line_only=True)
    path = tmp_path_factory.mktemp("nfl") / "nfl.parquet"
    table.write_parquet(path)
    return path


def _run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def test_nfl_replay_sharded_writes_the_same_files(address: str, nfl: Path, nfl_table: Path, tmp_path: Path) -> None:
    """The real recording with every type, sharded over the module's cluster: the --output files
    are byte for byte those of one process on the same input, the recording itself (vendor
    snapshots, decoded by the client and written one Parquet file per shard) and its quote table
    (scanned by the workers), and so is the summary."""
    args = ["replay", "--engine", "batch", "--types", ALL_TYPES]
    sharded = [*args, "--scheduler", address, "--shards", "3"]
    for suffix, source in ((".ndjson", nfl), (".csv", nfl_table)):
        one_out, sharded_out = tmp_path / f"one{suffix}", tmp_path / f"sharded{suffix}"
        code, _, one_err = _run([*args, str(source), "-o", str(one_out)])
        assert code == 0
        code, _, sharded_err = _run([*sharded, str(source), "-o", str(sharded_out)])
        assert code == 0, sharded_err
        assert one_out.read_bytes() == sharded_out.read_bytes()
        assert one_out.read_bytes().count(b"\n") > 1900  # 1,978 alerts
        if source == nfl_table:
            assert sharded_err.replace(sharded_out.name, one_out.name) == one_err


def test_nfl_backtest_sharded_equals_one_process(client: Any, nfl_table: Path) -> None:
    """Backtest of the real recording with every type: the per-alert
    table (alert numbers in detection order), the summary, counters and warnings of one process."""
    options = DetectOptions.build(types=ALL_TYPES)
    cfg = BacktestConfig(close="last")
    table = pl.read_parquet(nfl_table)
    one = run_backtest(table.drop("_now"), cfg, options=options)  # (the file's _now is no quote field)
    sharded = backtest_sharded(client, [nfl_table], cfg, options, shards=3).backtest
    assert one.alerts.height > 1900
    assert sharded.alerts.schema == one.alerts.schema
    assert sharded.alerts.equals(one.alerts)
    assert sharded.summary.equals(one.summary)
    assert (sharded.counters, sharded.warnings, sharded.types) == (one.counters, one.warnings, one.types)


def test_nfl_as_a_directory_of_parquet_shards(address: str, nfl_table: Path, tmp_path: Path) -> None:
    """The recording as a directory of Parquet shards (three files cut at arbitrary rows, the
    last with float prices: each file's price types kept), sharded, equals one process on the
    same directory."""
    table = pl.read_parquet(nfl_table)
    shards = tmp_path / "shards"
    shards.mkdir()
    n = table.height
    table.slice(0, n // 3).write_parquet(shards / "part-0.parquet")
    table.slice(n // 3, n // 3).write_parquet(shards / "part-1.parquet")
    table.slice(2 * (n // 3)).with_columns(pl.col("price").cast(pl.Float64)).write_parquet(shards / "part-2.parquet")
    (shards / "_SUCCESS").write_text("")
    args = ["replay", "--engine", "batch", "--types", ALL_TYPES, str(shards)]
    code, one_out, one_err = _run(args)
    assert code == 0, one_err
    code, sharded_out, sharded_err = _run([*args, "--scheduler", address])
    assert code == 0, sharded_err
    assert (sharded_out, sharded_err) == (one_out, one_err)
    assert one_out.count("\n") > 1900


def test_workers_flag_opens_a_local_cluster(client: Any, nfl_table: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """--workers N reaches open_client(N) (here answered by the module's cluster, which
    open_client(workers=2) started) and prints and writes what one process does."""
    from dropengine.cluster import shard

    asked: list[tuple[int | None, str | None]] = []

    @contextlib.contextmanager
    def fake(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
        asked.append((workers, scheduler))
        yield client

    monkeypatch.setattr(shard, "open_client", fake)
    args = ["replay", "--engine", "batch", "--threshold", "25", str(nfl_table)]
    code, out, err = _run([*args, "--workers", "3"])
    assert (code, out, err) == _run(args)
    assert code == 0 and len(out) > 1000
    # backtest --out: the report files of one process, byte for byte
    args = ["backtest", "--threshold", "25", "--sharp", "nosuchbook", str(nfl_table), "--out"]
    code, line, err = _run([*args, str(tmp_path / "one")])
    assert code == 0, err
    code, sharded_line, sharded_err = _run([*args, str(tmp_path / "sharded"), "--workers", "2"])
    assert code == 0, sharded_err
    assert (sharded_line.replace("sharded", "one"), sharded_err) == (line, err)
    assert "sharp: no quotes from 'nosuchbook'" in err
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert {"alerts.parquet", "alerts.csv", "summary.csv", "report.md"} <= set(names)
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "sharded" / name).read_bytes(), name
    assert asked == [(3, None), (2, None)]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "'--workers': 0 must be an integer from 1 to 4096"),
    (["--workers", "-3"], "'--workers': -3 must be an integer from 1 to 4096"),
    (["--scheduler", "nonsense"], "scheduler: 'nonsense' is not a scheduler address"),
    (["--scheduler", "foo://x:1"], "scheduler: 'foo://x:1' is not a scheduler address"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers and --scheduler: give one of them"),
    (["--shards", "3"], "--shards 3: needs --workers or --scheduler"),
    (["--workers", "2", "--shards", "0"], "'--shards': 0 must be an integer from 1 to 4096"),
])
def test_bad_cluster_flags_are_usage_errors_naming_the_value(nfl: Path, args: list[str], message: str) -> None:
    for command in (["replay", "--engine", "batch"], ["backtest"]):
        code, out, err = _run([*command, *args, str(nfl)])
        assert code == 2, (command, args, err)
        assert message in " ".join(err.split()), err
        assert out == ""


def test_workers_need_the_batch_engine(nfl: Path) -> None:
    code, _, err = _run(["replay", "--workers", "2", str(nfl)])
    assert code == 2 and "add --engine batch" in err


def test_unreachable_scheduler_is_named() -> None:
    from dropengine.core.errors import ClusterError

    with pytest.raises(ClusterError, match=r"scheduler: cannot connect to 'tcp://127\.0\.0\.1:1'"), \
            open_client(scheduler="tcp://127.0.0.1:1", connect_timeout_s=0.5):
        pass


def _task_fails(n: int) -> None:
    raise RuntimeError(f"worker lost {n}")


def test_a_failed_task_is_a_cluster_error_not_caller_misuse(client: Any) -> None:
    """A task that fails for a reason that is not the input's (here a RuntimeError standing for a
    dead worker) is translated at the edge into ClusterError, never ConfigError (caller misuse)."""
    from dropengine.cluster.shard import _gather
    from dropengine.core.errors import ClusterError, ConfigError

    futures = [client.submit(_task_fails, 1, pure=False)]
    with pytest.raises(ClusterError, match=r"a shard task failed \(RuntimeError: worker lost 1\)") as info:
        _gather(client, futures, None)
    assert not isinstance(info.value, ConfigError)


def test_missing_cluster_extra_names_the_pip_install(nfl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    for command in (["replay", "--engine", "batch"], ["backtest"]):
        code, _, err = _run([*command, "--workers", "2", str(nfl)])
        assert code == 2
        assert "needs the cluster extra (distributed is not installed): pip install 'dropengine[cluster]'" in err


def test_a_directory_is_parquet_shards_only_when_it_holds_only_parquet(tmp_path: Path) -> None:
    from dropengine.cluster.inputs import expand_parquet_dirs, parquet_shard_dir

    shards = tmp_path / "shards"
    shards.mkdir()
    for name in ("b.parquet", "a.parquet", "_SUCCESS", ".a.parquet.crc"):
        (shards / name).write_bytes(b"")
    assert parquet_shard_dir(shards) == [shards / "a.parquet", shards / "b.parquet"]
    assert expand_parquet_dirs([shards, tmp_path / "x.ndjson"]) == [shards / "a.parquet", shards / "b.parquet",
                                                                    tmp_path / "x.ndjson"]
    (shards / "odds.json").write_bytes(b"")  # a The Odds API directory is read as today
    assert parquet_shard_dir(shards) is None
    assert parquet_shard_dir(tmp_path / "empty") is None
    (tmp_path / "empty").mkdir()
    assert parquet_shard_dir(tmp_path / "empty") is None
