"""Issue 10 (api-breaker): the backtest as a quant would hold it wrong.

Data without commence times, a sharp book that quotes but never before the close, a config of
the wrong type, a LazyFrame that fails: each gets a status or message that says why, never a
polars exception or a table of "no quote before close" that hides the reason.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from dropengine import ConfigError, FeedError
from dropengine.analysis.backtest import BacktestConfig, run_backtest

H = 3_600_000
T = 1_747_000_000_000
COMMENCE = "2025-05-11T23:46:40Z"  # T + 2 h
COMMENCE_MS = T + 2 * H


def rows(*, commence: str | None = COMMENCE, sharp_after: bool = False) -> pl.DataFrame:
    out: list[dict[str, Any]] = []
    for i, (ph, pa) in enumerate([(-110, -110), (-150, 120), (-160, 130)]):
        for side, p in (("h2h_home", ph), ("h2h_away", pa)):
            for book in ("dk", "pin"):
                t = (COMMENCE_MS + H if sharp_after and book == "pin" else COMMENCE_MS - 10 * 60_000) + i * 60_000
                out.append({"sport_key": "nba", "event_id": "e", "bookmaker": book, "side": side, "price": p,
                            "last_update": t, "commence_time": commence})
    return pl.DataFrame(out)


def test_the_demo_frame_closes() -> None:
    bt = run_backtest(rows())
    assert set(bt.alerts.get_column("close_status")) == {"ok"}
    assert bt.warnings == ()


@pytest.mark.parametrize("commence", [None, "garbled", "2025-05-11T23:46:40"])
def test_no_usable_commence_time_is_said_not_hidden(commence: str | None) -> None:
    # before: every alert was "no quote before close", no warning
    df = rows(commence=commence)
    for frame in (df, df.drop("commence_time")):
        bt = run_backtest(frame)
        assert set(bt.alerts.get_column("close_status")) == {"no commence time"}
        assert any("commence" in w and "--close last" in w for w in bt.warnings), bt.warnings
        # the other convention needs no commence time
        assert set(run_backtest(frame, BacktestConfig(close="last")).alerts.get_column("close_status")) == {"ok"}


def test_a_sharp_book_with_quotes_but_no_close_warns() -> None:
    # before: statuses only, no warning (the no-quotes case warned)
    bt = run_backtest(rows(sharp_after=True), BacktestConfig(sharp="pin"))
    assert bt.alerts.filter(pl.col("close_status") == "ok").height == 0
    assert any("'pin'" in w and "close" in w for w in bt.warnings), bt.warnings
    assert run_backtest(rows(), BacktestConfig(sharp="pin")).warnings == ()


def test_config_of_the_wrong_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="config"):
        run_backtest(rows(), {"close": "last"})  # type: ignore[arg-type]


@pytest.mark.parametrize("minutes", [10**400, float("nan"), -1, True])
def test_early_close_minutes_out_of_range_is_a_config_error(minutes: Any) -> None:
    with pytest.raises(ConfigError, match="early_close_minutes"):
        BacktestConfig(early_close_minutes=minutes)


def test_a_lazy_frame_that_fails_is_a_feed_error() -> None:
    lf = rows().lazy().with_columns(pl.col("side").cast(pl.Int64))
    with pytest.raises(FeedError, match="quotes"):
        run_backtest(lf)


@pytest.mark.parametrize("method", ["shin", "additive", "power", "multiplicative"])
def test_a_closing_market_a_method_cannot_devig_costs_only_its_no_vig_clv(method: str) -> None:
    # before: ConfigError "shin needs a market with an overround" stopped the whole backtest
    # (closes of +100000 / -110 sum to 0.52: an underround, as a stale or placeholder price gives)
    df = rows()
    last = pl.col("last_update") == pl.col("last_update").max()
    odd = (pl.col("bookmaker") == "dk") & (pl.col("side") == "h2h_away") & last
    df = df.with_columns(pl.when(odd).then(pl.lit(100000)).otherwise(pl.col("price")).alias("price"))
    bt = run_backtest(df, BacktestConfig(devig=method))  # type: ignore[arg-type]
    dk = bt.alerts.filter(pl.col("bookmaker") == "dk")
    pin = bt.alerts.filter(pl.col("bookmaker") == "pin")
    assert pin.get_column("novig_clv").null_count() == 0
    if method == "shin":  # the others devig an underround
        assert dk.get_column("novig_clv").null_count() == dk.height
        assert any("devig" in w and method in w for w in bt.warnings), bt.warnings
