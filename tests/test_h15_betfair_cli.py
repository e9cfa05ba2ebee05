"""Betfair stream recordings at the command line: detected, replayed, backtested against the bsp.

Facts checked by hand on the files (see tests/test_h15_betfair_oracle.py for the state):
BASIC-1.132153978 has 1,208 ltp updates of which 1,199 change a runner's price, 2 non-runners
and 12 runners that run (so 12 starting prices); the alerts on the two non-runners, made before
they were removed, have no starting price.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.cli.group import main
from dropengine.core.odds import decimal_to_american
from dropengine.core.skips import SkipLog
from dropengine.io.recordings import detect_format, read_recording
from dropengine.io.starting import starting_prices

from .conftest import require_data

BASIC = ("betfair_stream", "BASIC-1.132153978")
PRO = ("betfair_stream", "PRO-greyhound-1.197931750")
#: BASIC's final definition: runner -> bsp (decimal); the two removed runners have none
BASIC_BSP = {12115648: 4.15, 10299545: 11.0, 7330488: 5.73, 4090765: 21.0, 8504171: 6.4, 11313015: 13.55,
             8873527: 9.14, 11267360: 60.33, 12321972: 40.0, 11695059: 19.59, 8560724: 150.0, 12314194: 127.35}


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="dropengine")


def test_both_files_are_detected_as_betfair() -> None:
    for parts in (BASIC, PRO):
        assert detect_format(require_data(*parts)) == "betfair"


def test_replay_ltp_and_back() -> None:
    basic, pro = str(require_data(*BASIC)), str(require_data(*PRO))
    res = cli("replay", basic)
    assert res.exit_code == 0, res.output
    alerts = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(alerts) > 1000
    assert {(a["event_id"], a["bookmaker"], a["sport_key"], a["market_key"], a["kind"]) for a in alerts} == {
        ("1.132153978", "betfair", "horse_racing", "win", "game")}
    assert "1223" in res.stderr.split("quotes")[1].splitlines()[0]  # 1,197 prices + 26 null quotes
    first = alerts[0]  # Ten In The Hat 15.0 -> 20.0: +1400 -> +1900
    assert (first["side"], first["prev"], first["new"], first["delta"]) == ("win:11695059", 1400.0, 1900.0, 500.0)
    batch = cli("replay", "--engine", "batch", basic)  # the columnar path reads the same quotes
    assert batch.exit_code == 0 and batch.stdout == res.stdout
    # BASIC files carry no ladders: --betfair-price back quotes no price, only the withdrawals
    res = cli("replay", "--betfair-price", "back", "--format", "betfair", basic)
    assert res.exit_code == 0 and res.stdout == ""
    assert "no back ladder" in res.stderr and "use --betfair-price ltp" in res.stderr  # and says why (B15B-17)
    res = cli("replay", "--betfair-price", "back", pro)
    assert res.exit_code == 0, res.output
    back = [json.loads(line) for line in res.stdout.splitlines()]
    assert back and {a["sport_key"] for a in back} == {"greyhound_racing"} and "no back ladder" not in res.stderr


def test_starting_prices_are_the_final_bsp_in_american() -> None:
    sp = starting_prices([require_data(*BASIC), require_data(*PRO)], skips=(log := SkipLog()))
    assert sp is not None and not log
    basic = {r["side"]: r["starting_price"] for r in sp.filter(pl.col("event_id") == "1.132153978").to_dicts()}
    assert basic == {f"win:{k}": decimal_to_american(v) for k, v in BASIC_BSP.items()}
    assert sp.filter(pl.col("event_id") == "1.197931750").height == 6
    # struck at the off: BASIC turned in play at 18:55:42.053, the greyhounds were suspended at 18:27:18.735
    assert dict(sp.group_by("event_id").agg(pl.col("off_time").unique()).iter_rows()) == {
        "1.132153978": [1497466542053], "1.197931750": [1650392838735]}
    assert set(sp.get_column("bookmaker")) == {"betfair"}


def test_backtest_closes_on_the_bsp_by_default_and_says_so(tmp_path: Path) -> None:
    basic = str(require_data(*BASIC))
    res = cli("backtest", basic)
    assert res.exit_code == 0, res.output
    head = res.stdout.splitlines()[0]
    assert head.startswith("close: starting-price (starting price, bsp);") and "no starting price 10" in head
    assert "CLV by overall (close: starting-price (starting price, bsp))" in res.stdout
    out = tmp_path / "bt"
    res = cli("backtest", "--close", "starting-price", "--out", str(out), basic)
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(out / "alerts.parquet")
    assert set(table.get_column("close_convention")) == {"starting-price"}
    assert "close: **starting-price**" in (out / "report.md").read_text()
    ok = table.filter(pl.col("close_status") == "ok")
    assert ok.height == 1010
    for side, close in ok.select("side", "close_price").unique().iter_rows():
        assert close == decimal_to_american(BASIC_BSP[int(side.split(":")[1])])
    # removed runners: no bsp, said in close_status; in-play alerts: after the close
    statuses = dict(table.group_by("close_status").len().iter_rows())
    assert statuses == {"ok": 1010, "no starting price": 10, "alert after close": 10}
    assert set(table.filter(pl.col("close_status") == "no starting price").get_column("side")) == {
        "win:11198538", "win:9606433"}
    # the whole WIN market (the 12 runners with a bsp) is devigged: every closed alert has a no-vig CLV
    assert ok.get_column("novig_clv").null_count() == 0
    assert ok.get_column("p_fair_close").unique().len() == 12


def test_backtest_other_closes_and_a_missing_starting_price(tmp_path: Path) -> None:
    basic = str(require_data(*BASIC))
    res = cli("backtest", "--close", "last-before-commence", basic)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("close: last-before-commence;") and "suspended at close 10" in res.stdout
    table = tmp_path / "q.csv"
    table.write_text("sport_key,event_id,bookmaker,side,price,last_update\n"
                     "basketball_nba,e1,b,h2h_home,-110,1\nbasketball_nba,e1,b,h2h_home,-130,2\n")
    res = cli("backtest", "--close", "starting-price", str(table))
    assert res.exit_code == 2 and "--close starting-price" in res.output and "no starting prices" in res.output
    res = cli("backtest", str(table))  # auto without starting prices: last-before-commence
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("close: last-before-commence;")


def test_bad_betfair_price_is_a_usage_error() -> None:
    res = cli("backtest", "--betfair-price", "mid", str(require_data(*BASIC)))
    assert res.exit_code == 2 and "--betfair-price" in res.output and "mid" in res.output


_FULL: dict[str, list[tuple[int, object]]] = {}


@settings(max_examples=25, deadline=None)
@given(cut=st.floats(0.0, 1.0), gz=st.booleans())
def test_a_recording_cut_anywhere_reads_a_prefix_of_its_quotes(cut: float, gz: bool) -> None:
    """A recording cut at any byte (a copy still being written, a broken download; gzipped or
    not) never raises: it reads as a prefix of the whole file's quotes, the cut line a skip."""
    path = require_data(*BASIC)
    if not _FULL:
        _FULL["q"] = list(read_recording(path, "betfair", SkipLog()))
    data = path.read_bytes()
    data = data[: int(len(data) * cut)]
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / ("part.gz" if gz else "part")
        part.write_bytes(gzip.compress(data)[: max(0, len(gzip.compress(data)) - 7)] if gz else data)
        got = list(read_recording(part, "betfair", SkipLog()))
    assert got == _FULL["q"][: len(got)]


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_sharded_backtest_closes_on_the_bsp_as_one_process() -> None:
    """Sharded (dask; an in-process cluster here, as fast as a test should be): the starting
    prices travel in the config, the Betfair price in the inputs; the same table as one process."""
    from distributed import Client

    from dropengine.analysis.backtest import BacktestConfig, run_backtest
    from dropengine.cluster.shard import backtest_sharded
    from dropengine.core.options import DetectOptions
    from dropengine.io.inputs import InputOptions
    from dropengine.io.replay import ReplayStats, load_table

    paths = [str(require_data(*BASIC)), str(require_data(*PRO))]
    inputs = InputOptions(betfair_price="back")
    sp = starting_prices(paths, inputs=inputs)
    cfg = BacktestConfig(close="starting-price", starting_prices=sp)
    table, _ = load_table(paths, "auto", ReplayStats(), inputs=inputs)
    one = run_backtest(table, cfg, DetectOptions())
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        many = backtest_sharded(client, paths, cfg, DetectOptions(), "auto", ReplayStats(), shards=2,
                                inputs=inputs).backtest
    assert many.alerts.equals(one.alerts) and one.alerts.height == 184
    assert set(many.alerts.get_column("close_status")) == {"ok"}


