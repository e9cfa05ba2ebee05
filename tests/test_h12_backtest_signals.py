"""Backtest of line moves and steam (issue 12): CLV per type on a hand-made market, checked by hand.

The market (one NFL game, five books, spread only; C = commence time):

    C-4h    a b c d: spread_home@-3 -110 / spread_away@3 -110;  e: home@-3 +105 / away@3 -125
    C-3h+60s   a -> home@-3.5 +100 / away@3.5 -120       (line move)
    C-3h+120s  b -> home@-3.5 -105 / away@3.5 -115       (line move)
    C-3h+150s  e -> home@-3 +100 / away@3 -120           (5 cents: no alert, but e moved with the market)
    C-3h+180s  c -> home@-3.5 -102 / away@3.5 -118       (line move; the third book: steam on both outcomes)
    C-10min    a -> -3.5 -105 / 3.5 -115, b -> -3.5 -110 / 3.5 -110 (5 cents: no alerts);
               c -> home@-4 -110 / away@4 -110 (its line moves again);
               d -> home@-3 -125 / away@3 +105 (two drops)

Alerts: 8 line moves (a, b, c twice, both outcomes), 2 steams (spread_home toward_favorite,
spread_away toward_dog, books a b c) and 2 drops (d). Every expected number below is worked
out from the prices above, not read from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from dropengine import american_to_decimal
from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.cli.group import main

C = 1_762_711_200_000  # 2025-11-09T18:00:00Z
COMMENCE = "2025-11-09T18:00:00Z"
M = C - 3 * 3_600_000  # the morning's moves
TYPES = "odds_drop,line_move,steam"


def q(book: str, side: str, price: int, t: int) -> dict[str, Any]:
    return {"sport_key": "americanfootball_nfl", "event_id": "E", "bookmaker": book, "side": side, "price": price,
            "last_update": t, "home_team": "H", "away_team": "A", "commence_time": COMMENCE}


def pair(book: str, home_line: float, home: int, away: int, t: int) -> list[dict[str, Any]]:
    h = int(home_line) if float(home_line).is_integer() else home_line
    a = -h + 0
    return [q(book, f"spread_home@{h}", home, t), q(book, f"spread_away@{a}", away, t)]


ROWS = [
    *(r for b in "abcd" for r in pair(b, -3, -110, -110, C - 4 * 3_600_000)),
    *pair("e", -3, 105, -125, C - 4 * 3_600_000),
    *pair("a", -3.5, 100, -120, M + 60_000),
    *pair("b", -3.5, -105, -115, M + 120_000),
    *pair("e", -3, 100, -120, M + 150_000),
    *pair("c", -3.5, -102, -118, M + 180_000),
    *pair("a", -3.5, -105, -115, C - 600_000),
    *pair("b", -3.5, -110, -110, C - 600_000),
    *pair("c", -4, -110, -110, C - 600_000),
    *pair("d", -3, -125, 105, C - 600_000),
]
TABLE = pl.DataFrame(ROWS)


def d(a: float) -> float:
    return american_to_decimal(a)


def one(table: pl.DataFrame, **match: Any) -> dict[str, Any]:
    hits = table.filter(pl.all_horizontal(pl.col(k) == v for k, v in match.items())).to_dicts()
    assert len(hits) == 1, hits
    return dict(hits[0])


def summary(bt: Any, dimension: str, group: str) -> dict[str, Any]:
    return one(bt.summary, dimension=dimension, group=group)


@pytest.fixture(scope="module")
def same() -> Any:
    return run_backtest(TABLE, BacktestConfig(), types=TYPES)


@pytest.fixture(scope="module")
def best() -> Any:
    return run_backtest(TABLE, BacktestConfig(take="best-other"), types=TYPES)


def test_the_alerts_of_the_hand_made_market(same: Any) -> None:
    counts = dict(same.alerts.group_by("type").len().iter_rows())
    assert counts == {"line_move": 8, "steam": 2, "odds_drop": 2}
    steam = one(same.alerts, type="steam", side="spread_home")
    assert (steam["direction"], steam["steam_books"], steam["leader"], steam["last_update"]) == (
        "toward_favorite", 3, "a", M + 180_000)


def test_line_move_clv_is_measured_at_the_taken_line(same: Any) -> None:
    a_home = one(same.alerts, type="line_move", bookmaker="a", side="spread_home")
    assert (a_home["taken_side"], a_home["taken_price"], a_home["close_price"]) == ("spread_home@-3.5", 100, -105)
    assert a_home["clv"] == pytest.approx(d(100) / d(-105) - 1)  # +2.44%
    assert a_home["line_clv"] == 0  # a closed on the line it was taken at
    a_away = one(same.alerts, type="line_move", bookmaker="a", side="spread_away")
    assert a_away["clv"] == pytest.approx(d(-120) / d(-115) - 1)  # -1.93%
    # c moved its line again (-3.5 -> -4) before the close: no price CLV at -3.5, the line CLV
    # says the -3.5 taken beat the closing -4 by half a point (and the away +3.5 lost half a point).
    c_first = same.alerts.filter((pl.col("type") == "line_move") & (pl.col("bookmaker") == "c")
                                 & (pl.col("last_update") == M + 180_000)).sort("side")
    assert c_first.get_column("close_status").to_list() == ["line moved", "line moved"]
    assert c_first.get_column("clv").to_list() == [None, None]
    assert c_first.get_column("close_line").to_list() == [4.0, -4.0]  # away, home
    assert c_first.get_column("line_clv").to_list() == [-0.5, 0.5]


def test_summary_per_type_by_hand(same: Any) -> None:
    line = summary(same, "type", "line_move")
    clvs = [d(100) / d(-105) - 1, d(-120) / d(-115) - 1, d(-105) / d(-110) - 1, d(-115) / d(-110) - 1, 0.0, 0.0]
    assert (line["alerts"], line["closed"], line["line_moved"]) == (8, 6, 2)
    assert line["mean_clv"] == pytest.approx(sum(clvs) / 6)
    assert line["beat_close"] == pytest.approx(2 / 6)
    assert line["mean_line_clv"] == pytest.approx(0.0)  # +0.5 and -0.5 from c, 0 for the rest
    # take "same" on a steam: the book whose move made it (c), at its line then (-3.5), which moved again
    steam = summary(same, "type", "steam")
    assert (steam["alerts"], steam["closed"], steam["line_moved"]) == (2, 0, 2)
    assert summary(same, "type_direction", "steam toward_favorite")["mean_line_clv"] == pytest.approx(0.5)
    assert summary(same, "steam_books", "3")["alerts"] == 2
    drops = summary(same, "type", "odds_drop")
    assert (drops["alerts"], drops["closed"], drops["mean_clv"]) == (2, 2, 0.0)  # taken at the closing price


def test_best_other_on_a_steam_takes_the_best_book_that_had_not_moved(best: Any) -> None:
    """At the steam (C-3h+180s) the books outside it are d (-3 at -110) and e (-3 at +100, the
    better price); but e shortened +105 -> +100 inside the window, so it had moved: d is taken."""
    steam = one(best.alerts, type="steam", side="spread_home")
    assert (steam["taken_book"], steam["taken_side"], steam["taken_price"]) == ("d", "spread_home@-3", -110)
    assert steam["close_status"] == "ok" and steam["close_price"] == -125
    assert steam["clv"] == pytest.approx(d(-110) / d(-125) - 1)  # +6.06%
    p_home = (125 / 225) / (125 / 225 + 100 / 205)  # d's closing market -125 / +105, multiplicative
    assert steam["novig_clv"] == pytest.approx(p_home * d(-110) - 1)
    assert steam["line_clv"] == 0


def test_best_other_on_a_single_line_move_has_no_moved_rule(best: Any) -> None:
    """a's line move at C-3h+60s: b, c, d stand at -3 -110 and e at -3 +105 (it moves later): e."""
    a_home = one(best.alerts, type="line_move", bookmaker="a", side="spread_home")
    assert (a_home["taken_book"], a_home["taken_price"]) == ("e", 105)
    assert a_home["close_status"] == "early close"  # e's last quote, C-2h57m, is no closing price


