"""Backtesting CLV: hand-computed cases, the best-other no-lookahead rule, real data, output files."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from dropengine import ConfigError, american_to_decimal
from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.cli.group import main
from dropengine.formats.mapping import load_mapping
from dropengine.io.inputs import InputOptions
from dropengine.io.replay import load_table

from .conftest import ROOT, require_data

T = 1_000_000_000_000  # ms; the event starts at T + 10_000 ("1970"-free, plain arithmetic below)
COMMENCE = "2001-09-09T01:46:50Z"  # = T + 10_000 ms


def q(book: str, side: str, price: int | None, t: int) -> dict[str, Any]:
    return {"sport_key": "nba", "event_id": "E", "bookmaker": book, "side": side, "price": price,
            "last_update": T + t, "home_team": "H", "away_team": "A", "commence_time": COMMENCE}


ROWS = [
    q("A", "h2h_home", -110, 1000), q("A", "h2h_away", -110, 1000), q("B", "h2h_home", -115, 1000),
    q("A", "h2h_home", -130, 2000), q("A", "h2h_away", 110, 2000),           # alerts (-20, +20)
    q("B", "h2h_home", -120, 2500),                                             # B moves 5: no alert
    q("A", "h2h_home", -140, 5000), q("A", "h2h_away", 120, 5000),           # alerts (-10, +10)
    q("B", "h2h_home", -125, 9000),
    q("A", "h2h_home", -150, 12000),                                            # in play: after close
    q("A", "spread_home@-3", -110, 1000), q("A", "spread_home@-3", -125, 3000),   # alert, then the
    q("A", "spread_home@-3.5", -110, 4000),                                        # line moves on
    q("A", "total_over@200", -110, 1000), q("A", "total_over@200", -130, 3000),   # alert, then
    q("A", "total_over@200", None, 6000),                                          # suspended at close
]
TABLE = pl.DataFrame(ROWS)


def d(a: float) -> float:
    return american_to_decimal(a)


def row(bt: Any, **match: Any) -> dict[str, Any]:
    hits = bt.alerts.filter(pl.all_horizontal(pl.col(k) == v for k, v in match.items())).to_dicts()
    assert len(hits) == 1, hits
    return dict(hits[0])


def test_config_errors_name_the_field() -> None:
    for kwargs, name in (({"close": "open"}, "close"), ({"take": "worst"}, "take"), ({"latency_ms": -1}, "latency_ms"),
                         ({"devig": "magic"}, "devig"), ({"sharp": ""}, "sharp")):
        with pytest.raises(ConfigError, match=name):
            BacktestConfig(**kwargs)


def test_take_same_close_fair_and_clv_by_hand() -> None:
    bt = run_backtest(TABLE)
    r = row(bt, side="h2h_home", new=-130)
    # taken -130 (d 1.769231) against the last price before commence, -140 at T+5000 (d 1.714286)
    assert r["close_status"] == "ok" and r["close_price"] == -140 and r["taken_book"] == "A"
    assert r["clv"] == pytest.approx(d(-130) / d(-140) - 1) == pytest.approx(0.0320513, abs=1e-6)
    # fair close: -140 / +120 is 140/240 = 0.583333 and 100/220 = 0.454545 (sum 1.037879);
    # p_fair(home) = 0.583333 / 1.037879 = 0.562044; no-vig CLV = 0.562044 * 1.769231 - 1
    assert r["p_fair_close"] == pytest.approx(0.562044, abs=1e-6)
    assert r["novig_clv"] == pytest.approx(0.562044 * d(-130) - 1, abs=1e-6)
    assert r["minutes_to_commence"] == pytest.approx(8000 / 60000)
    assert r["close_convention"] == "last-before-commence"


def test_every_alert_is_kept_and_each_missing_close_is_flagged() -> None:
    bt = run_backtest(TABLE)
    status = {(a["side"], a["new"]): a["close_status"] for a in bt.alerts.to_dicts()}
    assert status == {
        ("h2h_home", -130): "ok", ("h2h_away", 110): "ok", ("h2h_home", -140): "ok", ("h2h_away", 120): "ok",
        ("h2h_home", -150): "alert after close", ("spread_home@-3", -125): "line moved",
        ("total_over@200", -130): "suspended at close",
    }
    flagged = bt.alerts.filter(pl.col("close_status") != "ok")
    assert flagged.get_column("clv").null_count() == flagged.height
    overall = bt.summary.filter(pl.col("dimension") == "overall").to_dicts()[0]
    assert (overall["alerts"], overall["closed"]) == (7, 4)


def test_close_last_and_sharp_book() -> None:
    r = row(run_backtest(TABLE, BacktestConfig(close="last")), side="h2h_home", new=-130)
    assert r["close_price"] == -150 and r["clv"] == pytest.approx(d(-130) / d(-150) - 1)
    assert r["close_convention"] == "last"
    r = row(run_backtest(TABLE, BacktestConfig(sharp="B")), side="h2h_home", new=-130)
    # measured on B: B's last price before commence is -125 at T+9000
    assert r["close_book"] == "B" and r["clv"] == pytest.approx(d(-130) / d(-125) - 1)
    assert r["p_fair_close"] is None  # B quotes one side only: no market to devig


def test_take_best_other_with_latency() -> None:
    r = row(run_backtest(TABLE, BacktestConfig(take="best-other")), side="h2h_home", new=-130)
    # at T+2000 the only other book, B, stood at -115 (posted T+1000); the close is B's: -125
    assert (r["taken_book"], r["taken_price"], r["taken_time"]) == ("B", -115, T + 1000)
    assert r["clv"] == pytest.approx(d(-115) / d(-125) - 1) == pytest.approx(0.0386473, abs=1e-6)
    r = row(run_backtest(TABLE, BacktestConfig(take="best-other", latency_ms=600)), side="h2h_home", new=-130)
    assert (r["taken_price"], r["taken_time"]) == (-120, T + 2500)  # posted within the 600 ms
    r = row(run_backtest(TABLE, BacktestConfig(take="best-other")), side="h2h_away", new=110)
    assert r["close_status"] == "nothing to take" and r["taken_price"] is None


def _load(path: Path) -> pl.DataFrame:
    table, _ = load_table([path])
    return table


@pytest.mark.parametrize("latency", [0, 300_000])
def test_best_other_never_looks_ahead_on_real_data(nfl_dir: Path, latency: int) -> None:
    table = _load(nfl_dir / "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz")
    bt = run_backtest(table, BacktestConfig(take="best-other", latency_ms=latency), timestamp_column="_now")
    taken = bt.alerts.filter(pl.col("taken_price").is_not_null())
    assert taken.height > 500
    assert taken.filter(pl.col("taken_time") > pl.col("last_update") + latency).height == 0
    assert taken.filter(pl.col("taken_book") == pl.col("bookmaker")).height == 0
    # independent check on a sample: the best other book as it stood at alert time + latency
    hist: dict[tuple[str, str], list[tuple[int, str, float | None]]] = {}
    for ev, book, side, price, lu in table.select("event_id", "bookmaker", "side", "price", "last_update").iter_rows():
        hist.setdefault((ev, side), []).append((lu, book, price))
    for a in random.Random(7).sample(taken.to_dicts(), 40):
        latest: dict[str, tuple[int, float | None]] = {}
        for lu, book, price in hist[(a["event_id"], a["side"])]:
            if book != a["bookmaker"] and lu <= a["last_update"] + latency and lu >= latest.get(book, (-1, None))[0]:
                latest[book] = (lu, price)
        best = max(d(p) for _, p in latest.values() if p is not None)
        assert d(a["taken_price"]) == pytest.approx(best)


def test_real_nfl_alerts_by_hand(nfl_dir: Path) -> None:
    table = _load(nfl_dir / "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz")
    bt = run_backtest(table, timestamp_column="_now")
    # fanduel, Falcons (away) +250 -> +260 at 2025-11-08T13:54:19Z. Kick-off 2025-11-09T14:30Z; the last
    # fanduel h2h before it was posted 14:17:29Z: Falcons +235, Colts -290.
    # CLV = 3.60 / 3.35 - 1 = 0.074627; fair = (100/335) / (100/335 + 290/390) = 0.286449;
    # no-vig CLV = 0.286449 * 3.60 - 1 = 0.031216.
    r = row(bt, bookmaker="fanduel", side="h2h_away", new=260, last_update=1762610059000)
    assert (r["close_price"], r["close_status"]) == (235, "ok")
    assert r["clv"] == pytest.approx(0.0746269, abs=1e-6)
    assert r["p_fair_close"] == pytest.approx(0.286449, abs=1e-6)
    assert r["novig_clv"] == pytest.approx(0.031216, abs=1e-6)
    # lowvig, Rams -2.5: +100 -> -110 at 13:12:20Z; at 13:54:29Z lowvig moved the line to -3, so the
    # -2.5 side has no close: kept, flagged, no CLV.
    r = row(bt, bookmaker="lowvig", side="spread_home@-2.5", new=-110)
    assert r["close_status"] == "line moved" and r["clv"] is None


def _bovada_pregame(path: Path) -> pl.DataFrame:
    """The pre-game quotes of the Bovada poll log, through its mapping (docs/mappings/bovada_live_mlb.toml,
    which replaced scripts/bovada_mlb_to_quotes.py; tests/test_h15_datasets_docs.py checks it quote by quote)."""
    mapping = load_mapping((ROOT / "docs" / "mappings" / "bovada_live_mlb.toml").read_text(encoding="utf-8"))
    return load_table([path], inputs=InputOptions(mapping=mapping))[0]


def test_real_bovada_pregame_by_hand() -> None:
    path = require_data("bovada_live_mlb", "bovada_mlb_2019-05-06_to_08_live_and_pregame.csv")
    quotes = _bovada_pregame(path)
    assert quotes.height > 20_000 and quotes.get_column("event_id").n_unique() == 42
    bt = run_backtest(quotes)
    assert bt.alerts.height > 100
    # Game 5263837: the away moneyline +143 -> +130 (lines changed at 1557104922.612 s). The last poll
    # before the 22:35Z start has a_ml +125, h_ml -145 (checked against the raw CSV below).
    # CLV = 2.30 / 2.25 - 1 = 0.022222; fair = (100/225) / (100/225 + 145/245) = 0.428884;
    # no-vig CLV = 0.428884 * 2.30 - 1 = -0.013567.
    r = row(bt, event_id="5263837", side="h2h_away", new=130, last_update=1557104922612)
    assert r["close_price"] == 125 and r["clv"] == pytest.approx(0.0222222, abs=1e-6)
    assert r["p_fair_close"] == pytest.approx(0.428884, abs=1e-6)
    assert r["novig_clv"] == pytest.approx(-0.013567, abs=1e-6)
    with open(path, newline="") as fh:
        pre = [x for x in csv.DictReader(fh) if x["game_id"] == "5263837"
               and float(x["cur_time"]) < float(x["game_start_time"])]
    last = max(pre, key=lambda x: float(x["cur_time"]))
    assert (last["a_ml"], last["h_ml"]) == ("+125", "-145")


def test_cli_table_and_report_files(tmp_path: Path) -> None:
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    runner = CliRunner()
    result = runner.invoke(main, ["backtest", str(src)], prog_name="dropengine")
    assert result.exit_code == 0, result.output
    assert "last-before-commence" in result.stdout and "CLV by bookmaker" in result.stdout
    out = tmp_path / "report"
    result = runner.invoke(main, ["backtest", str(src), "--take", "best-other", "--latency-ms", "600", "--close",
                                  "last", "--devig", "shin", "--out", str(out)], prog_name="dropengine")
    assert result.exit_code == 0, result.output
    for name in ("alerts.parquet", "alerts.csv", "summary.csv", "report.md", "clv_distribution.png",
                 "cumulative_clv.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "clv_distribution.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "close: **last**" in report and "take: **best-other** (+600 ms)" in report and "shin" in report
    per_alert = pl.read_parquet(out / "alerts.parquet")
    assert per_alert.height == 7 and set(per_alert.get_column("close_convention")) == {"last"}
    bad = runner.invoke(main, ["backtest", str(src), "--close", "open"], prog_name="dropengine")
    assert bad.exit_code == 2 and "--close" in bad.stderr


def test_the_close_uses_the_first_commence_time_seen_whatever_the_key_order() -> None:
    """A late kick-off moves commence_time between snapshots; the close is judged against the
    first one seen (the schedule), in arrival order, not in the order keys happen to be held."""
    rows = []
    for i, (side, price, lu, commence) in enumerate([
        ("h2h_home", -110, 1_000, "1970-01-01T00:00:10Z"),
        ("h2h_away", 100, 1_000, "1970-01-01T00:00:10Z"),
        ("h2h_home", -130, 9_000, "1970-01-01T00:00:10Z"),
        ("h2h_home", -150, 12_000, "1970-01-01T00:00:20Z"),  # kick-off moved to 20 s
        ("h2h_away", 120, 12_000, "1970-01-01T00:00:20Z"),
    ]):
        rows.append({"sport_key": "s", "event_id": "e", "bookmaker": "b", "side": side, "price": price,
                     "last_update": lu, "commence_time": commence, "i": i})
    table = pl.DataFrame(rows).drop("i")
    results = {run_backtest(table, threshold=10).alerts.select("close_price").to_series().to_list()[0]
               for _ in range(5)}
    assert results == {-130}  # the last price before 00:00:10, not -150 (before 00:00:20)


def test_backtest_is_deterministic_on_real_data(nfl_dir: Path) -> None:
    table = _load(nfl_dir / "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz")
    first = run_backtest(table, BacktestConfig(take="best-other", latency_ms=60_000), timestamp_column="_now")
    for _ in range(2):
        again = run_backtest(table, BacktestConfig(take="best-other", latency_ms=60_000), timestamp_column="_now")
        assert again.alerts.equals(first.alerts)
