"""Breaker (issue 15): hostile Betfair stream recordings (formats.betfair, io.recordings, io.starting, backtest).

Defects found by helper breaker15b (ids B15B-n, written up in /tmp/notes/breaker15b.md) are
strict xfails here until fixed; the fixed ones (B15B-5, -6, -11, -14: formats.betfair; B15B-17:
io.recordings; B15B-22, -24, -25: backtest) now pin the fixes. The other tests pin what held under
the same attacks.
"""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner, Result

from dropengine.cli.group import main
from dropengine.core.alerts import Drop
from dropengine.core.engine import DropEngine
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.betfair import BetfairDecoder
from dropengine.io.inputs import InputOptions
from dropengine.io.recordings import detect_format, read_recording
from dropengine.io.starting import starting_prices

from .conftest import require_data

MID = "1.5"
#: marketTime 2026-01-01T12:00:00Z, in ms; the hand-made markets trade from 10 minutes before
OFF_MS = 1_767_268_800_000
T0 = OFF_MS - 600_000


def _definition(status: str = "OPEN", in_play: bool = False, bsp: dict[int, Any] | None = None,
                runners: dict[int, str] | None = None) -> dict[str, Any]:
    rs = []
    for sid, st in (runners or {1: "ACTIVE", 2: "ACTIVE"}).items():
        r: dict[str, Any] = {"id": sid, "status": st}
        if bsp is not None and sid in bsp:
            r["bsp"] = bsp[sid]
        rs.append(r)
    return {"status": status, "inPlay": in_play, "marketType": "WIN", "eventTypeId": "7",
            "marketTime": "2026-01-01T12:00:00.000Z", "bspReconciled": bsp is not None, "runners": rs}


def _mcm(pt: int, market: str = MID, **mc: Any) -> dict[str, Any]:
    return {"op": "mcm", "clk": str(pt), "pt": pt, "mc": [{"id": market, **mc}]}


def _feed(msgs: list[dict[str, Any]], price: str = "ltp") -> tuple[list[Quote], SkipLog, BetfairDecoder]:
    decoder, skips = BetfairDecoder(price), SkipLog()
    quotes = [q for i, m in enumerate(msgs, 1) for q in decoder.feed(m, f"f:{i}", skips)]
    return quotes, skips, decoder


def _write(path: Path, msgs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    return path


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="dropengine")


def _late_off_market() -> list[dict[str, Any]]:
    """Two runners; runner 1 drifts 2.0 -> 2.5 -> 3.0 before the off, the off is 30 s late,
    in play it trades 3.5, 5.0, 9.0; the market closes with bsp 3.2 / 1.9."""
    return [
        _mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 2.0}]),
        _mcm(T0 + 60_000, rc=[{"id": 1, "ltp": 2.5}]),
        _mcm(T0 + 120_000, rc=[{"id": 1, "ltp": 3.0}]),
        _mcm(OFF_MS + 30_000, marketDefinition=_definition(in_play=True)),
        _mcm(OFF_MS + 40_000, rc=[{"id": 1, "ltp": 3.5}]),
        _mcm(OFF_MS + 50_000, rc=[{"id": 1, "ltp": 5.0}]),
        _mcm(OFF_MS + 60_000, rc=[{"id": 1, "ltp": 9.0}]),
        _mcm(OFF_MS + 90_000, marketDefinition=_definition("CLOSED", True, bsp={1: 3.2, 2: 1.9})),
    ]


# -- what held ---------------------------------------------------------------------------------------


