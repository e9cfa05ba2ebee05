"""Issue 10: backtest rough edges.

- a close taken long before kick-off (the recording ended early) is flagged ``early close`` and
  counted apart (168 of the 381 "ok" closes on the NFL recording were more than an hour early);
- ``--sharp BOOK`` on data without that book warns, naming the books present;
- ``--latency-ms`` with ``--take same`` (where it has no effect) is rejected;
- the "by size" table is ordered by size;
- ``--out`` on zero alerts (or no closes) says so and draws no empty charts;
- zero usable input exits 1 with the one line that says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from dropengine import ConfigError
from dropengine.analysis.backtest import SIZE_BUCKETS, BacktestConfig, run_backtest
from dropengine.cli.group import main
from dropengine.io.replay import load_table
from dropengine.io.report import CHART_MARK

T = 1_000_000_000_000
MIN = 60_000
# the event starts at T + 3 h
COMMENCE = "2001-09-09T04:46:40Z"
NFL = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"


def q(book: str, side: str, price: int | None, t: int, event: str = "E", commence: str = COMMENCE) -> dict[str, Any]:
    return {"sport_key": "nfl", "event_id": event, "bookmaker": book, "side": side, "price": price,
            "last_update": T + t, "commence_time": commence}


# Event E: book A's last quotes are 2 h before kick-off (early); book B's 30 min before (ok).
ROWS = [
    q("A", "h2h_home", -110, 0), q("A", "h2h_away", -110, 0),
    q("A", "h2h_home", -130, 10 * MIN), q("A", "h2h_away", 110, 10 * MIN),   # alerts; A's close: T+60 min
    q("A", "h2h_home", -135, 60 * MIN), q("A", "h2h_away", 115, 60 * MIN),
    q("B", "h2h_home", -110, 0), q("B", "h2h_away", -110, 0),
    q("B", "h2h_home", -130, 20 * MIN), q("B", "h2h_away", 110, 20 * MIN),   # alerts; B's close: T+150 min
    q("B", "h2h_home", -135, 150 * MIN), q("B", "h2h_away", 115, 150 * MIN),
]
TABLE = pl.DataFrame(ROWS)


def run(args: list[str]) -> Any:
    return CliRunner().invoke(main, ["backtest", *args], prog_name="dropengine")


# -- early closes ------------------------------------------------------------------------


def test_a_close_long_before_kick_off_is_flagged_early_and_counted_apart() -> None:
    bt = run_backtest(TABLE)
    status = {(a["bookmaker"], a["side"]): a["close_status"] for a in bt.alerts.to_dicts()}
    assert status == {("A", "h2h_home"): "early close", ("A", "h2h_away"): "early close",
                      ("B", "h2h_home"): "ok", ("B", "h2h_away"): "ok"}
    early = bt.alerts.filter(pl.col("close_status") == "early close")
    # no CLV against a price that is not a close; when the last price was seen stays visible
    assert early.get_column("clv").null_count() == 2 and early.get_column("novig_clv").null_count() == 2
    assert early.get_column("close_minutes_before_commence").to_list() == [120.0, 120.0]
    ok = bt.alerts.filter(pl.col("close_status") == "ok")
    assert ok.get_column("close_minutes_before_commence").to_list() == [30.0, 30.0]
    overall = bt.summary.filter(pl.col("dimension") == "overall").to_dicts()[0]
    assert (overall["alerts"], overall["closed"], overall["early_close"]) == (4, 2, 2)


def test_early_close_threshold() -> None:
    # exactly at the threshold is not early; above it is
    assert set(run_backtest(TABLE, BacktestConfig(early_close_minutes=120)).alerts["close_status"]) == {"ok"}
    bt = run_backtest(TABLE, BacktestConfig(early_close_minutes=29.5))
    assert set(bt.alerts["close_status"]) == {"early close"}
    # None: never early (the behaviour before issue 10)
    assert set(run_backtest(TABLE, BacktestConfig(early_close_minutes=None)).alerts["close_status"]) == {"ok"}
    for bad in (-1, "60", True, float("nan")):
        with pytest.raises(ConfigError, match="early_close_minutes"):
            BacktestConfig(early_close_minutes=bad)  # type: ignore[arg-type]


def test_early_close_on_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    res = run([str(src)])
    assert res.exit_code == 0, res.output
    assert "early close 2" in res.stdout and "early close" in res.stdout.split("CLV by bookmaker")[1]
    res = run([str(src), "--early-close-minutes", "off"])
    assert res.exit_code == 0 and "ok 4" in res.stdout and "early close 2" not in res.stdout
    res = run([str(src), "--early-close-minutes", "200"])
    assert res.exit_code == 0 and "ok 4" in res.stdout
    res = run([str(src), "--early-close-minutes", "-5"])
    assert res.exit_code == 2 and "--early-close-minutes" in res.stderr
    out = tmp_path / "rep"
    res = run([str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = (out / "report.md").read_text()
    assert "early close 2" in report and "early close: more than 60 minutes before commence" in report
    assert "early_close" in (out / "summary.csv").read_text().splitlines()[0]


def test_nfl_recording_early_closes(nfl_dir: Path) -> None:
    table, _ = load_table([nfl_dir / NFL])
    bt = run_backtest(table, timestamp_column="_now")
    status = dict(bt.alerts.group_by("close_status").len().iter_rows())
    # 381 closes were "ok" before issue 10; 168 of them more than an hour before kick-off
    assert bt.alerts.height == 634
    assert status == {"ok": 213, "early close": 168, "alert after close": 239, "line moved": 14}
    overall = bt.summary.filter(pl.col("dimension") == "overall").to_dicts()[0]
    assert (overall["closed"], overall["early_close"]) == (213, 168)
    late = run_backtest(table, BacktestConfig(early_close_minutes=None), timestamp_column="_now")
    assert dict(late.alerts.group_by("close_status").len().iter_rows())["ok"] == 381


# -- --sharp on data without that book ---------------------------------------------------------


def test_sharp_book_absent_warns(tmp_path: Path) -> None:
    bt = run_backtest(TABLE, BacktestConfig(sharp="pinnacle"))
    assert bt.warnings == ("sharp: no quotes from 'pinnacle' in the input, so no alert has a close "
                           "(books present: A, B)",)
    assert run_backtest(TABLE, BacktestConfig(sharp="B")).warnings == ()
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    res = run([str(src), "--sharp", "pinnacle"])
    assert res.exit_code == 0
    warn = [line for line in res.stderr.splitlines() if "pinnacle" in line]
    assert len(warn) == 1 and "books present: A, B" in warn[0] and warn[0].startswith("warning:")
    assert "pinnacle" not in run([str(src), "--sharp", "B"]).stderr


# -- --latency-ms with --take same -------------------------------------------------------------


def test_latency_with_take_same_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"latency_ms.*take"):
        BacktestConfig(take="same", latency_ms=60_000)
    assert BacktestConfig(take="best-other", latency_ms=60_000).latency_ms == 60_000
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    res = run([str(src), "--latency-ms", "60000"])
    assert res.exit_code == 2 and "--latency-ms" in res.stderr and "--take" in res.stderr
    assert run([str(src), "--latency-ms", "0"]).exit_code == 0
    assert run([str(src), "--take", "best-other", "--latency-ms", "600"]).exit_code == 0


# -- size table order ----------------------------------------------------------------------------


def test_size_buckets_are_ordered_by_size(nfl_dir: Path) -> None:
    table, _ = load_table([nfl_dir / NFL])
    bt = run_backtest(table, timestamp_column="_now")
    sizes = bt.summary.filter(pl.col("dimension") == "size").get_column("group").to_list()
    labels = [label for _, _, label in SIZE_BUCKETS]
    assert sizes == [label for label in labels if label in sizes] and len(sizes) >= 4
    # the other dimensions stay ordered by count
    books = bt.summary.filter(pl.col("dimension") == "bookmaker").get_column("alerts").to_list()
    assert books == sorted(books, reverse=True)


# -- --out with nothing to chart -----------------------------------------------------------------


def test_out_with_zero_alerts_says_so_and_draws_nothing(tmp_path: Path) -> None:
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    out = tmp_path / "rep"
    out.mkdir()
    # a previous run's chart (ours: it carries the mark; a user's own file is kept, see
    # test_h10_break_api_report.py)
    (out / "clv_distribution.png").write_bytes(b"\x89PNG old run " + CHART_MARK.encode())
    res = run([str(src), "--threshold", "500", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if "no alerts" in line]
    assert len(lines) == 1 and "no charts" in lines[0]
    assert not list(out.glob("*.png"))
    assert pl.read_parquet(out / "alerts.parquet").height == 0
    assert "alerts: 0" in (out / "report.md").read_text()


def test_out_with_no_close_draws_no_charts(tmp_path: Path) -> None:
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    out = tmp_path / "rep"
    res = run([str(src), "--early-close-minutes", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no alert has a close" in res.output and not list(out.glob("*.png"))
    res = run([str(src), "--out", str(out)])
    assert sorted(p.name for p in out.glob("*.png")) == ["clv_distribution.png", "cumulative_clv.png"]


# -- zero usable input ----------------------------------------------------------------------------


def test_zero_usable_input_exits_1_with_one_line(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    res = run([str(other)])
    assert res.exit_code == 1
    assert "no usable quotes in the input" in res.stderr and "missing column" in res.stderr
    out = tmp_path / "rep"
    assert run([str(other), "--out", str(out)]).exit_code == 1 and not out.exists()
