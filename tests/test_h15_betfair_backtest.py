"""The starting price as the close, on a hand-built multi-runner market (numbers worked by hand).

Market ``m1`` (WIN, three runners): runner 1 shortens +300 -> +250 (an alert), runner 3 drifts
+400 -> +500 (an alert) and is then withdrawn (null price, no starting price). Starting prices:
runner 1 +200 (decimal 3.0), runner 2 +150 (decimal 2.5).

- runner 1's alert: taken +250 = decimal 3.5, closed at its SP 3.0: CLV 3.5/3.0 - 1 = 1/6;
  the closing market is the runners with an SP (1 and 2): implied 1/3 and 2/5, fair
  p1 = (1/3) / (1/3 + 2/5) = 5/11, no-vig CLV 5/11 * 3.5 - 1 = 13/22.
- runner 3's alert: ``no starting price``.
"""

from __future__ import annotations

import polars as pl
import pytest

from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.core.errors import ConfigError

T0 = 1_714_575_600_000  # 2024-05-01T15:00:00Z minus one hour
COMMENCE = "2024-05-01T16:00:00Z"


def quotes() -> pl.DataFrame:
    rows = [
        ("win:1", 300, T0), ("win:2", 200, T0), ("win:3", 400, T0),
        ("win:1", 250, T0 + 60_000), ("win:3", 500, T0 + 60_000), ("win:3", None, T0 + 120_000),
    ]
    return pl.DataFrame(
        [("horse_racing", "m1", "betfair", side, price, lu, COMMENCE) for side, price, lu in rows],
        schema={"sport_key": pl.String, "event_id": pl.String, "bookmaker": pl.String, "side": pl.String,
                "price": pl.Int64, "last_update": pl.Int64, "commence_time": pl.String},
        orient="row",
    )


SP = pl.DataFrame({"event_id": ["m1", "m1"], "bookmaker": ["betfair", "betfair"], "side": ["win:1", "win:2"],
                   "starting_price": [200.0, 150.0]})


def test_starting_price_close_clv_and_novig_by_hand() -> None:
    bt = run_backtest(quotes(), BacktestConfig(close="starting-price", starting_prices=SP))
    rows = {r["side"]: r for r in bt.alerts.to_dicts()}
    assert set(rows) == {"win:1", "win:3"}
    one = rows["win:1"]
    assert one["close_status"] == "ok" and one["close_price"] == 200.0 and one["market_key"] == "win"
    assert one["clv"] == pytest.approx(1 / 6) and one["p_fair_close"] == pytest.approx(5 / 11)
    assert one["novig_clv"] == pytest.approx(13 / 22)
    assert one["close_convention"] == "starting-price" and one["close_minutes_before_commence"] == 0
    three = rows["win:3"]
    assert three["close_status"] == "no starting price" and three["clv"] is None
    assert set(bt.summary.get_column("close_convention")) == {"starting-price"}


def test_last_before_commence_on_runners_devigs_the_runners_still_running() -> None:
    """The same market closed on its last prices: runner 3 is withdrawn (suspended at close), so
    the closing market is runners 1 (+250, 2/7) and 2 (+200, 1/3): p1 = (2/7)/(2/7 + 1/3) = 6/13."""
    bt = run_backtest(quotes(), BacktestConfig())
    rows = {r["side"]: r for r in bt.alerts.to_dicts()}
    assert rows["win:3"]["close_status"] == "suspended at close"
    one = rows["win:1"]
    assert one["close_status"] == "ok" and one["clv"] == pytest.approx(0.0)  # it closed where it was taken
    assert one["p_fair_close"] == pytest.approx(6 / 13)


def test_starting_prices_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="needs starting_prices"):
        BacktestConfig(close="starting-price")
    with pytest.raises(ConfigError, match="starting_prices: lacks the column"):
        BacktestConfig(close="starting-price", starting_prices=SP.drop("side"))
    with pytest.raises(ConfigError, match="starting_prices: dict"):
        BacktestConfig(close="starting-price", starting_prices={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="starting_prices: side: 'win:'"):
        BacktestConfig(close="starting-price", starting_prices=SP.with_columns(pl.lit("win:").alias("side")))
    # equal configs stay equal whatever frame they carry (the frame is not compared)
    assert BacktestConfig(close="starting-price", starting_prices=SP) == BacktestConfig(
        close="starting-price", starting_prices=SP.clone())


def test_a_late_off_moves_the_starting_price_close() -> None:
    """An alert after the scheduled commence but before the off (``off_time``) still has the
    starting price as its close; without an ``off_time`` it is after the close."""
    commence = T0 + 3_600_000
    late = pl.concat([quotes(), pl.DataFrame(
        [("horse_racing", "m1", "betfair", "win:2", 150, commence + 120_000, COMMENCE)],
        schema=quotes().schema, orient="row")])
    off = SP.with_columns(pl.lit(commence + 300_000).alias("off_time"))
    rows = {r["side"]: r for r in run_backtest(late, BacktestConfig(close="starting-price",
                                                                     starting_prices=off)).alerts.to_dicts()}
    assert rows["win:2"]["close_status"] == "ok" and rows["win:2"]["clv"] == pytest.approx(0.0)
    assert rows["win:2"]["close_minutes_before_commence"] == pytest.approx(-5.0)  # the off came 5 min late
    rows = {r["side"]: r for r in run_backtest(late, BacktestConfig(close="starting-price",
                                                                     starting_prices=SP)).alerts.to_dicts()}
    assert rows["win:2"]["close_status"] == "alert after close"