def test_truncated_and_garbled_lines_are_skips_and_the_rest_reads(tmp_path: Path) -> None:
    basic = require_data("betfair_stream", "BASIC-1.132153978").read_bytes().splitlines(keepends=True)
    bad = [*basic[:40], basic[40][: len(basic[40]) // 2] + b"\n", b"\x00\xff garbage\n", b"[1,2]\n",
           b'{"op":"mcm","pt":"soon","mc":[]}\n', *basic[40:]]
    path = tmp_path / "cut.json"
    path.write_bytes(b"".join(bad))
    assert detect_format(path) == "betfair"
    whole = [q for _, q in read_recording(require_data("betfair_stream", "BASIC-1.132153978"), "auto", SkipLog())]
    skips = SkipLog()
    quotes = [q for _, q in read_recording(path, "auto", skips)]
    assert quotes == whole
    assert skips.total == 4


@pytest.mark.parametrize("pack", ["gzip", "bz2"])
def test_compressed_recordings_replay_alike(tmp_path: Path, pack: str) -> None:
    src = require_data("betfair_stream", "BASIC-1.132153978")
    data = src.read_bytes()
    path = tmp_path / f"1.132153978.{'gz' if pack == 'gzip' else 'bz2'}"
    path.write_bytes(gzip.compress(data) if pack == "gzip" else bz2.compress(data))
    assert detect_format(path) == "betfair"
    plain, packed = _cli("replay", str(src), "-q"), _cli("replay", str(path), "-q")
    assert plain.exit_code == packed.exit_code == 0
    assert plain.stdout == packed.stdout and plain.stdout.count("odds_drop") > 100


def test_interleaved_markets_read_as_each_alone(tmp_path: Path) -> None:
    a = [_mcm(T0 + i * 1000, "1.1", marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0 + i / 10}])
         for i in range(6)]
    b = [_mcm(T0 + i * 1000 + 500, "1.2", rc=[{"id": 1, "ltp": 4.0 - i / 10}],
              **({"marketDefinition": _definition()} if i == 0 else {})) for i in range(6)]
    mixed = [m for pair in zip(a, b, strict=True) for m in pair]
    q_mixed, sk, _ = _feed(mixed)
    q_a, _, _ = _feed(a)
    q_b, _, _ = _feed(b)
    assert not sk
    assert [q for q in q_mixed if q.event_id == "1.1"] == q_a
    assert [q for q in q_mixed if q.event_id == "1.2"] == q_b


def test_heartbeats_other_ops_and_ladder_removals() -> None:
    msgs = [
        _mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "atb": [[2.0, 10], [1.9, 5]]},
                                                      {"id": 2, "batb": [[0, 3.0, 10]]}]),
        {"op": "mcm", "clk": "x", "pt": T0 + 1},  # a heartbeat: no mc
        {"op": "mcm", "pt": T0 + 2, "ct": "HEARTBEAT", "mc": []},
        {"op": "ocm", "pt": T0 + 3}, {"op": "connection", "connectionId": "c"},
        _mcm(T0 + 4, rc=[{"id": 1, "atb": [[2.0, 0]]}, {"id": 2, "batb": [[0, 3.0, 0]]}]),  # size 0: removed
        _mcm(T0 + 5, rc=[{"id": 1, "atb": [[1.01, 3], [1000, 2]]}]),  # the ladder's two ends
    ]
    quotes, skips, _ = _feed(msgs, "back")
    assert not skips
    assert [(q.side, q.price, q.last_update - T0) for q in quotes] == [
        ("win:1", 100.0, 0), ("win:2", 200.0, 0), ("win:1", -111.111111111, 4), ("win:2", None, 4),
        ("win:1", 99900.0, 5)]


def test_suspend_reopen_close_and_bsp_text_are_handled() -> None:
    msgs = [_mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}]),
            _mcm(T0 + 1, marketDefinition=_definition("SUSPENDED")),
            _mcm(T0 + 2, marketDefinition=_definition()),
            _mcm(T0 + 3, rc=[{"id": 1, "ltp": 2.2}]),
            _mcm(T0 + 4, marketDefinition=_definition("CLOSED", bsp={1: "Infinity", 2: 2.5}))]
    quotes, skips, decoder = _feed(msgs)
    # reopening quotes nothing until a new price (B15B-14: the stale pre-suspension price is no re-prime)
    assert [(q.price, q.last_update - T0) for q in quotes if q.side == "win:1"] == [
        (100.0, 0), (None, 1), (120.0, 3), (None, 4)]
    assert [s.reason for s in skips.first] == ["invalid price"]  # bsp "Infinity": a located skip
    assert [(s.side, s.bsp) for s in decoder.starting_prices()] == [("win:2", 2.5)]


def test_replay_alerts_equal_backtest_alerts_and_in_play_ones_are_after_the_close(tmp_path: Path) -> None:
    path = _write(tmp_path / "late.json", _late_off_market())
    replayed = [json.loads(line) for line in _cli("replay", str(path), "-q").stdout.splitlines()]
    res = _cli("backtest", str(path), "--out", str(tmp_path / "bt"), "-q")
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(tmp_path / "bt" / "alerts.parquet")
    assert table.select("prev", "new", "last_update").rows() == [(a["prev"], a["new"], a["last_update"])
                                                                 for a in replayed]
    assert set(table.get_column("close_convention")) == {"starting-price"}
    before = table.filter(pl.col("last_update") < OFF_MS + 30_000)
    assert before.get_column("close_price").to_list() == [220.0, 220.0]  # bsp 3.2, at the late off
    after = table.filter(pl.col("last_update") > OFF_MS + 30_000)
    assert set(after.get_column("close_status")) == {"alert after close"}
    sp = starting_prices([path])
    assert sp is not None and sorted(sp.get_column("side")) == ["win:1", "win:2"]