def test_best_other_prefers_the_better_line_then_the_price() -> None:
    """A sixth book f that never moves, at home -2.5 -125: for a home bettor -2.5 beats -3 at any
    of these prices, so the steam follower takes f, not d."""
    rows = [*ROWS, *pair("f", -2.5, -125, 105, C - 4 * 3_600_000), *pair("f", -2.5, -130, 110, C - 600_000)]
    bt = run_backtest(pl.DataFrame(rows), BacktestConfig(take="best-other"), types=TYPES)
    steam = one(bt.alerts, type="steam", side="spread_home")
    assert (steam["taken_book"], steam["taken_side"], steam["taken_price"]) == ("f", "spread_home@-2.5", -125)
    assert steam["clv"] == pytest.approx(d(-125) / d(-130) - 1)
    # the away steam (toward_dog: the away line went up) takes the best away number: +3 at d
    # (f's +2.5 is worse for an away bettor), not f's better price
    away = one(bt.alerts, type="steam", side="spread_away")
    assert (away["taken_book"], away["taken_side"]) == ("d", "spread_away@3")


def test_default_types_give_the_table_without_signal_columns() -> None:
    bt = run_backtest(TABLE, BacktestConfig())
    assert set(bt.alerts.get_column("type").unique()) == {"odds_drop"}
    assert "line_clv" not in bt.alerts.columns and "line_moved" not in bt.summary.columns
    assert "type" not in bt.summary.get_column("dimension").to_list()


