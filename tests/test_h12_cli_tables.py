"""Quote tables and SPEC 10's line-only observations (issue 12): the optional ``line_only``
column is read and written, so a table keeps a line-only book's line moves (without it, a
row with no price is a suspension); a table without line-only quotes keeps today's columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli.group import main
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.tables import LINE_ONLY_COLUMN, QUOTE_COLUMNS, quote_from_row, table_row
from dropengine.io.tables import read_quote_table, write_csv_rows, write_quote_table

T0 = 1_788_000_000_000


def _q(book: str, line: float, price: int | None, t: int) -> Quote:
    side = f"spread_home@{line:g}"
    return Quote("americanfootball_nfl", "e1", book, side, price, T0 + t, "game", "spreads", line=line,
                 line_only=price is None)


def _quotes() -> list[Quote]:
    """pinnacle -3 -> -3.5 with prices, fanduel -3 -> -3.5 line-only (no price published)."""
    return [_q("pinnacle", -3, -110, 0), _q("fanduel", -3, None, 0),
            _q("pinnacle", -3.5, -110, 10_000), _q("fanduel", -3.5, None, 20_000)]


@pytest.mark.parametrize("name", ["q.csv", "q.ndjson", "q.parquet", "q.csv.gz"])
def test_line_only_quotes_round_trip_through_every_table(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_quote_table(path, _quotes())
    skips = SkipLog()
    assert [q for _, q in read_quote_table(path, skips)] == _quotes() and not skips


@pytest.mark.parametrize("name", ["q.csv", "q.ndjson", "q.parquet"])
def test_a_table_without_line_only_quotes_keeps_todays_columns(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_quote_table(path, [q for q in _quotes() if not q.line_only])
    if name.endswith(".csv"):
        assert path.read_text().splitlines()[0] == ",".join(QUOTE_COLUMNS)
    elif name.endswith(".ndjson"):
        assert all(tuple(json.loads(line)) == QUOTE_COLUMNS for line in path.read_text().splitlines())
    else:
        import polars as pl

        assert tuple(pl.read_parquet(path).columns) == QUOTE_COLUMNS


def test_row_values_and_errors() -> None:
    row = table_row(_quotes()[1])
    assert row[LINE_ONLY_COLUMN] is True and LINE_ONLY_COLUMN not in table_row(_quotes()[0])
    for text, expected in (("true", True), ("TRUE", True), ("", False), ("false", False), (None, False)):
        assert quote_from_row({**row, "price": None, LINE_ONLY_COLUMN: text}).line_only is expected
    from dropengine.core.errors import FeedError

    for bad in ("yes", 1, "1"):
        with pytest.raises(FeedError, match=f"line_only: {bad!r} must be true, false or empty"):
            quote_from_row({**row, LINE_ONLY_COLUMN: bad})
    with pytest.raises(FeedError, match="line_only"):  # a line-only observation has no price
        quote_from_row({**row, "price": -110})


def test_a_line_only_row_is_refused_by_a_writer_without_the_column(tmp_path: Path) -> None:
    from dropengine.core.errors import ConfigError

    with (tmp_path / "q.csv").open("wb") as fh, pytest.raises(ConfigError, match="line_only"):
        write_csv_rows(fh, [table_row(q) for q in _quotes()])  # read back it would be a suspension


@pytest.mark.parametrize("name", ["q.csv", "q.parquet"])
def test_replay_of_a_table_fires_the_line_only_books_line_move_on_both_engines(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_quote_table(path, _quotes())
    outs = []
    for engine in ("stream", "batch"):
        r = CliRunner().invoke(main, ["replay", "-q", "--engine", engine, "--types", "line_move", str(path)])
        assert r.exit_code == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    moves = [json.loads(line) for line in outs[0].splitlines()]
    assert [(m["bookmaker"], m["prev_line"], m["new_line"], m["new_price"]) for m in moves] == [
        ("pinnacle", -3, -3.5, -110), ("fanduel", -3, -3.5, None)]
