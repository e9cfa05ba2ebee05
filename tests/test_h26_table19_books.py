"""Issue 14 (session 19, table19): a steam's ``books`` is plain text in a Parquet table, on every path.

Each steam's ``books`` is its counted moves' JSON with their times: at 10M quotes 459,384 steams
and as many distinct texts (~410 MB). A dictionary of all-distinct values buys nothing, and the
cast String -> Categorical that built it was the steam writer's largest cost (the cast while the
String lives, then the export of its codes on the write). ``io.sinks._text_type`` is the one rule
of a table's text column types: Categorical in Parquet but ``sinks.PLAIN_TEXT`` (``books``),
String in CSV. Pinned here:

- the rule itself, column by column, for every alert column;
- every writer follows it: a batch run's table (``write_batch``) and the alert values' rows
  (``write``) write the same Parquet file (schema and cells) with ``books`` String and every other
  text column Categorical, for steams alone and for every type; CSV and NDJSON files of both
  paths are equal too.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import NUMBER_FIELDS, TIME_FIELDS, alert_fields
from dropengine.core.options import DetectOptions
from dropengine.formats.tables import QUOTE_COLUMNS, table_row
from dropengine.io.sinks import PLAIN_TEXT, AlertWriter, _text_type

ALL = frozenset({"odds_drop", "line_move", "steam"})


def test_the_rule_per_column() -> None:
    assert frozenset({"books"}) == PLAIN_TEXT
    for c in alert_fields(ALL):
        if c in NUMBER_FIELDS or c in TIME_FIELDS:
            continue
        assert _text_type("csv", c) == pl.String, c
        assert _text_type("parquet", c) == (pl.String if c == "books" else pl.Categorical), c


def _quotes() -> pl.DataFrame:
    # two books move the same line within the steam window (a line-move steam), two books drop
    # the same moneyline side (a price steam), int and float prices
    quotes = [
        Quote("nfl", "e1", "pin", "spread_home@-3", -110, 1000),
        Quote("nfl", "e1", "pin", "spread_home@-3.5", -110, 3000),
        Quote("nfl", "e1", "dk", "spread_home@-3", -110, 1500),
        Quote("nfl", "e1", "dk", "spread_home@-3.5", -105, 3500),
        Quote("nfl", "e1", "fd", "h2h_home", 120.5, 1000),
        Quote("nfl", "e1", "fd", "h2h_home", 100.5, 2600),
        Quote("nfl", "e1", "bm", "h2h_home", 130, 1200),
        Quote("nfl", "e1", "bm", "h2h_home", 110, 2800),
        Quote("nfl", "e2", "fd", "h2h_away", -120, 1000),
        Quote("nfl", "e2", "bm", "h2h_away", -125, 1100),
        Quote("nfl", "e2", "fd", "h2h_away", -150, 5000),
        Quote("nfl", "e2", "bm", "h2h_away", -160, 5100),
    ]
    rows = [table_row(q) for q in quotes]
    frame = pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS}, strict=False)
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in ("event_id", "bookmaker", "side"))


@pytest.mark.parametrize("types", ["steam", "odds_drop,line_move,steam"])
@pytest.mark.parametrize("accel", ["fast", "pure"])
def test_every_path_writes_books_as_text(tmp_path: Path, types: str, accel: str) -> None:
    options = DetectOptions.build(types=types, steam_books=2)
    result = detect_counted(_quotes(), options, accel=accel)
    values = result.alert_values()
    assert sum(a.type == "steam" for a in values) >= 2  # the premise: steams in the table
    for suffix in (".parquet", ".csv", ".ndjson"):
        batch, rows = tmp_path / f"batch{suffix}", tmp_path / f"rows{suffix}"
        with AlertWriter(batch, types=options.types) as w:
            w.write_batch(result)
        with AlertWriter(rows, types=options.types) as v:
            v.write(values)
        if suffix == ".ndjson":
            assert batch.read_bytes() == rows.read_bytes()
            books = [
                json.loads(line)["books"]
                for line in rows.read_bytes().splitlines()
                if json.loads(line)["type"] == "steam"
            ]
            assert all(isinstance(b, list) and b for b in books)
            continue
        read = pl.read_parquet if suffix == ".parquet" else pl.read_csv
        got, want = read(batch), read(rows)
        assert got.schema == want.schema
        assert got.to_dicts() == want.to_dicts()
        if suffix == ".parquet":
            for c, t in got.schema.items():
                if c in NUMBER_FIELDS or c in TIME_FIELDS:
                    continue
                assert t == (pl.String if c == "books" else pl.Categorical), (c, t)
            steams = got.filter(pl.col("type") == "steam").get_column("books").to_list()
            assert all(json.loads(b) for b in steams)
