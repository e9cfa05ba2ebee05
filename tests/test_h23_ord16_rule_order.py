"""ord16 (session 16): every Parquet path detects on core/merge.py's replay order (B22-5, B22-6).

The rule: rows of several files are merged by each file's clock, the running maximum of the times
of its *usable* rows; a row the detector skips moves no clock. When one key is quoted in several
files, a skipped row ahead of its file's clock decides more than the skip report's order: which of
the key's quotes come late and are stale, so which alerts there are. The stream engine keeps the
rule by its lazy merge; ``replay_batch``, ``replay_backtest`` (the ``backtest`` command) and the
sharded paths (``--workers``) load by every row's time and detect again in the rule's order when a
skipped row had moved its file's clock (io.replay.in_replay_order; cluster/shard.py asks each
shard of its own skipped rows, io.tables.held_moves_clock).

Properties over 2-3 small Parquet files sharing keys, with bad rows (some far ahead of their
file): stream == batch (alerts, counters, skip report) == backtest (the alerts it measures, its
counters); on a Dask LocalCluster, sharded replay == batch and sharded backtest == one process's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import DropEngine
from dropengine.analysis.backtest import BacktestConfig
from dropengine.cli.group import main
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, load_table, replay, replay_backtest, replay_batch
from dropengine.io.tables import held_moves_clock

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA

_ENC = msgspec.json.Encoder()
#: what makes a row bad (a skip, each with its reason), or None: a usable row
_FAULTS: dict[str | None, dict[str, Any]] = {
    None: {},
    "no sport": {"sport_key": None},
    "no event": {"event_id": None},
    "bad side": {"side": "sideways"},
    "no time": {"last_update": None},
    "negative time": {"last_update": -5},
}
#: a bad row's time may be far ahead of its file's usable rows (it then moved that file's clock
#: when every row's time was read)
_AHEAD = 1_000_000

row_st = st.tuples(
    st.sampled_from(["E1", "E2", "E3"]),
    st.sampled_from(["h2h_home", "h2h_away", "spread_home@-3.5", "spread_home@-4.5", "spread_away@+3.5"]),
    st.sampled_from(["pin", "dk"]),
    st.sampled_from([0, 1000, 2000, 3000, 4000, 5000, 8000]),
    st.sampled_from([None, None, None, *_FAULTS]),
    st.booleans(),  # a bad row ahead of the others
    st.sampled_from([-110, -130, -150, -180, 105, 120]),
)
files_st = st.lists(st.lists(row_st, min_size=1, max_size=10), min_size=2, max_size=3)
Row = tuple[str, str, str, int, str | None, bool, int]


def _write(tmp: Path, files: list[list[Row]]) -> list[Path]:
    paths = []
    for f, rows in enumerate(files):
        table = [
            {
                "sport_key": "basketball_nba",
                "event_id": event,
                "bookmaker": book,
                "side": side,
                "price": float(price),
                "last_update": t + _AHEAD if ahead and fault is not None else t,
                "market_key": side.split("_")[0],
                "line": None,
                **_FAULTS[fault],
            }
            for event, side, book, t, fault, ahead, price in rows
        ]
        path = tmp / f"f{f}.parquet"
        pl.DataFrame(table, schema=QUOTE_SCHEMA).write_parquet(path)
        paths.append(path)
    return paths


def _wire(alerts: Any) -> list[bytes]:
    return [_ENC.encode(a) for a in alerts]


#: the columns that say which alert a backtest measured (its detection, not its CLV)
_DETECTED = ["type", "event_id", "bookmaker", "side", "last_update"]
_OPTIONS = DetectOptions.build(threshold=5)
#: price drops alone (the fused kernel's path), every type (the signals path), an anchor and a cooldown
options_st = st.sampled_from(
    [
        _OPTIONS,
        DetectOptions.build(threshold=5, types="odds_drop,line_move,steam", steam_books=2),
        DetectOptions.build(threshold=5, reference="anchor", cooldown_ms=1500),
    ]
)


def _detected(alerts: pl.DataFrame) -> list[tuple[Any, ...]]:
    with_type = alerts if "type" in alerts.columns else alerts.with_columns(pl.lit("odds_drop").alias("type"))
    return with_type.select(pl.col(c).cast(pl.String) for c in _DETECTED).rows()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=files_st, options=options_st)
def test_stream_batch_and_backtest_detect_in_the_rules_order(
    tmp_path_factory: pytest.TempPathFactory, files: list[list[Row]], options: DetectOptions
) -> None:
    """Property: the batch replay gives the stream engine's alerts (byte for byte, in order),
    counters and skip report; the backtest measures exactly those alerts, in that order, with
    those counters."""
    require_fast()
    paths = _write(tmp_path_factory.mktemp("rule"), files)
    engine = DropEngine(options=options)
    stream_stats = ReplayStats()
    stream = list(replay(paths, engine, "auto", stream_stats))
    batch_stats = ReplayStats()
    batch = replay_batch(paths, "auto", batch_stats, options=options)
    assert _wire(batch.alert_values()) == _wire(stream)
    assert batch.counters == engine.counters
    assert batch_stats == stream_stats
    table, where = load_table(paths, "auto", ReplayStats())
    bt = replay_backtest(table, where, BacktestConfig(close="last"), options)
    assert _detected(bt.alerts) == _detected(batch.alerts)
    assert bt.counters == batch.counters


def test_the_generated_inputs_reach_the_rule() -> None:
    """The property's inputs are not vacuous: a bad row ahead of its file is exactly the case
    where the order by every row's time is not the rule's (the held row sets the clock)."""
    times = pl.Series([1000, 2000 + _AHEAD, 3000], dtype=pl.Int64)
    assert held_moves_clock(times, pl.Series([1], dtype=pl.UInt32))
    assert not held_moves_clock(times, pl.Series([2], dtype=pl.UInt32))  # behind the clock: moves nothing
    assert not held_moves_clock(times, pl.Series([], dtype=pl.UInt32))


def test_held_rows_move_a_clock_exactly_when_one_shards_do() -> None:
    """held_moves_clock of every shard's held rows together == any shard's own (the sharded path
    decides a second run so), on every small file and split (negative times included: -1, the
    clock before a file's first time, is never a row's time)."""
    import itertools

    values = [None, -5, -1, 0, 3]
    for n in range(1, 4):
        for times in itertools.product(values, repeat=n):
            lu = pl.Series(list(times), dtype=pl.Int64)
            for held in itertools.product((None, 0, 1), repeat=n):  # per row: not held, or its shard
                parts = [[r for r in range(n) if held[r] == k] for k in (0, 1)]
                whole = held_moves_clock(lu, pl.Series(parts[0] + parts[1], dtype=pl.UInt32))
                each = [held_moves_clock(lu, pl.Series(p, dtype=pl.UInt32)) for p in parts]
                assert whole == any(each), (times, parts)


def test_the_backtest_command_measures_the_rules_alerts(tmp_path: Path) -> None:
    """``dropengine backtest`` (cli/backtest.py) measures what ``replay`` prints: one key in two
    files, a row without its sport at 9000 between its file's 1000 and 3000 (B22-6's case)."""
    require_fast()
    files: list[list[Row]] = [
        [
            ("E1", "h2h_home", "pin", 1000, None, False, -110),
            ("E1", "h2h_home", "pin", 9000, "no sport", False, -300),
            ("E1", "h2h_home", "pin", 3000, None, False, -150),
        ],
        [
            ("E1", "h2h_home", "pin", 2000, None, False, -130),
            ("E1", "h2h_home", "pin", 4000, None, False, -110),
            ("E1", "h2h_home", "pin", 5000, None, False, -160),
        ],
    ]
    paths = [str(p) for p in _write(tmp_path, files)]
    out = tmp_path / "report"
    res = CliRunner().invoke(
        main, ["backtest", "--threshold", "5", "--close", "last", "--out", str(out), *paths], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    measured = pl.read_parquet(out / "alerts.parquet")
    replayed = CliRunner().invoke(main, ["replay", "--threshold", "5", *paths], catch_exceptions=False)
    printed = [msgspec.json.decode(line) for line in replayed.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 4
    assert measured.select("last_update", "prev", "new").rows() == [
        (a["last_update"], a["prev"], a["new"]) for a in printed
    ]


# -- sharded (the Dask LocalCluster of tests/conftest.py's `client`, 2 workers per module) -----------


@pytest.mark.cluster
@pytest.mark.timeout(300)
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(files=files_st, shards=st.integers(1, 3), options=options_st)
def test_sharded_replay_and_backtest_equal_one_process(
    client: Any, tmp_path_factory: pytest.TempPathFactory, files: list[list[Row]], shards: int, options: DetectOptions
) -> None:
    """Property: the sharded replay gives one process's alerts (values and table), counters,
    skip counts and skip report; the sharded backtest one process's table, summary and counters."""
    require_fast()
    from dropengine.cluster.shard import backtest_sharded, detect_sharded

    paths = _write(tmp_path_factory.mktemp("sharded"), files)
    one_stats, sharded_stats = ReplayStats(), ReplayStats()
    one = replay_batch(paths, "auto", one_stats, options=options)
    sharded = detect_sharded(client, paths, options, "auto", sharded_stats, shards=shards)
    assert _wire(sharded.alert_values()) == _wire(one.alert_values())
    assert sharded.alerts.equals(one.alerts)
    assert sharded.counters == one.counters
    assert sharded.skipped == one.skipped
    assert sharded_stats == one_stats
    cfg = BacktestConfig(close="last")
    table, where = load_table(paths, "auto", ReplayStats())
    bt = replay_backtest(table, where, cfg, options)
    sbt = backtest_sharded(client, paths, cfg, options, "auto", ReplayStats(), shards=shards).backtest
    # (NaN cells, e.g. a one-alert group's interval, are equal here: DataFrame.equals says not)
    assert_frame_equal(sbt.alerts, bt.alerts, check_exact=True)
    assert_frame_equal(sbt.summary, bt.summary, check_exact=True)
    assert sbt.counters == bt.counters


