"""Issue 15: tables in other shapes: odds formats, column mappings, wide-to-long (formats.mapping).

Invariants: decimal and probability prices read as the American prices they are (the same
alerts); a wide table reads as the long table it stands for; the row engine and the batch
engine give the same alerts on a mapped table; a bad cell costs its own quote only and is
reported with its row, column and value.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import Alert
from dropengine.core.engine import DropEngine
from dropengine.core.errors import ConfigError
from dropengine.core.odds import american_to_decimal, american_to_prob
from dropengine.core.options import DetectOptions
from dropengine.core.quote import Quote
from dropengine.core.rules import is_valid_price
from dropengine.core.skips import SkipLog
from dropengine.formats.mapping import TableMapping, load_mapping, time_ms, to_american
from dropengine.formats.tables import table_row
from dropengine.io.inputs import InputOptions
from dropengine.io.replay import ReplayStats, replay, replay_batch
from dropengine.io.tables import read_quote_table, table_starting_prices, write_csv_rows

from .strategies import quote_streams

_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["x"])
        w.writeheader()
        w.writerows(rows)


def _quotes(path: Path, inputs: InputOptions) -> tuple[list[Quote], SkipLog]:
    skips = SkipLog()
    return [q for _, q in read_quote_table(path, skips, inputs=inputs)], skips


def _alerts(path: Path, inputs: InputOptions, threshold: float = 10) -> list[Alert]:
    engine = DropEngine.from_options(DetectOptions.build(threshold))
    return list(replay([path], engine, inputs=inputs, fused=False))


def _same_alerts(a: list[Alert], b: list[Alert]) -> None:
    """The same alerts, prices equal up to the float noise of a conversion and back (and
    -100 is +100: even money converts back as +100, SPEC 1's same price)."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        dx, dy = x.to_dict(), y.to_dict()
        assert dx.keys() == dy.keys()
        for k, v in dx.items():
            if isinstance(v, float) or isinstance(dy[k], float):
                if k in ("prev", "new") and v == -100:
                    v = 100
                assert math.isclose(v, dy[k], rel_tol=1e-9, abs_tol=1e-9), (k, v, dy[k])
            else:
                assert v == dy[k], k


# -- odds formats ------------------------------------------------------------------------------

@_SETTINGS
@given(stream=quote_streams(invalid=False, line_only=False), fmt=st.sampled_from(["decimal", "prob"]))
def test_decimal_and_prob_prices_give_the_alerts_of_their_american_prices(
        tmp_path: Path, stream: list[Quote], fmt: str) -> None:
    american, converted = tmp_path / "a.csv", tmp_path / "d.csv"
    rows = [table_row(q) for q in stream if q.price is None or is_valid_price(q.price)]
    with american.open("wb") as fh:
        write_csv_rows(fh, rows)
    to = american_to_decimal if fmt == "decimal" else american_to_prob
    with converted.open("wb") as fh:
        write_csv_rows(fh, [{**r, "price": None if r["price"] is None else to(r["price"])} for r in rows])
    _same_alerts(_alerts(american, InputOptions()), _alerts(converted, InputOptions(odds_format=fmt)))  # type: ignore[arg-type]


def test_a_per_row_odds_format_column_decides_its_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    base = {"sport_key": "s", "event_id": "e", "bookmaker": "b", "side": "h2h_home"}
    _write_rows(path, [{**base, "price": "2.5", "last_update": "1", "odds_format": "decimal"},
                       {**base, "price": "-150", "last_update": "2", "odds_format": "american"},
                       {**base, "price": "0.5", "last_update": "3", "odds_format": "prob"},
                       {**base, "price": "-150", "last_update": "4", "odds_format": ""}])
    quotes, skips = _quotes(path, InputOptions())
    assert [q.price for q in quotes] == [150.0, -150, 100.0, -150] and not skips


@pytest.mark.parametrize(("fmt", "cell", "said"), [
    ("decimal", "0.95", "decimal odds must be a finite number above 1"),
    ("decimal", "1", "decimal odds must be a finite number above 1"),
    ("prob", "1.5", "strictly between 0 and 1"),
    ("prob", "0", "strictly between 0 and 1"),
    ("decimal", "abc", "is not a number"),
])
def test_a_bad_price_cell_is_a_skip_naming_row_column_and_value(tmp_path: Path, fmt: str, cell: str, said: str) -> None:
    path = tmp_path / "t.csv"
    good = ("2.0", "3.0") if fmt == "decimal" else ("0.5", "0.25")
    _write_rows(path, [{"g": "1", "h": good[0], "a": cell, "t": "1000"},
                       {"g": "2", "h": good[1], "a": good[0], "t": "1001"}])
    mapping = TableMapping.parse(columns=["sport_key==s,bookmaker==b,event_id=g,last_update=t"],
                                 wide=["h2h_home=h,h2h_away=a"])
    quotes, skips = _quotes(path, InputOptions(odds_format=fmt, mapping=mapping))  # type: ignore[arg-type]
    # the bad cell loses its own quote only: the row's other side and the next row go on
    assert [(q.event_id, q.side) for q in quotes] == [("1", "h2h_home"), ("2", "h2h_home"), ("2", "h2h_away")]
    assert skips.total == 1
    skip = skips.first[0]
    assert skip.where == "t.csv:2" and "column a" in skip.message and repr(cell) in skip.message
    assert said in skip.message


def test_to_american_uses_the_core_conversions() -> None:
    assert to_american("2.5", "decimal", "price") == 150.0
    assert to_american(1.5, "decimal", "price") == pytest.approx(-200.0)
    assert to_american("0.6", "prob", "price") == pytest.approx(-150.0)
    assert to_american("-112.5", "american", "price") == -112.5  # fractional Americans stay
    assert to_american("", "decimal", "price") is None  # an empty cell: suspended


# -- wide to long ------------------------------------------------------------------------------

_CELL = st.one_of(st.integers(-400, -100), st.integers(100, 400), st.just(""), st.just("0"))


@st.composite
def _wide_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 25))
    rows = []
    for i in range(n):
        rows.append({
            "game": draw(st.sampled_from(["g1", "g2"])), "book": draw(st.sampled_from(["x", "y"])),
            "ts": 1_557_000_000 + i * 30, "h_ml": draw(_CELL), "a_ml": draw(_CELL),
            "h_ps": draw(_CELL), "h_line": draw(st.sampled_from([-1.5, -1, 0, 1.5, 2])),
        })
    return rows