def test_a_mapped_table_without_its_extension_is_read_as_a_table(tmp_path: Path) -> None:
    """With a column mapping, a file whose lines do not tell its format (a table saved as .txt,
    or piped) is read as a quote table, starting prices included; without one it stays unusable."""
    data = tmp_path / "runners.txt"
    data.write_text("market,runner,odds,ts,sp\n"
                    "m1,1,4.0,1714575600,3.0\nm1,2,3.0,1714575600,2.5\nm1,1,3.5,1714575660,3.0\n")
    mapping = ("sport_key==horse_racing,bookmaker==betfair,event_id=market,side=win:{runner},price=odds,"
               "last_update=ts,commence_time==2024-05-01T16:00:00Z,starting_price=sp")
    res = cli("backtest", "--odds-format", "decimal", "--columns", mapping, str(data))
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("close: starting-price (starting price, bsp);") and "alerts 1 (ok 1)" in res.stdout
    res = cli("backtest", str(data))
    assert res.exit_code == 1 and "cannot tell the format" in res.output


def test_a_nan_token_loses_one_field_not_the_message(tmp_path: Path) -> None:
    """B15B-6: Python's json.dumps writes a float NaN as a bare NaN token (not JSON). The final
    definition carrying it still closes the market; only that runner's bsp is lost. A .json
    name does not make the NDJSON file a The Odds API document either."""
    md = {"eventTypeId": "7", "marketType": "WIN", "marketTime": "2024-05-01T16:00:00Z", "inPlay": False,
          "status": "OPEN", "runners": [{"id": 1, "status": "ACTIVE"}, {"id": 2, "status": "ACTIVE"}]}
    closed = {**md, "status": "CLOSED", "runners": [{"id": 1, "status": "WINNER", "bsp": float("nan")},
                                                    {"id": 2, "status": "LOSER", "bsp": 2.5}]}
    msgs = [{"op": "mcm", "pt": 1, "mc": [{"id": "1.9", "marketDefinition": md,
                                          "rc": [{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 3.0}]}]},
            {"op": "mcm", "pt": 2, "mc": [{"id": "1.9", "marketDefinition": closed}]}]
    path = tmp_path / "nan.json"
    path.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    assert "NaN" in path.read_text() and detect_format(path) == "betfair"
    log = SkipLog()
    quotes = [q for _, q in read_recording(path, "auto", log)]
    assert [(q.side, q.price) for q in quotes] == [("win:1", 100.0), ("win:2", 200.0), ("win:1", None),
                                                  ("win:2", None)]
    assert [(s.where, s.reason) for s in log.first] == [
        ("nan.json:2 mc[0].marketDefinition.runners[0].bsp", "invalid price")]
    sp = starting_prices([path])
    assert sp is not None and sp.select("side", "starting_price").rows() == [("win:2", 150.0)]


def test_with_a_mapping_ndjson_rows_that_look_like_frames_are_a_table(tmp_path: Path) -> None:
    """B15B-15 (the detection half): with a column mapping, NDJSON rows with a ``type`` field
    (a vendor frame's shape) are a quote table's rows; Betfair lines stay Betfair."""
    from dropengine.formats.mapping import TableMapping
    from dropengine.io.inputs import InputOptions
    from dropengine.io.recordings import open_recordings

    typed = tmp_path / "typed.ndjson"
    typed.write_text('{"g":"1","t":1000,"type":"pregame","h":-110}\n')
    mapped = InputOptions(mapping=TableMapping.parse(["sport_key==x,bookmaker==b,event_id=g,last_update=t"],
                                                     ["h2h_home=h"]))
    paths = [typed, require_data(*BASIC)]
    formats, _ = open_recordings(paths, "auto", SkipLog(), inputs=mapped)
    assert list(formats.values()) == ["quotes", "betfair"]
    formats, _ = open_recordings(paths, "auto", SkipLog())
    assert list(formats.values()) == ["frames", "betfair"]
