"""Issue 15: the four real tables of ../shared/data that are not SPEC 2 quote tables read
through the mapping flags, without a custom script (quick counts; docs/datasets.md and the
datasets helper's tests run the documented commands in full)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dropengine.cli.group import main
from dropengine.core.skips import SkipLog
from dropengine.formats.mapping import TableMapping
from dropengine.io.inputs import InputOptions
from dropengine.io.tables import read_quote_table, table_starting_prices

from .conftest import require_data

BOVADA_COLUMNS = ("sport_key==baseball_mlb,bookmaker==bovada,event_id=game_id,home_team=h_team,away_team=a_team,"
                  "last_update=last_mod_lines|cur_time,commence_time=game_start_time")
BOVADA_WIDE = ("h2h_away=a_ml,h2h_home=h_ml,spread_away=a_odds_ps@a_hcap_ps,spread_home=h_odds_ps@h_hcap_ps,"
               "total_over=a_odds_tot@a_hcap_tot,total_under=h_odds_tot@h_hcap_tot")


def _read(path: Path, inputs: InputOptions) -> tuple[list, SkipLog]:  # type: ignore[type-arg]
    skips = SkipLog()
    return [q for _, q in read_quote_table(path, skips, inputs=inputs)], skips


def test_sbr_open_close_gives_two_time_points_per_game() -> None:
    path = require_data("sbr_mlb_open_close", "mlb_odds_2019_sbr_open_close.csv")
    mapping = TableMapping.parse(
        columns=["sport_key==baseball_mlb,bookmaker==sbr,event_id=game,home_team=home_name,away_team=away_name,"
                 "commence_time=date+23h"],
        recode=["=absent"],
        wide=["h2h_away=away_open_ml/date,h2h_home=home_open_ml/date,total_over=open_ou_odds@open_ou_line/date",
              "h2h_away=away_close_ml/date+12h,h2h_home=home_close_ml/date+12h,"
              "total_over=close_ou_odds@close_ou_line/date+12h"])
    quotes, skips = _read(path, InputOptions(mapping=mapping))
    assert not skips
    # 2,464 games x (2 closing moneylines + open and close totals) + the opening moneylines
    # of all but the 5 games whose opening moneyline is empty
    assert len({q.event_id for q in quotes}) == 2464
    assert sum(q.side == "h2h_home" for q in quotes) == 2 * 2464 - 5
    first = [q for q in quotes if q.event_id == "1"]
    assert [(q.side, q.price) for q in first] == [("h2h_away", 107.0), ("h2h_home", -127.0), ("total_over@8.5", -110.0),
                                                 ("h2h_away", 120.0), ("h2h_home", -130.0), ("total_over@8.5", 100.0)]


def test_epl_decimal_odds_three_way_and_totals() -> None:
    path = require_data("sports_betting_wheel", "England_1_2024_odds.csv.gz")
    mapping = TableMapping.parse(
        columns=["sport_key==soccer_epl,event_id={date} {home_team} v {away_team},bookmaker=provider,"
                 "last_update=date-1h,commence_time=date"],
        wide=["h2h_home=home_win,h2h_draw=draw,h2h_away=away_win,total_over@2.5=over_2.5,total_under@2.5=under_2.5"])
    quotes, skips = _read(path, InputOptions(odds_format="decimal", mapping=mapping))
    assert not skips and len(quotes) == 760 * 5
    assert {q.bookmaker for q in quotes} == {"market_average", "market_maximum"}
    q = quotes[0]  # Burnley v Man City, market average: 9.02 -> +802
    assert (q.side, q.price, q.commence_time) == ("h2h_home", 802.0, "2023-08-11T19:00:00Z")


def test_anz_racing_runners_with_their_starting_prices() -> None:
    path = require_data("betfair_anz_racing", "ANZ_Thoroughbreds_2025-03-01_to_02.csv")
    race = "{LOCAL_MEETING_DATE}T{SCHEDULED_RACE_TIME}"
    mapping = TableMapping.parse(
        columns=[f"sport_key==horse_racing,bookmaker==betfair,event_id=WIN_MARKET_ID,commence_time={race},"
                 "starting_price=WIN_BSP"],
        wide=[f"win:{{SELECTION_ID}}=WIN_PREPLAY_WEIGHTED_AVERAGE_PRICE_TAKEN/{race}-5m",
              f"win:{{SELECTION_ID}}=BEST_AVAIL_BACK_AT_SCHEDULED_OFF/{race}"])
    inputs = InputOptions(odds_format="decimal", mapping=mapping)
    quotes, skips = _read(path, inputs)
    assert not skips and len(quotes) == 2 * 1919
    assert len({q.event_id for q in quotes}) == 195 and quotes[0].side == "win:66110713"
    sp = table_starting_prices(path, inputs)
    assert sp is not None and sp.height == 1919
    assert sp.row(0) == ("240173946", "betfair", "win:66110713", 575.0)  # WIN_BSP 6.75


def test_bovada_replays_from_flags_without_the_script() -> None:
    path = require_data("bovada_live_mlb", "bovada_mlb_2019-05-06_to_08_live_and_pregame.csv")
    result = CliRunner().invoke(main, ["replay", str(path), "--columns", BOVADA_COLUMNS, "--recode",
                                       "EVEN=100,0=absent", "--where", "cur_time<game_start_time",
                                       "--wide", BOVADA_WIDE])
    assert result.exit_code == 0, result.output
    # the pre-game polls (5,458 rows of 42 games), `0` cells not offered: 26,120 quotes, none skipped
    assert len(result.stdout.splitlines()) == 175
    summary = " ".join(result.stderr.split())
    assert "seen 26120" in summary and "skipped 0" in summary, summary