# -- datetimes: every file's times in unix ms, whatever their Parquet type -----------------------

_UNITS = ("int", "ms", "us", "ns")
dt_row_st = st.tuples(
    st.sampled_from(["E1", "E2"]),
    st.sampled_from([1000, 2000, 3000, 5000]),
    st.sampled_from([0, 1, 499, 999]),  # microseconds past the millisecond (lost in ms and int files)
    st.sampled_from([None, None, "no sport"]),
    st.sampled_from([-110, -130, -150, 105]),
)
dt_files_st = st.lists(
    st.tuples(st.sampled_from(_UNITS), st.lists(dt_row_st, min_size=1, max_size=8)), min_size=2, max_size=3
)


def _write_dt(tmp: Path, files: list[tuple[str, list[tuple[str, int, int, str | None, int]]]]) -> list[Path]:
    base = 1_700_000_000_000
    paths = []
    for f, (unit, rows) in enumerate(files):
        table = pl.DataFrame(
            {
                "sport_key": [None if fault else "basketball_nba" for _, _, _, fault, _ in rows],
                "event_id": [e for e, *_ in rows],
                "bookmaker": ["pin"] * len(rows),
                "side": ["h2h_home"] * len(rows),
                "price": [p for *_, p in rows],
                "last_update": [(base + t) * 1000 + us for _, t, us, _, _ in rows],  # microseconds
            },
            schema_overrides={"sport_key": pl.String},
        )
        lu = pl.col("last_update")
        table = table.with_columns(
            lu // 1000 if unit == "int" else lu.cast(pl.Datetime("us", "UTC")).dt.cast_time_unit(unit)
        )
        path = tmp / f"d{f}.parquet"
        table.write_parquet(path)
        paths.append(path)
    return paths


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=dt_files_st)
def test_datetime_files_replay_in_milliseconds(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[str, list[tuple[str, int, int, str | None, int]]]]
) -> None:
    """Property: Parquet files whose last_update is a Datetime (ms, us, ns; sub-millisecond parts)
    or unix ms, replayed together: the batch replay and the backtest give the stream engine's
    alerts, counters and skips (the row reader reads a datetime as unix ms, floored; a microsecond
    column concatenated with an integer one was 1000 times too large, and its clock in µs)."""
    require_fast()
    paths = _write_dt(tmp_path_factory.mktemp("dt"), files)
    engine = DropEngine(options=_OPTIONS)
    stream_stats, batch_stats = ReplayStats(), ReplayStats()
    stream = list(replay(paths, engine, "auto", stream_stats))
    batch = replay_batch(paths, "auto", batch_stats, options=_OPTIONS)
    assert _wire(batch.alert_values()) == _wire(stream)
    assert batch.counters == engine.counters
    assert batch_stats == stream_stats
    table, where = load_table(paths, "auto", ReplayStats())
    bt = replay_backtest(table, where, BacktestConfig(close="last"), _OPTIONS)
    assert bt.alerts.select(_DETECTED).equals(batch.alerts.select(_DETECTED).cast(bt.alerts.select(_DETECTED).schema))


@pytest.mark.cluster
@pytest.mark.timeout(300)
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(files=dt_files_st)
def test_sharded_datetime_files_equal_one_process(
    client: Any,
    tmp_path_factory: pytest.TempPathFactory,
    files: list[tuple[str, list[tuple[str, int, int, str | None, int]]]],
) -> None:
    """Property: the same inputs sharded (2 shards) give one process's alerts, counters and skips."""
    require_fast()
    from dropengine.cluster.shard import detect_sharded

    paths = _write_dt(tmp_path_factory.mktemp("dtsharded"), files)
    one_stats, sharded_stats = ReplayStats(), ReplayStats()
    one = replay_batch(paths, "auto", one_stats, options=_OPTIONS)
    sharded = detect_sharded(client, paths, _OPTIONS, "auto", sharded_stats, shards=2)
    assert _wire(sharded.alert_values()) == _wire(one.alert_values())
    assert sharded.counters == one.counters
    assert sharded_stats == one_stats
