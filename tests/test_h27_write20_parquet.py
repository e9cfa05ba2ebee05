"""Issue 14 (session 20, write20): ``--output x.parquet`` writes the file polars writes, at less cost.

``io.sinks._write_parquet`` hands polars the frame's own schema (``arrow_schema``), so the writer
encodes String columns and Categorical dictionaries from polars' string views instead of copying
them into large-string buffers first (10M quotes: a steam write's page faults ~100k -> ~8k), and
records as ``ARROW:schema`` the schema polars records without it. Pinned here, against
``frame.write_parquet(path, **PARQUET_WRITE)``:

- a reader gets the same schema and cells, and the file records the same ``ARROW:schema``;
- the bytes are the same for frames of every column kind a table has (Categorical, plain String
  with long, short, empty and missing texts, Int64, Float64, all-null columns, several chunks,
  no rows) while each column is one data page, for a mostly-null long-text column over many
  pages (dictionary-encoded, as a mixed run's ``books``), and for the tables ``AlertWriter``
  writes from a batch run and from alert values;
- a long all-distinct text column (plain-encoded, as a steam run's ``books``) is cut into data
  pages by its estimated size, which polars takes from the views' text alone instead of the
  large strings' text and offsets: there only the cells and schema are the same.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.options import DetectOptions
from dropengine.formats.tables import QUOTE_COLUMNS, table_row
from dropengine.io.sinks import PARQUET_WRITE, AlertWriter, _constant_categoricals, _write_parquet

# short texts (inline in a string view), long ones (in the view's buffers), empty and unicode
_TEXT = st.one_of(st.none(), st.sampled_from(["", "a", "pin", "x" * 40, "é" * 13]), st.text(max_size=60))


def _plain(frame: pl.DataFrame, path: Path) -> bytes:
    frame.write_parquet(path, **PARQUET_WRITE)
    return path.read_bytes()


def _same_for_a_reader(ours: Path, plain: Path, frame: pl.DataFrame) -> None:
    back = pl.read_parquet(ours)
    assert back.schema == frame.schema == pl.read_parquet(plain).schema
    assert back.equals(frame)
    assert pl.read_parquet_metadata(ours) == pl.read_parquet_metadata(plain)  # the recorded ARROW:schema


@st.composite
def _frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 40))
    columns: dict[str, pl.Series] = {}
    for i, kind in enumerate(
        draw(st.lists(st.sampled_from(["cat", "one", "str", "int", "float", "null"]), min_size=1, max_size=6))
    ):
        name = f"c{i}"
        if kind == "one":  # one value on every row (an Enum of it when written)
            word = draw(_TEXT.filter(lambda t: t is not None))
            columns[name] = pl.Series(name, [word] * n, dtype=pl.Categorical)
        elif kind in ("cat", "str"):
            values = draw(st.lists(_TEXT, min_size=n, max_size=n))
            columns[name] = pl.Series(name, values, dtype=pl.String if kind == "str" else pl.Categorical)
        elif kind == "int":
            values = draw(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=n, max_size=n))
            columns[name] = pl.Series(name, values, dtype=pl.Int64)
        elif kind == "float":
            values = draw(st.lists(st.one_of(st.none(), st.floats()), min_size=n, max_size=n))
            columns[name] = pl.Series(name, values, dtype=pl.Float64)
        else:
            columns[name] = pl.Series(
                name, [None] * n, dtype=draw(st.sampled_from([pl.Int64, pl.String, pl.Categorical]))
            )
    frame = pl.DataFrame(columns)
    cut = draw(st.integers(0, n))
    if 0 < cut < n:  # several chunks (the steams' books are written in pieces)
        frame = pl.concat([frame.head(cut), frame.tail(n - cut)], rechunk=False)
    return frame


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=_frames())
def test_the_file_is_polars_own(tmp_path: Path, frame: pl.DataFrame) -> None:
    ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
    _write_parquet(frame, ours)
    assert ours.read_bytes() == _plain(frame, plain)
    _same_for_a_reader(ours, plain, frame)


def test_a_long_text_column_in_row_groups(tmp_path: Path) -> None:
    # mostly-null long texts over several row groups (a mixed run's books: the writer's dictionary
    # attempt on them) and Categoricals beside them
    n = 300_000
    frame = pl.DataFrame(
        {
            "books": pl.Series(
                [None if i % 17 else f'[{{"book":"b{i}","t":{i}}}]' * 9 for i in range(n)], dtype=pl.String
            ),
            "side": pl.Series([f"s{i % 7}" for i in range(n)], dtype=pl.Categorical),
            # one value on every row, and none on any (written from Enums)
            "kind": pl.Series(["moneyline"] * n, dtype=pl.Categorical),
            "player": pl.Series([None] * n, dtype=pl.Categorical),
            # one value and nulls: row groups of nulls alone have an empty dictionary (stays Categorical)
            "leader": pl.Series([None] * (n - n // 10) + ["pin"] * (n // 10), dtype=pl.Categorical),
            "t": pl.int_range(n, eager=True),
        }
    )
    ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
    _write_parquet(frame, ours)
    assert ours.read_bytes() == _plain(frame, plain)
    _same_for_a_reader(ours, plain, frame)


def test_a_long_distinct_text_column(tmp_path: Path) -> None:
    # all-distinct ~0.8 KB texts (a steam run's books): plain-encoded, ~16 MB over many pages
    n = 20_000
    frame = pl.DataFrame(
        {
            "books": pl.Series([f'[{{"book":"b{i}","t":{i}}}]' * 30 for i in range(n)], dtype=pl.String),
            "side": pl.Series([None if i % 5 == 0 else f"s{i % 7}" for i in range(n)], dtype=pl.Categorical),
        }
    )
    ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
    _write_parquet(frame, ours)
    _plain(frame, plain)
    _same_for_a_reader(ours, plain, frame)


def _quotes() -> pl.DataFrame:
    # a line-move steam and a price steam (two books each), int and float prices
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


@pytest.mark.parametrize("types", ["odds_drop", "line_move", "steam", "odds_drop,line_move,steam"])
def test_the_writers_files_are_polars_own(tmp_path: Path, types: str) -> None:
    options = DetectOptions.build(types=types, steam_books=2)
    result = detect_counted(_quotes(), options)
    assert result.alerts.height  # the premise: alerts to write
    for how in ("batch", "rows"):
        path = tmp_path / f"{how}.parquet"
        writer = AlertWriter(path, types=options.types)
        if how == "batch":
            writer.write_batch(result)
        else:
            writer.write(result.alert_values())
        writer.close()
        # the table as the writer typed it, written plainly by polars
        frame = pl.read_parquet(path)
        want = _plain(frame, tmp_path / f"{how}-plain.parquet")
        assert path.read_bytes() == want, how
        _same_for_a_reader(path, tmp_path / f"{how}-plain.parquet", frame)


def test_which_categoricals_are_written_as_enums() -> None:
    n = 1_000
    frame = pl.DataFrame(
        {
            "one": pl.Series(["pin"] * n, dtype=pl.Categorical),
            "empty_text": pl.Series([""] * n, dtype=pl.Categorical),
            "none": pl.Series([None] * n, dtype=pl.Categorical),
            "two": pl.Series(["a", "b"] * (n // 2), dtype=pl.Categorical),
            "one_and_nulls": pl.Series(["a", None] * (n // 2), dtype=pl.Categorical),
            "text": pl.Series(["pin"] * n, dtype=pl.String),
        }
    )
    enums = {s.name: s for s in _constant_categoricals(frame)}
    assert set(enums) == {"one", "empty_text", "none"}
    for name, s in enums.items():
        assert isinstance(s.dtype, pl.Enum)
        assert s.cast(pl.String).equals(frame.get_column(name).cast(pl.String))