def test_cli_prints_clv_per_type_and_per_steam_books(tmp_path: Path) -> None:
    path = tmp_path / "market.csv"
    TABLE.write_csv(path)
    res = CliRunner().invoke(main, ["backtest", str(path), "--types", TYPES, "--take", "best-other", "--quiet"])
    assert res.exit_code == 0, res.output
    for title in ("CLV by type", "CLV by steam_books", "CLV by type_direction"):
        assert title in res.output
    assert "line CLV (pt)" in res.output


def test_on_an_over_a_lower_total_is_the_better_number() -> None:
    """Totals: a, b, c raise the total 44.5 -> 45.5 within two minutes (the over steams toward the
    favourite: dearer to back). An over bettor wants the lowest total: f's 44 (-120) beats d's
    44.5 (-110). f closes on 45.5: the taken 44 beat the closing number by 1.5 points."""
    def tot(book: str, line: float, over: int, under: int, t: int) -> list[dict[str, Any]]:
        return [q(book, f"total_over@{line:g}", over, t), q(book, f"total_under@{line:g}", under, t)]

    rows = [
        *(r for b in "abcd" for r in tot(b, 44.5, -110, -110, C - 4 * 3_600_000)),
        *tot("f", 44, -120, 100, C - 4 * 3_600_000),
        *(r for i, b in enumerate("abc") for r in tot(b, 45.5, -110, -110, M + 60_000 * (i + 1))),
        *tot("f", 45.5, -110, -110, C - 600_000),
    ]
    bt = run_backtest(pl.DataFrame(rows), BacktestConfig(take="best-other"), types=TYPES)
    over = one(bt.alerts, type="steam", side="total_over")
    assert over["direction"] == "toward_favorite"
    assert (over["taken_book"], over["taken_side"], over["taken_price"]) == ("f", "total_over@44", -120)
    assert over["close_status"] == "line moved" and over["close_line"] == 45.5
    assert over["line_clv"] == pytest.approx(1.5)
    # the under (toward_dog: cheaper to back) takes the highest total among the unmoved: d's 44.5
    under = one(bt.alerts, type="steam", side="total_under")
    assert (under["taken_book"], under["taken_side"]) == ("d", "total_under@44.5")


def test_a_line_only_book_counts_for_steam_but_is_never_taken() -> None:
    """A line-only book x (lines, no prices: SPEC 10) moves home -3 -> -3.5 at C-3h+90s. Its line
    move has nothing to take; it is the second book of the steam, which now fires at b
    (C-3h+120s: books a, x, b); the follower takes an unmoved book with a price. At that moment c,
    d (-3 -110) and e (-3 +105: it moves only at +150s) have not moved: e is the best offer."""
    def only(book: str, home_line: float, t: int) -> list[dict[str, Any]]:
        return [{**r, "price": None, "line": float(r["side"].rpartition("@")[2]), "line_only": True}
                for r in pair(book, home_line, -110, -110, t)]

    rows = [{**r, "line": float(r["side"].rpartition("@")[2]), "line_only": False} for r in ROWS]
    rows += only("x", -3, C - 4 * 3_600_000) + only("x", -3.5, M + 90_000)
    table = pl.DataFrame(rows).sort("last_update", maintain_order=True)
    same = run_backtest(table, BacktestConfig(), types=TYPES)
    x_move = one(same.alerts, type="line_move", bookmaker="x", side="spread_home")
    assert x_move["new_price"] is None and x_move["close_status"] == "nothing to take"
    best = run_backtest(table, BacktestConfig(take="best-other"), types=TYPES)
    steam = best.alerts.filter((pl.col("type") == "steam") & (pl.col("side") == "spread_home")
                               & (pl.col("last_update") < M + 600_000)).to_dicts()
    assert len(steam) == 1 and steam[0]["last_update"] == M + 120_000
    assert [b["bookmaker"] for b in json.loads(steam[0]["books"])] == ["a", "x", "b"]
    assert (steam[0]["taken_book"], steam[0]["taken_price"]) == ("e", 105)
    assert "x" not in set(best.alerts.get_column("taken_book").drop_nulls())
