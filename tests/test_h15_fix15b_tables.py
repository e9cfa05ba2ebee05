"""Fixes of breaker15b's table findings (issue 15): each test states the rule the fix keeps.

B15B-n ids refer to /tmp/notes/breaker15b.md; the breaker's own tests are in
tests/test_h15_breaker15b_tables.py. These pin the edges of each fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError, FeedError
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.mapping import LATEST_MS, TableMapping, load_mapping, time_ms
from dropengine.io.inputs import InputOptions, OddsFormat
from dropengine.io.tables import read_quote_table

COLS = "sport_key==basketball_nba,bookmaker==bk,event_id=g,last_update=t"


def _read(path: Path, *, odds: OddsFormat = "american", columns: tuple[str, ...] = (COLS,),
          wide: tuple[str, ...] = ("h2h_home=h",), recode: tuple[str, ...] = (),
          where: tuple[str, ...] = ()) -> tuple[list[Quote], SkipLog]:
    mapping = TableMapping.parse(columns=columns, wide=wide, recode=recode, where=where)
    skips = SkipLog()
    quotes = [q for _, q in read_quote_table(path, skips, inputs=InputOptions(odds_format=odds, mapping=mapping))]
    return quotes, skips


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# -- B15B-1 / B15B-4: a mapped time lies between 1970 and the end of 9999 ---------------------------

@settings(max_examples=60, deadline=None)
@given(ms=st.integers(100_000_000_000, 2 * LATEST_MS))
def test_a_ms_time_is_read_exactly_up_to_the_end_of_9999_and_refused_after(ms: int) -> None:
    if ms <= LATEST_MS:
        assert time_ms(ms, "t") == time_ms(str(ms), "t") == ms
        return
    for cell in (ms, str(ms)):
        with pytest.raises(FeedError, match="out of range") as err:
            time_ms(cell, "last_update (column t)")
        assert err.value.reason == "bad time" and "last_update (column t)" in str(err.value)


def test_a_commence_time_past_9999_with_or_without_its_offset_is_a_skip(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"g,t,c,h\n1,1000,{LATEST_MS - 3_600_000},-110\n2,1000,{LATEST_MS + 1},-110\n"
                          "3,1000,9999-12-31T23:00:00,-110\n4,1000,9999-12-31T23:01:00,-110\n")
    quotes, skips = _read(path, columns=(COLS + ",commence_time=c+59m",))
    assert [(q.event_id, q.commence_time) for q in quotes] == [("1", "9999-12-31T23:58:59Z"),
                                                               ("3", "9999-12-31T23:59:00Z")]
    assert [(s.where, s.reason) for s in skips.first] == [("t.csv:3", "bad time"), ("t.csv:5", "bad time")]


# -- B15B-2: a fixed --wide side that can never be a side is refused when parsed ---------------------

@pytest.mark.parametrize(("item", "said"), [
    ("h2h_hmoe=h", "not a known side"),
    ("spread_home=h", "needs its line"),
    ("total_under=h@", "the line after '@' is empty"),
    ("pts:LeBron:ovr=h@l", "over|under"),
    ("win:=h", "runner"),
])
def test_a_fixed_side_that_is_no_side_is_a_config_error_naming_the_item(item: str, said: str) -> None:
    with pytest.raises(ConfigError, match="--wide: item 1") as err:
        TableMapping.parse(columns=(COLS,), wide=(item,))
    assert said in str(err.value) and repr(item) in str(err.value)


def test_a_mapping_file_wide_table_with_a_bad_fixed_side_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--mapping: wide\[2\].*needs its line"):
        load_mapping('wide = ["h2h_home=h", {side = "total_over", price = "o"}]\n')


@pytest.mark.parametrize("item", ["h2h_draw=h", "spread_away=h@l", "total_over@2.5=h", "total_under=h@-1",
                                  "pts:LeBron James:over=h@l", "win:{s}=h", "{m}=h", "win:12=h"])
def test_sides_that_can_be_sides_parse(item: str) -> None:
    assert TableMapping.parse(columns=(COLS,), wide=(item,)).wide[0].text == item


# -- B15B-7: an odds_format cell is read stripped and in any case ----------------------------------

@pytest.mark.parametrize("mapped", [False, True])
def test_odds_format_cells_with_spaces_and_capitals(tmp_path: Path, mapped: bool) -> None:
    cells = [" decimal", "PROB ", "American", " ", "decimals"]
    if mapped:
        body = "g,t,h,f\n" + "".join(f"1,{1000 + i},{p},{c}\n" for i, (p, c) in enumerate(
            zip(["2.5", "0.5", "-110", "-120", "2.0"], cells, strict=True)))
        quotes, skips = _read(_csv(tmp_path, body), columns=(COLS + ",odds_format=f",))
    else:
        body = "sport_key,event_id,bookmaker,side,price,last_update,odds_format\n" + "".join(
            f"s,1,bk,h2h_home,{p},{1000 + i},{c}\n" for i, (p, c) in enumerate(
                zip(["2.5", "0.5", "-110", "-120", "2.0"], cells, strict=True)))
        skips = SkipLog()
        quotes = [q for _, q in read_quote_table(_csv(tmp_path, body), skips)]
    assert [q.price for q in quotes] == [150.0, 100.0, -110, -120]
    assert [(s.where, s.reason) for s in skips.first] == [("t.csv:6", "bad field")]
    assert "'decimals'" in skips.first[0].message


# -- B15B-10: a mapping file with a UTF-8 BOM reads as without ------------------------------------

def test_a_mapping_text_with_a_bom_reads_as_without() -> None:
    text = 'wide = ["h2h_home=h"]\n[columns]\nevent_id = "g"\n'
    assert load_mapping("\ufeff" + text) == load_mapping(text)


# -- B15B-9: skip reasons and messages say what is wrong ---------------------------------------------

@pytest.mark.parametrize(("odds", "cell", "reason", "said"), [
    ("decimal", "EVEN", "invalid price", "is not a number"),  # as every quote reader (README: `invalid price`)
    ("prob", "abc", "invalid price", "is not a number"),
    ("decimal", "1.0", "bad price", "above 1"),
    ("decimal", "1500.5", "bad price", "maps outside SPEC 1's valid American prices"),
    ("decimal", "1e308", "bad price", "maps outside"),
    ("decimal", "1.0005", "bad price", "maps outside"),
    ("prob", "1e-9", "bad price", "maps outside"),
    ("prob", "1", "bad price", "strictly between 0 and 1"),
])
def test_price_skips_say_why(tmp_path: Path, odds: OddsFormat, cell: str, reason: str, said: str) -> None:
    good = "2.5" if odds == "decimal" else "0.4"
    quotes, skips = _read(_csv(tmp_path, f"g,t,h\n1,1000,{cell}\n1,2000,{good}\n"), odds=odds)
    assert [(s.where, s.reason) for s in skips.first] == [("t.csv:2", reason)]
    assert said in skips.first[0].message and "column h" in skips.first[0].message
    assert [q.price for q in quotes] == [150.0]


@pytest.mark.parametrize("cell", ["nan", "soon", "-3x"])
def test_a_where_cell_that_cannot_be_compared_is_a_bad_cell_naming_it(tmp_path: Path, cell: str) -> None:
    quotes, skips = _read(_csv(tmp_path, f"g,t,h,x\n1,1000,-110,{cell}\n1,2000,-120,3\n"), where=("x<5",))
    assert [q.price for q in quotes] == [-120]
    assert [(s.where, s.reason) for s in skips.first] == [("t.csv:2", "bad cell")]
    assert "x (--where x<5)" in skips.first[0].message and repr(cell) in skips.first[0].message


# -- B15B-12: a bad row-level last_update costs only the --wide items that use it --------------------

def test_a_bad_row_time_costs_only_the_items_without_their_own_time(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,t1,h,a\n1,xx,1000,-110,120\n2,2000,3000,-130,140\n")
    quotes, skips = _read(path, wide=("h2h_home=h/t1", "h2h_away=a"))
    assert [(q.event_id, q.side, q.last_update) for q in quotes] == [
        ("1", "h2h_home", 1_000_000), ("2", "h2h_home", 3_000_000), ("2", "h2h_away", 2_000_000)]
    assert [(s.where, s.reason) for s in skips.first] == [("t.csv:2", "bad time")]
    assert "last_update (column t)" in skips.first[0].message


def test_a_bad_row_time_unused_by_every_item_costs_nothing_and_a_used_one_costs_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g,t,t1,h,a\n1,xx,1000,-110,120\n")
    quotes, skips = _read(path, wide=("h2h_home=h/t1", "h2h_away=a/t1"))
    assert len(quotes) == 2 and not skips
    quotes, skips = _read(path, wide=("h2h_home=h", "h2h_away=a"))
    assert not quotes and [(s.where, s.reason) for s in skips.first] == [("t.csv:2", "bad time")]


# -- B15B-3: one table as CSV or Parquet gives the same keys ---------------------------------------

@settings(max_examples=40, deadline=None)
@given(market=st.one_of(st.integers(1, 10**12).map(float),
                        st.floats(1, 1e6, allow_nan=False).map(lambda x: round(x, 3))),
       selection=st.integers(1, 10**9).map(float))
def test_float_key_columns_give_the_same_keys_from_csv_and_parquet(tmp_path_factory: pytest.TempPathFactory,
                                                                   market: float, selection: float) -> None:
    import polars as pl

    tmp = tmp_path_factory.mktemp("keys")
    frame = pl.DataFrame({"m": [market], "s": [selection], "t": [1000], "h": [2.0]})
    frame.write_csv(tmp / "k.csv")
    frame.write_parquet(tmp / "k.parquet")
    cols = ("sport_key==horse_racing,bookmaker==betfair,event_id=m,last_update=t",)
    got = [[(q.event_id, q.side) for q in _read(tmp / name, odds="decimal", columns=cols, wide=("win:{s}=h",))[0]]
           for name in ("k.csv", "k.parquet")]
    assert got[0] == got[1]
    assert got[1] == [(str(int(market)) if market.is_integer() else repr(market), f"win:{int(selection)}")]


@pytest.mark.parametrize(("cell", "key"), [("12.0", "12"), ("-3.00", "-3"), ("007.0", "007"),
                                           ("1.132153978", "1.132153978"), ("1e5", "1e5"), ("12.", "12."),
                                           ("x12.0", "x12.0")])
def test_only_an_integral_number_with_a_zero_fraction_loses_it(tmp_path: Path, cell: str, key: str) -> None:
    quotes, _ = _read(_csv(tmp_path, f'g,t,h\n"{cell}",1000,-110\n'))
    assert [q.event_id for q in quotes] == [key]


def test_a_fixed_value_is_kept_as_given(tmp_path: Path) -> None:
    quotes, _ = _read(_csv(tmp_path, "g,t,h\n1,1000,-110\n"), columns=(COLS.replace("bk", "12.0"),))
    assert [q.bookmaker for q in quotes] == ["12.0"]


# -- B15B-13: spaces after the delimiter are no part of a cell ---------------------------------------

@pytest.mark.parametrize("sep", [", ", ";  ", "\t "])
def test_spaces_after_the_delimiter_are_dropped_quoted_spaces_kept(tmp_path: Path, sep: str) -> None:
    rows = [["sport_key", "event_id", "bookmaker", "side", "price", "last_update"],
            ["basketball_nba", "e1", "bk", "h2h_home", "-110", "1000"],
            ["basketball_nba", '" e 2"', "bk", "h2h_away", "120", "1000"]]
    path = _csv(tmp_path, "".join(sep.join(r) + "\n" for r in rows))
    skips = SkipLog()
    quotes = [q for _, q in read_quote_table(path, skips)]
    assert not skips
    assert [(q.event_id, q.side, q.price) for q in quotes] == [("e1", "h2h_home", -110), (" e 2", "h2h_away", 120)]


@settings(max_examples=30, deadline=None)
@given(event_id=st.text(st.sampled_from(" \tab1,\""), min_size=1, max_size=6).filter(lambda t: t.strip()))
def test_a_written_csv_reads_back_ids_with_leading_spaces(tmp_path_factory: pytest.TempPathFactory,
                                                          event_id: str) -> None:
    from dropengine.io.tables import write_quote_table

    path = tmp_path_factory.mktemp("ws") / "q.csv"
    q = Quote("basketball_nba", event_id, "bk", "h2h_home", -110, 1000)
    write_quote_table(path, [q, Quote("basketball_nba", "e", " bk", "h2h_home", 120, 2000)])
    skips = SkipLog()
    assert [x for _, x in read_quote_table(path, skips)] == [q, Quote("basketball_nba", "e", " bk", "h2h_home",
                                                                      120, 2000)]
    assert not skips


# -- B15B-16: a trailing delimiter (empty cells past the named columns) costs no row ------------------

@pytest.mark.parametrize(("header", "rows", "read", "bad"), [
    ("g,t,h", ["1,1000,-110,", "1,2000,-130,,", "1,3000,-150,x", "1,4000"], [-110, -130], [4, 5]),
    ("g,t,h,", ["1,1000,-110", "1,2000,-130,", "1,3000,-150,x", "1,4000,-170,,y", "1,5000,-190,,"],
     [-110, -130, -150, -190], [5]),
    ("g,t,h,,", ["1,1000,-110", "1,2000,-130,a,b", "1,3000,-150,a,b,c"], [-110, -130], [4]),
])
def test_cells_past_the_named_columns(tmp_path: Path, header: str, rows: list[str], read: list[int],
                                      bad: list[int]) -> None:
    quotes, skips = _read(_csv(tmp_path, header + "\n" + "\n".join(rows) + "\n"))
    assert [q.price for q in quotes] == read
    assert [(s.where, s.reason) for s in skips.first] == [(f"t.csv:{n}", "bad row") for n in bad]


def test_a_plain_table_with_a_trailing_delimiter_and_its_header_again(tmp_path: Path) -> None:
    head = "sport_key,event_id,bookmaker,side,price,last_update,\n"
    path = _csv(tmp_path, head + "s,e,bk,h2h_home,-110,1000,\n" + head + "s,e,bk,h2h_home,-130,2000\n")
    skips = SkipLog()
    assert [q.price for _, q in read_quote_table(path, skips)] == [-110, -130] and not skips


# -- B15B-8: a table without a starting price is told so by its header or schema, no row read --------

@pytest.mark.parametrize(("name", "has_column"), [("t.csv", False), ("t.csv", True), ("t.csv.gz", False),
                                                  ("t.parquet", False), ("t.parquet", True), ("t.ndjson", False)])
@pytest.mark.parametrize("mapped", [False, True])
def test_starting_prices_read_rows_only_when_the_table_can_have_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, has_column: bool, mapped: bool) -> None:
    import polars as pl

    import dropengine.io.tables as tables

    sp = {"starting_price": [3.0, 2.5]} if has_column else {}
    frame = pl.DataFrame({"sport_key": ["s", "s"], "event_id": ["e", "e"], "bookmaker": ["bk", "bk"],
                          "side": ["win:1", "win:2"], "price": [2.0, 3.0], "last_update": [1000, 2000], **sp})
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.write_parquet(path)
    elif name.endswith(".ndjson"):
        frame.write_ndjson(path)
    else:
        import gzip
        text = frame.write_csv()
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    read: list[str] = []
    for reader in ("_csv_rows", "_parquet_rows", "_ndjson_rows"):
        real = getattr(tables, reader)

        def counting(*args: Any, _real: Any = real, _name: str = reader, **kwargs: Any) -> Any:
            read.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(tables, reader, counting)
    mapping = TableMapping.parse(columns=("bookmaker==bk",)) if mapped else None
    got = tables.table_starting_prices(path, InputOptions(odds_format="decimal", mapping=mapping))
    if has_column:
        assert got is not None and got.get_column("starting_price").to_list() == [200.0, 150.0]
    elif name.endswith(".ndjson"):
        assert got is None and read == ["_ndjson_rows"]  # NDJSON rows have their own keys: read to tell
    else:
        assert got is None and read == []


# -- B15B-15: a mapping says what NDJSON rows are; their shape is not judged -------------------------

_TYPED_ROWS = ('{"g":"1","t":1000,"type":"pregame","h":-110}\n'
               '{"g":"1","t":2000,"data":[1],"bookmakers":[],"h":-130}\n'
               '{"g":"1","t":3000,"op":"mcm","pt":5,"h":-150}\n')


def test_mapped_ndjson_rows_of_any_shape_are_rows_and_plain_ones_are_still_judged(tmp_path: Path) -> None:
    path = tmp_path / "typed.ndjson"
    path.write_text(_TYPED_ROWS)
    quotes, skips = _read(path)
    assert [q.price for q in quotes] == [-110, -130, -150] and not skips
    plain = tmp_path / "plain.ndjson"
    plain.write_text('{"type":"odds_drop","data":[]}\n'
                     '{"sport_key":"s","event_id":"e","bookmaker":"b","side":"h2h_home","price":-110,"last_update":1}\n')
    log = SkipLog()
    assert len([q for _, q in read_quote_table(plain, log)]) == 1
    assert [(s.where, s.reason) for s in log.first] == [("plain.ndjson:1", "wrong format")]


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_replay_of_a_mapped_ndjson_table_without_its_extension(tmp_path: Path, engine: str) -> None:
    from click.testing import CliRunner

    from dropengine.cli.group import main

    path = tmp_path / "typed.txt"  # auto detection: the mapping makes it a table on every engine
    path.write_text(_TYPED_ROWS)
    res = CliRunner().invoke(main, ["replay", str(path), "--columns", COLS, "--wide", "h2h_home=h", "-q",
                                    "--engine", engine])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("odds_drop") == 2


# -- B15B-21: a side keeps its starting price whether or not its price cells make a quote ------------

@pytest.mark.parametrize("mapped", [False, True])
def test_every_runner_keeps_its_starting_price(tmp_path: Path, mapped: bool) -> None:
    from dropengine.io.tables import table_starting_prices

    if mapped:
        body = ("M,S,T,VWAP,BSP,keep\n1.1,11,1000,2.5,3.2,1\n1.1,22,1000,x,1.9,1\n1.1,33,1000,,10.0,1\n"
                "1.1,44,1000,3.0,4.0,0\n1.1,55,1000,0,5.0,1\n")
        mapping = TableMapping.parse(columns=("sport_key==horse_racing,bookmaker==betfair,event_id=M,last_update=T,"
                                              "starting_price=BSP",), wide=("win:{S}=VWAP",),
                                     recode=("=absent", "0=absent"), where=("keep==1",))
        inputs = InputOptions(odds_format="decimal", mapping=mapping)
    else:
        body = ("sport_key,event_id,bookmaker,side,price,last_update,starting_price\n"
                "h,1.1,betfair,win:11,2.5,1000,3.2\nh,1.1,betfair,win:22,x,1000,1.9\nh,1.1,betfair,win:33,,1000,10.0\n"
                "h,1.1,betfair,win:55,0.5,1000,5.0\n")
        inputs = InputOptions(odds_format="decimal")
    path = _csv(tmp_path, body)
    table = table_starting_prices(path, inputs)
    assert table is not None
    assert sorted(zip(table.get_column("side").to_list(), table.get_column("starting_price").to_list(),
                      strict=True)) == [("win:11", 220.0), ("win:22", -111.111111111), ("win:33", 900.0),
                                        ("win:55", 400.0)]
    quotes = [q for _, q in read_quote_table(path, SkipLog(), inputs=inputs)]  # the quotes are as before
    assert [(q.side, q.price) for q in quotes] == [("win:11", 150.0)] + ([("win:33", None)] if not mapped else [])


# -- B15B-19: a ';' table's number cells may have a decimal comma ------------------------------------

def test_a_semicolon_table_reads_decimal_commas_in_number_columns_only(tmp_path: Path) -> None:
    path = _csv(tmp_path, "g;t;h;l;s\n1,5;1000;1,91;-1,5;2,0\n2;2000;2,5;0,5;3,25\n")
    quotes, skips = _read(path, odds="decimal", columns=(COLS + ",starting_price=s",), wide=("spread_home=h@l",))
    assert not skips
    assert [(q.event_id, q.side, round(q.price or 0, 5)) for q in quotes] == [
        ("1,5", "spread_home@-1.5", -109.89011), ("2", "spread_home@0.5", 150.0)]  # the id is text: kept
    plain = _csv(tmp_path, "sport_key;event_id;bookmaker;side;price;last_update\ns;1,5;bk;h2h_home;-110,0;1000\n",
                 "p.csv")
    log = SkipLog()
    assert [(q.event_id, q.price) for _, q in read_quote_table(plain, log)] == [("1,5", -110.0)] and not log


def test_a_comma_table_keeps_refusing_a_quoted_decimal_comma(tmp_path: Path) -> None:
    quotes, skips = _read(_csv(tmp_path, 'g,t,h\n1,1000,"1,91"\n'), odds="decimal")
    assert not quotes and [(s.where, s.reason) for s in skips.first] == [("t.csv:2", "invalid price")]


# -- B15B-18: --odds-format is refused for a file whose prices are American by its format -------------

def test_odds_format_other_than_american_is_refused_for_vendor_formats(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from dropengine.cli.group import main
    from dropengine.io.replay import read_quotes

    snap = tmp_path / "a.json"
    book = {"key": "pin", "last_update": "2025-12-31T10:00:00Z", "markets": [
        {"key": "h2h", "outcomes": [{"name": "A", "price": 1.91}, {"name": "B", "price": 2.0}]}]}
    snap.write_text(json.dumps([{"id": "ev1", "sport_key": "basketball_nba", "commence_time": "2026-01-01T00:00:00Z",
                                 "home_team": "A", "away_team": "B", "bookmakers": [book]}]))
    table = _csv(tmp_path, "sport_key,event_id,bookmaker,side,price,last_update\ns,e,bk,h2h_home,1.91,1000\n")
    with pytest.raises(ConfigError, match=r"--odds-format prob .* a\.json is theoddsapi"):
        list(read_quotes([table, snap], inputs=InputOptions(odds_format="prob")))
    for engine in ("stream", "batch"):
        res = CliRunner().invoke(main, ["replay", str(table), str(snap), "--odds-format", "decimal", "-q",
                                        "--engine", engine])
        assert res.exit_code == 2 and "--odds-format decimal" in res.output and "oddsFormat=american" in res.output
    assert [len(b) for b, _ in read_quotes([table], inputs=InputOptions(odds_format="decimal"))] == [1]
    assert sum(len(b) for b, _ in read_quotes([table, snap])) == 3  # American: read as before


# -- B15B-23: an NDJSON file is a mapped table only when its rows carry the mapping's columns ---------

def test_rows_carry_mapping_and_a_mapped_ndjson_without_the_columns_is_one_file_skip(tmp_path: Path) -> None:
    from dropengine.io.tables import rows_carry_mapping

    inputs = InputOptions(mapping=TableMapping.parse(columns=(COLS,), wide=("h2h_home=h",)))
    rows = tmp_path / "rows.ndjson"
    rows.write_text('not json\n{"g":"1","t":1000,"type":"x","h":-110}\n')
    frames = tmp_path / "frames.ndjson"
    frames.write_text('{"type":"odds_drop","data":[]}\n' * 3)
    doc = tmp_path / "doc.json"
    doc.write_text('[{"id":"e","g":1,"t":1,"h":1}]\n')
    assert rows_carry_mapping(rows, inputs)
    assert not rows_carry_mapping(frames, inputs) and not rows_carry_mapping(doc, inputs)
    assert not rows_carry_mapping(rows, InputOptions())
    quotes, skips = _read(frames)
    assert not quotes and skips.total == 1 and [s.reason for s in skips.files] == ["unusable file"]
    assert "g, t, h" in skips.files[0].message and "type, data" in skips.files[0].message


# -- fix15b's own finding: a cell of a huge integer overflowed a float (an OverflowError, not a skip) ---

_CELLS = ["", " ", "0", "-0", "1e400", "nan", "-inf", "1.5", "2,5", "EVEN", "9999-12-31T23:59:59", "0001-01-01",
          "2024-02-30", "1e11", "9" * 23, "9" * 400, "-" + "9" * 400, "-1", "1700000000", "abc", "12.0", "win:1",
          "h2h_home", "\u00b2", "1_000", "0x10", "null", "2024-01-01T00:00:00+25:00", "Over", "Home"]
_MAPPINGS = [
    {"columns": ("sport_key==s,bookmaker=b,event_id={g} x,last_update=t|u,commence_time=c+1d,starting_price=sp,"
                 "odds_format=f",),
     "wide": ("h2h_home=h/t-5m", "spread_home=h@l", "win:{g}=h", "total_over@2.5=h"), "recode": ("EVEN=100", "=absent"),
     "where": ("t<c", "l>=-" + "9" * 30)},
    {"columns": ("sport_key==s,bookmaker=b,event_id=g,last_update=t,market_key=m,outcome=o,line=l,price=h,"
                 "home_team=b,away_team=g,commence_time=c",)},
]


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from(_CELLS), min_size=11, max_size=11), min_size=1, max_size=6),
       mapping=st.sampled_from(_MAPPINGS), odds=st.sampled_from(["american", "decimal", "prob"]))
def test_any_cells_are_quotes_or_located_skips_never_a_crash(tmp_path_factory: pytest.TempPathFactory,
                                                              rows: list[list[str]], mapping: dict[str, Any],
                                                              odds: OddsFormat) -> None:
    from dropengine.io.tables import table_starting_prices

    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_text("g,t,u,c,h,l,sp,f,b,m,o\n" + "".join(
        ",".join('"' + c + '"' for c in row) + "\n" for row in rows), encoding="utf-8")
    inputs = InputOptions(odds_format=odds, mapping=TableMapping.parse(**mapping))
    skips = SkipLog()
    quotes = [q for _, q in read_quote_table(path, skips, inputs=inputs)]
    assert all(0 <= q.last_update <= LATEST_MS for q in quotes)
    assert all(s.where.startswith("f.csv:") and s.message for s in skips.first)
    table_starting_prices(path, inputs)


@pytest.mark.parametrize("flag", [{"wide": ("spread_home=h@" + "9" * 400,)}, {"where": ("t<" + "9" * 400,)},
                                  {"recode": ("9" * 400 + "=null",)}])
def test_a_huge_number_in_a_flag_is_no_crash(flag: dict[str, Any]) -> None:
    try:
        TableMapping.parse(columns=(COLS,), **flag)
    except ConfigError as exc:
        assert "--wide" in str(exc)


@pytest.mark.parametrize("name", ["q.csv", "q.ndjson"])
def test_a_plain_table_line_no_float_holds_is_a_bad_line_skip(tmp_path: Path, name: str) -> None:
    import json

    big = 10 ** 400
    rows = [{"sport_key": "s", "event_id": "e", "bookmaker": "b", "side": "spread_home@-1.5", "price": -110,
             "last_update": 1000, "line": big}, {"sport_key": "s", "event_id": "e", "bookmaker": "b",
                                                  "side": "spread_home@-1.5", "price": -120, "last_update": 2000,
                                                  "line": -1.5}]
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("sport_key,event_id,bookmaker,side,price,last_update,line\n" + "".join(
            ",".join(str(r[c]) for c in ("sport_key", "event_id", "bookmaker", "side", "price", "last_update", "line"))
            + "\n" for r in rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    skips = SkipLog()
    assert [(q.side, q.price) for _, q in read_quote_table(path, skips)] == [("spread_home@-1.5", -120)]
    assert [(s.where, s.reason) for s in skips.first] == [(f"{name}:{2 if name.endswith('.csv') else 1}", "bad line")]


def test_recordings_beside_a_mapped_table_stay_recordings_and_mapped_rows_become_a_table(tmp_path: Path) -> None:
    """B15B-23 with recordings' detection (60b9033): the first row decides, not the mapping alone."""
    from dropengine.io.replay import ReplayStats, read_quotes

    frames = tmp_path / "frames.ndjson"
    frames.write_text('{"type":"connected","sport_key":"s"}\n{"type":"heartbeat","timestamp":1}\n')
    rows = tmp_path / "rows.ndjson"
    rows.write_text(_TYPED_ROWS)
    table = _csv(tmp_path, "g,t,h\n1,1000,-110\n")
    st = ReplayStats()
    inputs = InputOptions(mapping=TableMapping.parse(columns=(COLS,), wide=("h2h_home=h",)))
    n = sum(len(b) for b, _ in read_quotes([frames, rows, table], stats=st, inputs=inputs))
    assert {Path(k).name: v for k, v in st.formats.items()} == {"frames.ndjson": "frames", "rows.ndjson": "quotes",
                                                                "t.csv": "quotes"}
    assert n == 4 and not st.skips
