"""Issue 14 regression: a backtest over dictionary-keyed quotes (Categorical text columns, what a
dictionary-encoded Parquet file such as ``dropengine simulate --out x.parquet`` gives) is the
backtest of the same quotes with String keys: the same per-alert table (types too), summary,
counters and warnings, and ``backtest --out`` writes the same files byte for byte.

detect keeps an input's Categorical text columns in its alerts; the backtest's own tables are
keyed by String text, and joining the two raised a polars SchemaError before the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.cli.group import main
from dropengine.core.options import DetectOptions
from dropengine.io.replay import ReplayStats, load_table
from dropengine.io.tables import write_quote_table

from .strategies import quote_streams, signal_options

ALL_TYPES = "odds_drop,line_move,steam"
#: backtest flags that take every join of the backtest: closes (with CLV: --close last, as the
#: short simulated recording ends before kick-off), takes by other books (as-of joins), a sharp
#: book, the signal takes and line CLV
CONFIGS = (
    ["--close", "last", "--types", ALL_TYPES, "--take", "best-other", "--latency-ms", "5000", "--sharp", "pinnacle"],
)


def _run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def _categorical(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every text column dictionary-encoded, as a Parquet reader gives it."""
    return frame.with_columns(pl.col(pl.String).cast(pl.Categorical))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One simulated recording (props, moving lines, steam) as a dictionary-keyed Parquet file,
    a String-keyed CSV and vendor NDJSON frames: the same seed gives the same quotes."""
    d = tmp_path_factory.mktemp("sim")
    out = {}
    for name in ("x.parquet", "x.csv", "x.ndjson"):
        code, _, err = _run(["simulate", "--events", "2", "--books", "3", "--hours", "2", "--props",
                             "--line-moves", "0.1", "--seed", "11", "--out", str(d / name)])
        assert code == 0, err
        out[name.split(".")[1]] = d / name
    return out


def test_simulated_parquet_is_dictionary_keyed(recordings: dict[str, Path]) -> None:
    """The premise of this file: the Parquet recording's keys arrive as Categorical (else the
    tests below compare String with String)."""
    table, _ = load_table([recordings["parquet"]], "auto", ReplayStats())
    for c in ("event_id", "bookmaker", "side"):
        assert table.schema[c] == pl.Categorical, c
    assert load_table([recordings["csv"]], "auto", ReplayStats())[0].schema["event_id"] == pl.String


@pytest.mark.parametrize("flags", CONFIGS, ids=lambda f: " ".join(f) or "default")
def test_backtest_out_of_dictionary_parquet_is_that_of_string_csv(recordings: dict[str, Path], tmp_path: Path,
                                                                   flags: list[str]) -> None:
    """``backtest --out`` over the Parquet recording writes the files the CSV recording gives,
    byte for byte, and prints the same; the vendor frames give the same table too."""
    written: dict[str, dict[str, bytes]] = {}
    printed: dict[str, tuple[int, str, str]] = {}
    for kind in ("parquet", "csv"):
        out = tmp_path / kind
        code, stdout, err = _run(["backtest", *flags, str(recordings[kind]), "--out", str(out)])
        assert code == 0, err
        printed[kind] = (code, stdout.replace(str(out), "OUT"), err)
        written[kind] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert written["parquet"] == written["csv"]
    assert printed["parquet"] == printed["csv"]
    alerts = pl.read_csv(written["csv"]["alerts.csv"])
    assert alerts.height > 100 and alerts.get_column("clv").is_not_null().sum() > 50  # CLV measured


def test_backtest_tables_of_dictionary_parquet_are_those_of_frames(recordings: dict[str, Path]) -> None:
    """Without --out: the tables printed for the Parquet recording are those of its vendor frames."""
    args = ["backtest", "--types", ALL_TYPES]
    code, stdout, err = _run([*args, str(recordings["parquet"])])
    assert (code, stdout, err) == _run([*args, str(recordings["ndjson"])])
    assert code == 0 and "CLV by" in stdout


def _frame(quotes: list[Quote], tmp_path: Path) -> pl.DataFrame:
    path = tmp_path / f"q-{len(quotes)}.csv"
    write_quote_table(path, quotes)
    return load_table([path], "auto", ReplayStats())[0]


@given(quotes=quote_streams(lines=True, max_len=30), opts=signal_options(),
       take=st.sampled_from(("same", "best-other")), close=st.sampled_from(("last-before-commence", "last")),
       sharp=st.sampled_from((None, "pinnacle", "nosuchbook")), lazy=st.booleans())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
def test_run_backtest_is_the_same_for_categorical_keys(tmp_path: Path, quotes: list[Quote], opts: dict[str, Any],
                                                       take: str, close: str, sharp: str | None,
                                                       lazy: bool) -> None:
    """Invariant: the dictionary encoding of the text columns changes nothing a backtest gives
    (per-alert table with its types, summary, counters, warnings), on adversarial streams with
    every signal option."""
    flags: dict[str, Any] = {k: (",".join(sorted(v)) if isinstance(v, frozenset) else v) for k, v in opts.items()}
    options = DetectOptions.build(**flags)
    cfg = BacktestConfig(close=close, take=take, sharp=sharp)
    plain = _frame(quotes, tmp_path)
    coded = _categorical(plain)
    one = run_backtest(plain, cfg, options=options)
    other = run_backtest(coded.lazy() if lazy else coded, cfg, options=options)
    assert other.alerts.schema == one.alerts.schema
    assert other.alerts.equals(one.alerts)
    assert other.summary.equals(one.summary)
    assert (other.counters, other.warnings, other.types) == (one.counters, one.warnings, one.types)