def test_pro_back_prices_stream_equals_batch() -> None:
    pro = str(require_data("betfair_stream", "PRO-greyhound-1.197931750"))
    stream = _cli("replay", pro, "--betfair-price", "back", "-q")
    batch = _cli("replay", pro, "--betfair-price", "back", "--engine", "batch", "-q")
    assert stream.exit_code == batch.exit_code == 0
    assert stream.stdout == batch.stdout and stream.stdout.count("odds_drop") > 0


# -- defects ---------------------------------------------------------------------------------------


def test_out_of_range_ltp_is_a_skip_not_a_suspension() -> None:
    msgs = [_mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}]),
            _mcm(T0 + 1, rc=[{"id": 1, "ltp": 1500}])]
    quotes, skips, _ = _feed(msgs)
    assert [q.price for q in quotes if q.side == "win:1"] == [100.0]
    assert [s.reason for s in skips.first] == ["invalid price"]


def test_nan_bsp_token_does_not_lose_the_closing_definition(tmp_path: Path) -> None:
    msgs = [_mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 3.0}]),
            _mcm(T0 + 1, marketDefinition=_definition("CLOSED", bsp={1: float("nan"), 2: 2.5}))]
    path = _write(tmp_path / "nan.json", msgs)  # json.dumps writes the NaN float as a bare NaN token
    assert "NaN" in path.read_text()
    quotes = [q for _, q in read_recording(path, "betfair", SkipLog()) if isinstance(q, Quote)]
    assert [q.price for q in quotes][-2:] == [None, None]  # the close withdraws both runners
    sp = starting_prices([path])
    assert sp is not None and sp.get_column("side").to_list() == ["win:2"]


def test_first_in_play_trade_is_not_an_alert_against_the_pre_off_price() -> None:
    quotes, _, _ = _feed(_late_off_market())
    engine = DropEngine(threshold=10)
    alerts = [a for q in quotes for a in engine.observe(q) if isinstance(a, Drop)]
    pre_off_last = 200.0  # ltp 3.0
    first_in_play = 250.0  # ltp 3.5, the first trade after the off
    assert not [a for a in alerts if a.prev == pre_off_last and a.new == first_in_play]


def test_inputs_reach_the_betfair_reader() -> None:
    assert InputOptions(betfair_price="back").betfair_price == "back"


def test_first_trade_after_a_suspension_re_primes() -> None:
    msgs = [_mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 3.0}]),
            _mcm(T0 + 1, marketDefinition=_definition("SUSPENDED", runners={1: "ACTIVE", 2: "REMOVED"})),
            _mcm(T0 + 2, marketDefinition=_definition("OPEN", runners={1: "ACTIVE", 2: "REMOVED"})),
            _mcm(T0 + 3, rc=[{"id": 1, "ltp": 1.6}])]  # the reduction factor shortens runner 1
    quotes, _, _ = _feed(msgs)
    engine = DropEngine(threshold=10)
    assert [a for q in quotes for a in engine.observe(q)] == []


def test_back_prices_on_a_file_without_ladders_say_so() -> None:
    res = _cli("replay", str(require_data("betfair_stream", "BASIC-1.132153978")), "--betfair-price", "back")
    assert res.exit_code == 0
    assert "ladder" in res.stderr or "ltp" in res.stderr


def test_price_changes_without_any_definition_are_reported(tmp_path: Path) -> None:
    """B15B-20 (fixed): prices of a market whose definition never came are one skip naming it."""
    msgs = [_mcm(T0 + i, rc=[{"id": 1, "ltp": 2.0 + i / 10}]) for i in range(5)]
    path = _write(tmp_path / "nodef.json", msgs)
    skips = SkipLog()
    assert [q for _, q in read_recording(path, "betfair", skips)] == []
    assert skips.total >= 1 and MID in str(skips.first[0])


def test_full_image_resets_prices_and_a_re_added_runner_waits_for_a_price() -> None:
    """``img: true`` replaces the market's prices (a runner it carries no price for is withdrawn);
    a runner removed then re-added is quoted again only when a price arrives for it."""
    msgs = [_mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 3.0}]),
            _mcm(T0 + 1, img=True, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}]),
            _mcm(T0 + 2, rc=[{"id": 2, "ltp": 3.5}]),
            _mcm(T0 + 3, marketDefinition=_definition(runners={1: "ACTIVE", 2: "REMOVED"})),
            _mcm(T0 + 4, marketDefinition=_definition()),
            _mcm(T0 + 5, rc=[{"id": 2, "ltp": 4.0}])]
    quotes, skips, _ = _feed(msgs)
    assert not skips
    assert [(q.side, q.price, q.last_update - T0) for q in quotes] == [
        ("win:1", 100.0, 0), ("win:2", 200.0, 0), ("win:2", None, 1), ("win:2", 250.0, 2), ("win:2", None, 3),
        ("win:2", 300.0, 5)]


