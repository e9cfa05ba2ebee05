"""Breaker (issue 15): hostile tables through the column mapping, odds formats and time rules.

Each ``xfail(strict=True)`` is a defect found by helper breaker15b (ids B15B-n, written up in
/tmp/notes/breaker15b.md): it fails today and passes once fixed. The plain tests pin what
held under the same attacks (so a fix cannot break them), and the defects fixed since
(B15B-1, -2, -3, -4, -7, -9, -10, -12: formats.mapping; B15B-8, -13, -15, -16, -19, -21:
io.tables; B15B-18: io.replay) as regression tests.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.cli.group import main
from dropengine.core.errors import ConfigError
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.mapping import TableMapping
from dropengine.io.inputs import InputOptions, OddsFormat
from dropengine.io.tables import read_quote_table

#: the row-wide fields of the small tables below
COLS = "sport_key==basketball_nba,bookmaker==bk,event_id=g,last_update=t"
#: a datetime holds times up to the end of year 9999: a ms time past it is no real time
YEAR_9999_END_MS = 253_402_300_799_999


def _read(path: Path, *, odds: OddsFormat = "american", columns: tuple[str, ...] = (COLS,), wide: tuple[str, ...] = (),
          recode: tuple[str, ...] = (), where: tuple[str, ...] = ()) -> tuple[list[Quote], SkipLog]:
    mapping = TableMapping.parse(columns=columns, wide=wide, recode=recode, where=where)
    skips = SkipLog()
    quotes = [q for _, q in read_quote_table(path, skips, inputs=InputOptions(odds_format=odds, mapping=mapping))]
    return quotes, skips


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _reasons(skips: SkipLog) -> list[str]:
    return [s.reason for s in skips.first]


# -- what held ---------------------------------------------------------------------------------------


def test_decimal_and_prob_edges_are_located_skips_and_the_good_rows_go_on(tmp_path: Path) -> None:
    """decimal <= 1, negative, inf/NaN text, '1,5' commas, EVEN without a recode: each a skip
    at its line; 1.01 and 1001 (the ends of SPEC 1's range) and an empty cell (suspended) read."""
    body = "g,t,h\n" + "\n".join(f"e,{1000 + i},{cell}" for i, cell in enumerate(
        ["1.0", "0.5", "1.01", "1001", "inf", "NaN", '"1,5"', "", "EVEN", "-2.0"])) + "\n"
    quotes, skips = _read(_csv(tmp_path, body), odds="decimal", wide=("h2h_home=h",))
    assert [(q.last_update // 1000, q.price) for q in quotes] == [(1002, -10000.0), (1003, 100000.0), (1007, None)]
    assert skips.total == 7
    assert [s.where for s in skips.first] == [f"t.csv:{n}" for n in (2, 3, 6, 7, 8, 10, 11)]


def test_prob_edges(tmp_path: Path) -> None:
    body = "g,t,h\n" + "\n".join(f"e,{1000 + i},{c}" for i, c in enumerate(
        ["0", "1", "-0.5", "50%", "0.5", "1e-9", "0.99999999"])) + "\n"
    quotes, skips = _read(_csv(tmp_path, body), odds="prob", wide=("h2h_home=h",))
    assert [q.price for q in quotes] == [100.0]
    assert skips.total == 6


def test_bom_crlf_quoted_header_and_unix_boundary(tmp_path: Path) -> None:
    """A UTF-8 BOM, CRLF line ends and quoted header names read; 99999999999 is seconds and
    1e11 exactly is ms (the documented boundary)."""
    body = '\ufeff"g","t","h"\r\na,99999999999,-110\r\nb,100000000000,-110\r\n'
    quotes, skips = _read(_csv(tmp_path, body), wide=("h2h_home=h",))
    assert not skips
    assert [q.last_update for q in quotes] == [99_999_999_999_000, 100_000_000_000]


def test_wide_bad_cell_costs_only_its_own_quote_and_names_the_line(tmp_path: Path) -> None:
    quotes, skips = _read(_csv(tmp_path, "g,t,h,a\n1,1000,-110,x\n2,1000,y,100\n"), wide=("h2h_home=h,h2h_away=a",))
    assert [(q.event_id, q.side) for q in quotes] == [("1", "h2h_home"), ("2", "h2h_away")]
    assert [(s.where, "column a" in s.message or "column h" in s.message) for s in skips.first] == [
        ("t.csv:2", True), ("t.csv:3", True)]


def test_duplicate_mapped_column_is_a_whole_file_skip_unused_duplicate_is_fine(tmp_path: Path) -> None:
    _, skips = _read(_csv(tmp_path, "g,t,h,h\n1,1000,-110,100\n"), wide=("h2h_home=h",))
    assert [s.reason for s in skips.files] == ["unusable file"]
    quotes, skips = _read(_csv(tmp_path, "g,t,h,x,x\n1,1000,-110,1,2\n", "u.csv"), wide=("h2h_home=h",))
    assert len(quotes) == 1 and not skips


def test_parquet_categorical_enum_float_and_tz_columns_under_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {"g": ["a", "b"], "t": [dt.datetime(2024, 1, 1, 5, tzinfo=dt.UTC), dt.datetime(2024, 1, 1, 6, tzinfo=dt.UTC)],
         "h": ["2.5", "EVEN"]},
        schema={"g": pl.Enum(["a", "b"]), "t": pl.Datetime("us", "Asia/Karachi"), "h": pl.Categorical},
    ).write_parquet(path)
    quotes, skips = _read(path, odds="decimal", wide=("h2h_home=h",), recode=("EVEN=2.0",))
    assert not skips
    assert [(q.event_id, q.price, q.last_update) for q in quotes] == [
        ("a", 150.0, 1_704_085_200_000), ("b", 100.0, 1_704_088_800_000)]


def test_replay_stream_and_batch_agree_on_a_messy_mapped_table(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,h,a\n1,1000,-110,100\n1,2000,-130,x\n1,3000,-150,120\n1,3500,,\n1,4000,-110,150\n")
    args = ["replay", str(path), "--columns", COLS, "--wide", "h2h_home=h,h2h_away=a"]
    out = {e: CliRunner().invoke(main, [*args, "--engine", e]) for e in ("stream", "batch")}
    assert out["stream"].exit_code == 0 and out["batch"].exit_code == 0
    assert out["stream"].stdout == out["batch"].stdout and out["stream"].stdout.count("odds_drop") == 3


# -- defects ---------------------------------------------------------------------------------------


def test_huge_commence_time_is_a_skip_not_a_crash(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,c,h\n1,1000,1700000000000000000,-110\n2,2000,1700000000,-110\n")
    quotes, skips = _read(path, columns=(COLS + ",commence_time=c",), wide=("h2h_home=h",))
    assert [q.event_id for q in quotes] == ["2"]
    assert [(s.where, s.reason) for s in skips.first] == [("t.csv:2", "bad time")]


def test_commence_time_offset_past_year_9999_is_a_skip(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,c,h\n1,1000,9999-12-31T12:00:00,-110\n2,2000,2020-01-01,-110\n")
    quotes, skips = _read(path, columns=(COLS + ",commence_time=c+1d",), wide=("h2h_home=h",))
    assert [q.event_id for q in quotes] == ["2"]
    assert _reasons(skips) == ["bad time"]


def test_cli_replay_survives_a_huge_commence_time(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,c,h\n1,1000,1700000000000000000,-110\n2,2000,1700000000,-110\n")
    res = CliRunner().invoke(main, ["replay", str(path), "--columns", COLS + ",commence_time=c",
                                    "--wide", "h2h_home=h"])
    assert res.exit_code == 0, res.output
    assert "bad time" in res.stderr


@pytest.mark.parametrize("item", ["h2h_hmoe=h", "spread_home=h", "total_ovr@2.5=h"])
def test_wide_side_typo_is_refused_when_parsed(item: str) -> None:
    with pytest.raises(ConfigError, match="--wide"):
        TableMapping.parse(columns=(COLS,), wide=(item,))


def test_cli_wide_typo_is_a_usage_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,h\n1,1000,-110\n")
    res = CliRunner().invoke(main, ["replay", str(path), "--columns", COLS, "--wide", "h2h_hmoe=h"])
    assert res.exit_code == 2 and "--wide" in res.output


def test_csv_and_parquet_of_one_table_give_the_same_keys(tmp_path: Path) -> None:
    frame = pl.DataFrame({"m": [240173947.0], "s": [12.0], "t": [1000], "h": [2.0]})
    csv_path, pq_path = tmp_path / "anz.csv", tmp_path / "anz.parquet"
    frame.write_csv(csv_path)
    frame.write_parquet(pq_path)
    assert "240173947.0" in csv_path.read_text()  # what a float column looks like in CSV (pandas and polars alike)
    cols = ("sport_key==horse_racing,bookmaker==betfair,event_id=m,last_update=t",)
    from_csv, _ = _read(csv_path, odds="decimal", columns=cols, wide=("win:{s}=h",))
    from_pq, _ = _read(pq_path, odds="decimal", columns=cols, wide=("win:{s}=h",))
    assert [(q.event_id, q.side) for q in from_pq] == [("240173947", "win:12")]
    assert [(q.event_id, q.side) for q in from_csv] == [(q.event_id, q.side) for q in from_pq]


@pytest.mark.parametrize("cell", ["1700000000000000000", "1700000000000000"])  # ns, us of 2023-11-14
def test_nanosecond_or_microsecond_times_are_not_read_as_milliseconds(tmp_path: Path, cell: str) -> None:
    quotes, skips = _read(_csv(tmp_path, f"g,t,h\n1,{cell},-110\n"), wide=("h2h_home=h",))
    assert all(q.last_update <= YEAR_9999_END_MS for q in quotes)
    assert quotes or _reasons(skips) == ["bad time"]


@pytest.mark.parametrize("cell", [" decimal", "Decimal", "DECIMAL "])
def test_odds_format_cell_is_read_as_loosely_as_a_price_cell(tmp_path: Path, cell: str) -> None:
    quotes, skips = _read(_csv(tmp_path, f"g,t,h,f\n1,1000,2.5,{cell}\n"),
                          columns=(COLS + ",odds_format=f",), wide=("h2h_home=h",))
    assert [q.price for q in quotes] == [150.0] and not skips


def test_decimal_text_that_is_no_number_is_an_invalid_price(tmp_path: Path) -> None:
    """B15B-9, decided (d9349a7): text that is no number is 'invalid price' in every odds format
    (as every quote reader says it); a number a format refuses is 'bad price'."""
    _, skips = _read(_csv(tmp_path, "g,t,h\n1,1000,EVEN\n1,1001,0.5\n"), odds="decimal", wide=("h2h_home=h",))
    assert _reasons(skips) == ["invalid price", "bad price"]


def test_where_cell_that_cannot_be_compared_is_a_bad_cell(tmp_path: Path) -> None:
    _, skips = _read(_csv(tmp_path, "g,t,h,x\n1,1000,-110,nan\n"), wide=("h2h_home=h",), where=("x<5",))
    assert _reasons(skips) == ["bad cell"]


def test_out_of_range_decimal_message_says_out_of_range(tmp_path: Path) -> None:
    _, skips = _read(_csv(tmp_path, "g,t,h\n1,1000,1500.5\n"), odds="decimal", wide=("h2h_home=h",))
    assert skips.first and "above 1" not in skips.first[0].message


def test_mapping_file_with_a_bom(tmp_path: Path) -> None:
    table = _csv(tmp_path, "g,t,h\n1,1000,-110\n1,2000,-130\n")
    toml = tmp_path / "m.toml"
    toml.write_bytes(b'\xef\xbb\xbfwide = ["h2h_home=h"]\n[columns]\nsport_key = "=nba"\nbookmaker = "=bk"\n'
                     b'event_id = "g"\nlast_update = "t"\n')
    res = CliRunner().invoke(main, ["replay", str(table), "--mapping", str(toml), "-q"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("odds_drop") == 1


@pytest.mark.parametrize("mapped", [False, True])
def test_starting_prices_of_a_csv_without_the_column_read_no_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   mapped: bool) -> None:
    import dropengine.io.tables as tables
    from dropengine.io.starting import starting_prices

    rows_read = 0
    real = tables._csv_rows

    def counting(*args: Any, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        nonlocal rows_read
        for row in real(*args, **kwargs):
            rows_read += 1
            yield row

    monkeypatch.setattr(tables, "_csv_rows", counting)
    if mapped:
        path = _csv(tmp_path, "g,t,h\n" + "".join(f"1,{i},-110\n" for i in range(200)))
        inputs = InputOptions(mapping=TableMapping.parse(columns=(COLS,), wide=("h2h_home=h",)))
    else:
        path = _csv(tmp_path, "sport_key,event_id,bookmaker,side,price,last_update\n"
                    + "".join(f"s,e,b,h2h_home,-110,{i}\n" for i in range(200)))
        inputs = InputOptions()
    assert starting_prices([path], inputs=inputs) is None
    assert rows_read == 0


def test_mapped_csv_with_spaces_after_the_commas(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g, t, s, h\n1, 1000, 12, 2.5\n1, 2000, 12, 3.0\n")
    quotes, skips = _read(path, odds="decimal", wide=("win:{s}=h",))
    assert not skips
    assert [(q.event_id, q.side, q.price) for q in quotes] == [("1", "win:12", 150.0), ("1", "win:12", 200.0)]


def test_plain_csv_with_spaces_after_the_commas(tmp_path: Path) -> None:
    path = _csv(tmp_path, "sport_key, event_id, bookmaker, side, price, last_update\n"
                          "basketball_nba, e1, bk, h2h_home, -110, 1000\n")
    skips = SkipLog()
    quotes = [q for _, q in read_quote_table(path, skips)]
    assert not skips
    assert [(q.event_id, q.side, q.price) for q in quotes] == [("e1", "h2h_home", -110)]


def test_row_level_time_unused_by_any_item_does_not_cost_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,t1,h\n1,xx,1000,-110\n")
    quotes, _ = _read(path, wide=("h2h_home=h/t1",))
    assert [(q.side, q.last_update) for q in quotes] == [("h2h_home", 1_000_000)]


def _typed_ndjson(tmp_path: Path) -> Path:
    path = tmp_path / "typed.ndjson"
    path.write_text('{"g":"1","t":1000,"type":"pregame","h":-110}\n{"g":"1","t":2000,"type":"pregame","h":-130}\n')
    return path


def test_mapped_ndjson_rows_with_a_type_field_are_rows(tmp_path: Path) -> None:
    quotes, skips = _read(_typed_ndjson(tmp_path), wide=("h2h_home=h",))
    assert not skips
    assert [q.price for q in quotes] == [-110, -130]


@pytest.mark.parametrize("fmt", [[], ["--format", "quotes"]])
def test_cli_mapped_ndjson_with_a_type_field(tmp_path: Path, fmt: list[str]) -> None:
    res = CliRunner().invoke(main, ["replay", str(_typed_ndjson(tmp_path)), *fmt, "--columns", COLS,
                                    "--wide", "h2h_home=h", "-q"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("odds_drop") == 1


def test_rows_with_a_trailing_empty_cell_read(tmp_path: Path) -> None:
    quotes, skips = _read(_csv(tmp_path, "g,t,h\n1,1000,-110,\n1,2000,-130,\n"), wide=("h2h_home=h",))
    assert [q.price for q in quotes] == [-110, -130] and not skips


_CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "0", "-0", "1e11", "1e400", "nan", "inf", "-inf", "EVEN", "PK", "9999-12-31T23:59:59",
                     "0001-01-01", "2024-02-30", "1.0", "1.01", "1001", "2.5", "-110", "+150", "1,5", "50%", "1e-400",
                     "99999999999999999999999", "-1", "1e18", "253402300800", "T12:00", "decimal", "prob"]),
    st.integers().map(str), st.floats().map(repr))
_COLUMNS = ("g", "t", "sp", "f", "h", "s", "l", "c")
_MESSY = TableMapping.parse(
    columns=("sport_key==nba,bookmaker==bk,event_id=g,last_update=t,starting_price=sp,odds_format=f",),
    wide=("h2h_home=h/t-1m", "spread_home=s@l", "win:{g}=h"), recode=("EVEN=100,PK=absent",), where=("t<=c",))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries({c: _CELLS for c in _COLUMNS}), min_size=1, max_size=4),
       odds=st.sampled_from(["american", "decimal", "prob"]))
def test_messy_cells_never_raise_out_of_the_mapped_reader(tmp_path: Path, rows: list[dict[str, str]],
                                                          odds: OddsFormat) -> None:
    """Any cell text in any mapped field (times, prices, lines, starting price, odds format,
    --where operands) is a quote or a located skip: the reader never raises (commence_time
    is left out here: B15B-1 has its own tests)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = _csv(tmp_path, buf.getvalue().replace("\r", " "), "messy.csv")
    skips = SkipLog()
    quotes = [q for _, q in read_quote_table(path, skips, inputs=InputOptions(odds_format=odds, mapping=_MESSY))]
    assert all(q.event_id and q.bookmaker == "bk" for q in quotes)
    assert all(s.where.startswith("messy.csv:") for s in skips.first)


def _odds_api_snapshot(path: Path, stamp: str, home: float, away: float) -> Path:
    book = {"key": "pin", "last_update": stamp, "markets": [
        {"key": "h2h", "last_update": stamp, "outcomes": [{"name": "A", "price": home}, {"name": "B", "price": away}]}]}
    path.write_text(json.dumps([{"id": "ev1", "sport_key": "basketball_nba", "commence_time": "2026-01-01T00:00:00Z",
                                 "home_team": "A", "away_team": "B", "bookmakers": [book]}]))
    return path


def test_odds_format_decimal_on_odds_api_snapshots_is_applied_or_refused(tmp_path: Path) -> None:
    a = _odds_api_snapshot(tmp_path / "a.json", "2025-12-31T10:00:00Z", 1.91, 2.0)
    b = _odds_api_snapshot(tmp_path / "b.json", "2025-12-31T11:00:00Z", 1.5, 2.6)
    res = CliRunner().invoke(main, ["replay", str(a), str(b), "--odds-format", "decimal", "-q"])
    applied = res.exit_code == 0 and res.stdout.count("odds_drop") == 2
    refused = res.exit_code == 2 and "--odds-format" in res.output
    assert applied or refused, res.output


def test_semicolon_table_with_decimal_commas(tmp_path: Path) -> None:
    quotes, skips = _read(_csv(tmp_path, "g;t;h\n1;1000;1,91\n1;2000;1,5\n"), odds="decimal", wide=("h2h_home=h",))
    assert not skips
    assert [round(q.price or 0, 2) for q in quotes] == [-109.89, -200.0]


def test_starting_price_of_a_runner_without_quotes_is_kept(tmp_path: Path) -> None:
    from dropengine.io.tables import table_starting_prices

    path = _csv(tmp_path, "M,S,T,VWAP,BSP\n1.1,11,1000,2.5,3.2\n1.1,22,1000,2.0,1.9\n1.1,33,1000,,10.0\n")
    mapping = TableMapping.parse(columns=("sport_key==horse_racing,bookmaker==betfair,event_id=M,last_update=T,"
                                          "starting_price=BSP",), wide=("win:{S}=VWAP",), recode=("=absent",))
    table = table_starting_prices(path, InputOptions(odds_format="decimal", mapping=mapping))
    assert table is not None
    assert sorted(table.get_column("side").to_list()) == ["win:11", "win:22", "win:33"]


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_a_frames_recording_beside_a_mapped_table_stays_frames(tmp_path: Path, engine: str) -> None:
    """B15B-23 (fixed: io.recordings reads a row-like file as a mapped table only when its rows carry
    the mapping's columns)."""
    frames = tmp_path / "frames.ndjson"
    sim = CliRunner().invoke(main, ["simulate", "--events", "1", "--hours", "1", "--books", "3", "--out", str(frames)])
    assert sim.exit_code == 0, sim.output
    table = _csv(tmp_path, "g,t,h\n1,1000,-110\n1,2000,-130\n")
    alone = CliRunner().invoke(main, ["replay", str(frames), "--engine", engine, "-q"])
    both = CliRunner().invoke(main, ["replay", str(frames), str(table), "--engine", engine, "--columns", COLS,
                                     "--wide", "h2h_home=h", "-q"])
    assert alone.exit_code == 0 and both.exit_code == 0, both.output
    assert both.stdout.count("odds_drop") == alone.stdout.count("odds_drop") + 1