def _long_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The long table the wide rows stand for, written out by hand: `0` not offered (no row),
    empty suspended (an empty price), seconds to ms, a line 0 not offered."""
    out = []
    for r in rows:
        for side, col in (("h2h_home", "h_ml"), ("h2h_away", "a_ml"), ("spread_home", "h_ps")):
            cell = r[col]
            if cell == "0" or (side == "spread_home" and r["h_line"] == 0):
                continue
            line = r["h_line"] if side == "spread_home" else ""
            name = f"{side}@{line:g}" if line != "" else side
            out.append({"sport_key": "mlb", "event_id": r["game"], "bookmaker": r["book"], "side": name,
                        "price": cell, "line": line, "last_update": r["ts"] * 1000})
    return out


@_SETTINGS
@given(rows=_wide_rows())
def test_a_mapped_wide_table_gives_the_quotes_of_its_long_table(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    wide, long = tmp_path / "wide.csv", tmp_path / "long.csv"
    _write_rows(wide, rows)
    expected = _long_of(rows)
    _write_rows(long, expected or [{"sport_key": "", "event_id": "", "bookmaker": "", "side": "", "price": "",
                                   "last_update": ""}])
    mapping = TableMapping.parse(columns=["sport_key==mlb,event_id=game,bookmaker=book,last_update=ts"],
                                 wide=["h2h_home=h_ml,h2h_away=a_ml", "spread_home=h_ps@h_line"],
                                 recode=["0=absent"])
    got, skips = _quotes(wide, InputOptions(mapping=mapping))
    want, _ = _quotes(long, InputOptions())
    assert got == (want if expected else []) and not skips


@settings(_SETTINGS, max_examples=12)  # the batch engine per example: fewer, larger tables
@given(rows=_wide_rows(), threshold=st.sampled_from([5, 10, 25]))
def test_row_and_batch_engines_agree_on_a_mapped_table(tmp_path: Path, rows: list[dict[str, Any]],
                                                       threshold: int) -> None:
    wide = tmp_path / "wide.csv"
    _write_rows(wide, rows)
    inputs = InputOptions(mapping=TableMapping.parse(
        columns=["sport_key==mlb,event_id=game,bookmaker=book,last_update=ts"],
        wide=["h2h_home=h_ml,h2h_away=a_ml,spread_home=h_ps@h_line"], recode=["0=null"]))
    options = DetectOptions.build(threshold)
    stream_stats, batch_stats = ReplayStats(), ReplayStats()
    stream = [a.to_dict() for a in replay([wide], DropEngine.from_options(options), stats=stream_stats,
                                          inputs=inputs)]
    batch = replay_batch([wide], stats=batch_stats, inputs=inputs, options=options)
    assert [a.to_dict() for a in batch.alert_values()] == stream
    assert batch_stats.quotes == stream_stats.quotes


def test_time_points_open_and_close_from_one_row(tmp_path: Path) -> None:
    path = tmp_path / "oc.csv"
    _write_rows(path, [{"date": "2019-03-20", "game": "7", "h_open": "-110", "h_close": "-130", "ou": "8.5",
                        "ou_open": "-110", "ou_close": "100"}])
    mapping = TableMapping.parse(
        columns=["sport_key==mlb,bookmaker==sbr,event_id=game,commence_time=date+23h"],
        wide=["h2h_home=h_open/date,total_over=ou_open@ou/date",
              "h2h_home=h_close/date+12h,total_over=ou_close@ou/date+12h"])
    quotes, _ = _quotes(path, InputOptions(mapping=mapping))
    day = 1553040000000  # 2019-03-20T00:00Z
    assert [(q.side, q.price, q.last_update) for q in quotes] == [
        ("h2h_home", -110, day), ("total_over@8.5", -110, day),
        ("h2h_home", -130, day + 12 * 3_600_000), ("total_over@8.5", 100, day + 12 * 3_600_000)]
    assert quotes[0].commence_time == "2019-03-20T23:00:00Z" and quotes[1].line == 8.5
    alerts = _alerts(path, InputOptions(mapping=mapping))
    assert [(a.side, a.to_dict()["prev"], a.to_dict()["new"]) for a in alerts] == [
        ("h2h_home", -110, -130), ("total_over@8.5", -110, 100)]


def test_templates_alternatives_fixed_values_and_where(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write_rows(path, [
        {"d": "2025-03-01", "t": "12:04:00", "mod": "0", "now": "1557090232.01", "start": "1557095000", "p": "EVEN"},
        {"d": "2025-03-01", "t": "12:04:00", "mod": "1557090300", "now": "1557090400", "start": "1557095000",
         "p": "-120"},
        {"d": "2025-03-01", "t": "12:04:00", "mod": "1557096000", "now": "1557096000", "start": "1557095000",
         "p": "-150"},
    ])
    mapping = TableMapping.parse(
        columns=["sport_key==x,bookmaker==b,event_id={d}T{t} race,side==h2h_home,price=p,last_update=mod|now",
                 "commence_time=start"],
        recode=["EVEN=100"], where=["now<start"])
    quotes, skips = _quotes(path, InputOptions(mapping=mapping))
    assert not skips
    assert [(q.event_id, q.price, q.last_update) for q in quotes] == [
        ("2025-03-01T12:04:00 race", 100, 1557090232010), ("2025-03-01T12:04:00 race", -120, 1557090300000)]
    assert quotes[0].commence_time == "2019-05-05T22:23:20Z"


def test_outcome_names_become_sides_by_the_odds_api_rule(tmp_path: Path) -> None:
    path = tmp_path / "nfl.csv"
    base = {"event_id": "e", "home_team": "Denver Broncos", "away_team": "Las Vegas Raiders", "bookmaker": "dk",
            "ts": "2025-11-02T01:51:17Z"}
    _write_rows(path, [{**base, "market": "h2h", "outcome": "Denver Broncos", "price": "-575", "point": ""},
                       {**base, "market": "spreads", "outcome": "Las Vegas Raiders", "price": "-110", "point": "9.5"},
                       {**base, "market": "totals", "outcome": "Under", "price": "-105", "point": "40.5"},
                       {**base, "market": "h2h", "outcome": "Nobody", "price": "100", "point": ""}])
    mapping = TableMapping.parse(columns=["sport_key==nfl,market_key=market,outcome=outcome,line=point,"
                                          "last_update=ts"])
    quotes, skips = _quotes(path, InputOptions(mapping=mapping))
    assert [q.side for q in quotes] == ["h2h_home", "spread_away@9.5", "total_under@40.5"]
    assert skips.total == 1 and "Nobody" in skips.first[0].message and skips.first[0].where == "nfl.csv:5"


def test_starting_prices_of_a_mapped_table(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    _write_rows(path, [{"m": "1.5", "sel": "11", "p": "3.0", "bsp": "2.5", "t": "2025-03-01T12:00:00"},
                       {"m": "1.5", "sel": "12", "p": "1.8", "bsp": "", "t": "2025-03-01T12:00:00"}])
    mapping = TableMapping.parse(columns=["sport_key==racing,bookmaker==betfair,event_id=m,last_update=t,"
                                          "starting_price=bsp"],
                                 wide=["h2h_home=p"])
    sp = table_starting_prices(path, InputOptions(odds_format="decimal", mapping=mapping))
    assert sp is not None and sp.rows() == [("1.5", "betfair", "h2h_home", 150.0)]
    assert table_starting_prices(path, InputOptions(odds_format="decimal", mapping=TableMapping.parse(
        columns=["sport_key==racing,bookmaker==betfair,event_id=m,last_update=t"], wide=["h2h_home=p"]))) is None


def test_a_column_the_file_lacks_is_a_whole_file_skip_naming_it_and_the_file_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write_rows(path, [{"game": "1", "h_ml": "-110"}])
    mapping = TableMapping.parse(columns=["sport_key==s,bookmaker==b,event_id=game_id,last_update=ts"],
                                 wide=["h2h_home=h_ml"])
    quotes, skips = _quotes(path, InputOptions(mapping=mapping))
    assert not quotes and len(skips.files) == 1
    message = skips.files[0].message
    assert "game_id, ts" in message and "it has: game, h_ml" in message


# -- parsing: errors name the flag and the part --------------------------------------------------

@pytest.mark.parametrize(("kwargs", "said"), [
    ({"columns": ["event_id"]}, "--columns: item 1 'event_id' is not FIELD=COLUMN"),
    ({"columns": ["event_id=g,foo=bar"]}, "--columns: item 2 'foo=bar': 'foo' is not a field"),
    ({"columns": ["event_id=g,,x=y"]}, "--columns: 'event_id=g,,x=y' has an empty item"),
    ({"columns": ["event_id={}"]}, "an empty placeholder"),
    ({"columns": ["event_id={a"]}, "unbalanced braces"),
    ({"columns": ["bookmaker=="]}, "a fixed value ('=VALUE') is empty"),
    ({"wide": ["h2h_home"]}, "--wide: item 1: 'h2h_home' is not SIDE=PRICE_COLUMN[@LINE][/TIME]"),
    ({"wide": ["spread_home=p@"]}, "the line after '@' is empty"),
    ({"wide": ["h2h_home=p@l"]}, "'h2h_home' has no line"),
    ({"wide": ["total_over@2.5=p@l"]}, "has its line already"),
    ({"wide": ["h2h_home=p"], "columns": ["price=q"]}, "side/price/line/outcome come from --wide"),
    ({"recode": ["EVEN"]}, "--recode: item 1 'EVEN' is not TEXT=VALUE"),
    ({"recode": ["EVEN=evens"]}, "must be a number, null or absent"),
    ({"where": ["a~b"]}, "--where: item 1: 'a~b' is not COLUMN OP COLUMN|NUMBER"),
    ({"where": ["1<2"]}, "compares two numbers"),
])
def test_each_flag_error_names_the_flag_and_the_part(kwargs: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError) as err:
        TableMapping.parse(**kwargs)
    assert said in str(err.value)


def test_a_mapping_file_reads_as_its_flags(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    _write_rows(path, [{"g": "1", "h": "-110", "l": "-1.5", "t": "1000"}, {"g": "1", "h": "-130", "l": "-1.5",
                                                                           "t": "2000"}])
    flags = TableMapping.parse(columns=["sport_key==s,bookmaker==b,event_id=g,last_update=t"],
                               wide=["spread_home=h@l"])
    file = load_mapping('wide = [{side = "spread_home", price = "h", line = "l"}]\n'
                        '[columns]\nsport_key = "=s"\nbookmaker = "=b"\nevent_id = "g"\nlast_update = "t"\n')
    assert _quotes(path, InputOptions(mapping=flags)) == _quotes(path, InputOptions(mapping=file))
    over = TableMapping.parse(columns=["bookmaker==c"], base=file)
    assert {q.bookmaker for q in _quotes(path, InputOptions(mapping=over))[0]} == {"c"}


@pytest.mark.parametrize(("text", "said"), [
    ("columns = 3", "columns must be a table"),
    ("nope = 1", "unknown key(s) nope"),
    ("[columns]\nfoo = \"x\"", "columns.foo: not a field"),
    ("wide = [{side = \"h2h_home\"}]", "wide[1]"),
    ("[recode]\nEVEN = true", "recode.EVEN"),
    ("wide = [", "not TOML"),
])
def test_mapping_file_errors_name_the_part(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_mapping(text)
    assert said in str(err.value)


def test_times_unix_seconds_ms_and_iso() -> None:
    assert time_ms("1557090232.01", "t") == 1557090232010
    assert time_ms(1557090232010, "t") == 1557090232010
    assert time_ms("2019-03-20", "t") == 1553040000000
    assert time_ms("2023-08-11 19:00:00+00:00", "t") == time_ms("2023-08-11T19:00:00Z", "t") == 1691780400000
    assert time_ms("", "t") is None
    for bad in ("yesterday", "-5", True):
        with pytest.raises(Exception, match="is not a time"):
            time_ms(bad, "last_update (column x)")


def test_plain_tables_read_as_before() -> None:
    """A table read without a mapping, in American odds, takes no conversion (same quotes)."""
    buf = io.BytesIO()
    write_csv_rows(buf, [{"sport_key": "s", "event_id": "e", "bookmaker": "b", "side": "h2h_home", "price": -110,
                          "last_update": 1}])
    assert InputOptions().plain_tables and not InputOptions(odds_format="decimal").plain_tables


@_SETTINGS
@given(rows=_wide_rows())
def test_csv_parquet_and_ndjson_of_one_wide_table_read_alike(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    import polars as pl

    typed = [{**r, **{c: (None if r[c] == "" else int(r[c])) for c in ("h_ml", "a_ml", "h_ps")}} for r in rows]
    paths = {"csv": tmp_path / "w.csv", "parquet": tmp_path / "w.parquet", "ndjson": tmp_path / "w.ndjson"}
    _write_rows(paths["csv"], rows)
    frame = pl.DataFrame(typed, schema={"game": pl.String, "book": pl.Categorical, "ts": pl.Int64, "h_ml": pl.Int64,
                                        "a_ml": pl.Int64, "h_ps": pl.Int64, "h_line": pl.Float64})
    frame.write_parquet(paths["parquet"])
    frame.write_ndjson(paths["ndjson"])
    inputs = InputOptions(mapping=TableMapping.parse(
        columns=["sport_key==mlb,event_id=game,bookmaker=book,last_update=ts"],
        wide=["h2h_home=h_ml,h2h_away=a_ml,spread_home=h_ps@h_line"], recode=["0=absent"]))
    got = {k: _quotes(p, inputs) for k, p in paths.items()}
    assert not any(skips for _, skips in got.values())
    assert got["csv"][0] == got["parquet"][0] == got["ndjson"][0]


def test_a_parquet_table_with_an_odds_format_column_takes_the_row_reader(tmp_path: Path) -> None:
    import polars as pl

    path = tmp_path / "f.parquet"
    pl.DataFrame({"sport_key": ["s"] * 3, "event_id": ["e"] * 3, "bookmaker": ["b"] * 3, "side": ["h2h_home"] * 3,
                  "price": [2.0, 1.5, -300.0], "last_update": [1, 2, 3],
                  "odds_format": ["decimal", "decimal", "american"]}).write_parquet(path)
    options = DetectOptions.build(10)
    stream = [a.to_dict() for a in replay([path], DropEngine.from_options(options))]
    batch = [a.to_dict() for a in replay_batch([path], options=options).alert_values()]
    assert [(a["prev"], a["new"]) for a in stream] == [(100.0, -200.0), (-200.0, -300.0)]
    assert batch == stream


def test_a_plain_table_starting_price_column_and_a_bad_one_that_costs_no_quote(tmp_path: Path) -> None:
    path = tmp_path / "sp.csv"
    base = {"sport_key": "s", "event_id": "e", "bookmaker": "b", "last_update": "1"}
    _write_rows(path, [{**base, "side": "h2h_home", "price": "2.0", "starting_price": "3.0"},
                       {**base, "side": "h2h_away", "price": "2.2", "starting_price": "0.5"},
                       {**base, "side": "h2h_draw", "price": "4.0", "starting_price": ""}])
    inputs = InputOptions(odds_format="decimal")
    quotes, skips = _quotes(path, inputs)
    assert [q.side for q in quotes] == ["h2h_home", "h2h_away", "h2h_draw"]  # the bad starting price costs none
    assert skips.total == 1 and skips.first[0].where == "sp.csv:3" and "starting_price" in skips.first[0].message
    sp = table_starting_prices(path, inputs)
    assert sp is not None and sp.rows() == [("e", "b", "h2h_home", 200.0)]
    assert table_starting_prices(path, InputOptions()) is not None  # American: 3.0 is no valid price, left out


def test_a_mapping_giving_a_few_fields_reads_the_rest_from_the_spec_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write_rows(path, [{"game_id": "g", "bookmaker": "b", "side": "h2h_home", "price": "-110", "last_update": "5"}])
    quotes, skips = _quotes(path, InputOptions(mapping=TableMapping.parse(columns=["sport_key==s,event_id=game_id"])))
    assert not skips
    assert [(q.sport_key, q.event_id, q.bookmaker, q.last_update) for q in quotes] == [("s", "g", "b", 5000)]
    quotes, skips = _quotes(path, InputOptions(mapping=TableMapping.parse(columns=["sport_key==s"])))
    assert not quotes and "missing column(s) the column mapping reads: event_id" in skips.files[0].message