def test_a_betfair_file_with_vendor_lines_mixed_in(tmp_path: Path) -> None:
    """Lines of other formats inside a Betfair recording are 'wrong format' skips at their line;
    the recording's quotes are those of the file without them."""
    basic = require_data("betfair_stream", "BASIC-1.132153978").read_bytes().splitlines(keepends=True)
    alert = b'{"type":"odds_drop","sport_key":"nba","event_id":"x","bookmaker":"b","side":"h2h_home"}\n'
    row = b'{"sport_key":"nba","event_id":"e","bookmaker":"b","side":"h2h_home","price":-110,"last_update":1}\n'
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"".join([*basic[:50], alert, row, *basic[50:]]))
    assert detect_format(path) == "betfair"
    skips = SkipLog()
    quotes = [q for _, q in read_recording(path, "auto", skips)]
    assert quotes == [q for _, q in read_recording(require_data("betfair_stream", "BASIC-1.132153978"), "auto",
                                                    SkipLog())]
    assert [(s.where, s.reason) for s in skips.first] == [("mixed.ndjson:51", "wrong format"),
                                                           ("mixed.ndjson:52", "wrong format")]


def test_auto_close_with_a_betfair_file_keeps_the_other_inputs_close(tmp_path: Path) -> None:
    rec = _write(tmp_path / "late.json", _late_off_market())
    table = tmp_path / "nba.csv"
    table.write_text("sport_key,event_id,bookmaker,side,price,last_update,commence_time\n"
                     "basketball_nba,g1,pin,h2h_home,-110,1767268000000,2026-01-01T12:00:00Z\n"
                     "basketball_nba,g1,pin,h2h_home,-130,1767268100000,2026-01-01T12:00:00Z\n"
                     "basketball_nba,g1,pin,h2h_home,-140,1767268200000,2026-01-01T12:00:00Z\n")
    alone = _cli("backtest", str(table), "--out", str(tmp_path / "alone"), "-q")
    both = _cli("backtest", str(rec), str(table), "--out", str(tmp_path / "both"), "-q")
    assert alone.exit_code == 0, alone.output
    closes_alone = pl.read_parquet(tmp_path / "alone" / "alerts.parquet").get_column("close_price").to_list()
    assert closes_alone == [-140.0, -140.0]
    if both.exit_code == 2:  # refusing the mix, naming --close, is a fix too
        assert "--close" in both.output
        return
    mixed = pl.read_parquet(tmp_path / "both" / "alerts.parquet").filter(pl.col("event_id") == "g1")
    assert mixed.get_column("close_price").to_list() == closes_alone


def test_last_before_commence_close_of_an_on_time_off(tmp_path: Path) -> None:
    msgs = [_mcm(T0, marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 2.0}]),
            _mcm(T0 + 60_000, rc=[{"id": 1, "ltp": 2.5}]),
            _mcm(T0 + 120_000, rc=[{"id": 1, "ltp": 3.0}, {"id": 2, "ltp": 1.8}]),
            _mcm(OFF_MS, marketDefinition=_definition(in_play=True)),  # the off, on time
            _mcm(OFF_MS + 90_000, marketDefinition=_definition("CLOSED", True))]
    path = _write(tmp_path / "ontime.json", msgs)
    res = _cli("backtest", str(path), "--close", "last-before-commence", "--out", str(tmp_path / "bt"), "-q")
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(tmp_path / "bt" / "alerts.parquet")
    assert table.height >= 2
    assert set(table.get_column("close_status")) == {"ok"}
    assert table.filter(pl.col("side") == "win:1").get_column("close_price").to_list()[0] == 200.0


def test_auto_close_over_betfair_files_one_without_bsp(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.json", _late_off_market())
    cut = _write(tmp_path / "cut.json", [
        _mcm(T0, "1.6", marketDefinition=_definition(), rc=[{"id": 1, "ltp": 2.0}, {"id": 2, "ltp": 2.0}]),
        _mcm(T0 + 60_000, "1.6", rc=[{"id": 1, "ltp": 2.5}]),
        _mcm(OFF_MS + 5_000, "1.6", marketDefinition=_definition(in_play=True))])  # recording stops at the off
    res = _cli("backtest", str(full), str(cut), "--out", str(tmp_path / "bt"), "-q")
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(tmp_path / "bt" / "alerts.parquet")
    assert set(table.get_column("close_convention")) == {"starting-price"}
    assert table.filter(pl.col("event_id") == MID).get_column("close_price").to_list()[:2] == [220.0, 220.0]
