"""The batch alerts table of ``--output`` after issue 14's session 9 (e2e14): the columns are typed in
one ``select`` and the few-word text columns (``type``, ``direction``) are made Categorical from a
comparison per word instead of a cast per row. The table must stay exactly what it was:

- a few-word column gives what the cast gives (values, nulls, dtype), also with a word the list
  does not know (then the cast is taken) and with no row at all;
- ``write_batch`` of a run with no alert, of price drops only and of every type, writes the file
  ``write`` of the alert values writes (read back: same columns, types and cells).
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import SIGNALS
from dropengine.core.options import DetectOptions
from dropengine.core.rules import Direction
from dropengine.formats.tables import QUOTE_COLUMNS, table_row
from dropengine.io.sinks import AlertWriter, _text_column

WORDS = {"type": SIGNALS, "direction": get_args(Direction)}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(WORDS)), data=st.data())
def test_a_few_word_column_is_what_the_cast_gives(name: str, data: st.DataObject) -> None:
    words = st.sampled_from((*WORDS[name], "other", "", "Steam"))
    cells = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(WORDS[name]), words), max_size=30))
    frame = pl.DataFrame({name: cells}, schema={name: pl.String})
    for kind, text in (("parquet", pl.Categorical), ("csv", pl.String)):
        expr = _text_column(frame, name, kind)
        assert expr is not None
        got = frame.select(expr).to_series()
        want = frame.get_column(name).cast(text)
        assert got.dtype == want.dtype
        assert got.name == name
        assert got.cast(pl.String).to_list() == want.cast(pl.String).to_list() == cells


def test_a_number_column_is_no_text() -> None:
    assert _text_column(pl.DataFrame({"type": [1, 2]}), "type", "parquet") is None


def _quotes() -> pl.DataFrame:
    # line moves (-3 -> -3.5 at two books within the steam window: a steam), price drops with int
    # and float prices, both directions
    quotes = [Quote("nfl", "e1", "pin", "spread_home@-3", -110, 1000),
              Quote("nfl", "e1", "pin", "spread_home@-3", -135, 2000),
              Quote("nfl", "e1", "pin", "spread_home@-3.5", -110, 3000),
              Quote("nfl", "e1", "dk", "spread_home@-3", -110, 1500),
              Quote("nfl", "e1", "dk", "spread_home@-3", -140, 2500),
              Quote("nfl", "e1", "dk", "spread_home@-3.5", -105, 3500),
              Quote("nfl", "e1", "fd", "h2h_home", 120.5, 1000),
              Quote("nfl", "e1", "fd", "h2h_home", 100.5, 2600),
              Quote("nfl", "e1", "fd", "h2h_home", 130, 4000)]
    rows = [table_row(q) for q in quotes]
    frame = pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS}, strict=False)
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in ("event_id", "bookmaker", "side"))


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("types", ["odds_drop", "odds_drop,line_move,steam", "none"])
def test_write_batch_is_the_values_file(tmp_path: Path, suffix: str, types: str) -> None:
    frame = _quotes()
    if types == "none":  # no alert at all: an empty table of the right columns and types
        frame, types = frame.head(1), "odds_drop,line_move,steam"
    options = DetectOptions.build(types=types, steam_books=2)
    result = detect_counted(frame, options)
    fast, slow = tmp_path / f"fast{suffix}", tmp_path / f"slow{suffix}"
    with AlertWriter(fast, types=options.types) as w:
        w.write_batch(result)
    with AlertWriter(slow, types=options.types) as v:
        v.write(result.alert_values())
    read = pl.read_parquet if suffix == ".parquet" else pl.read_csv
    got, want = read(fast), read(slow)
    assert got.schema == want.schema
    assert got.to_dicts() == want.to_dicts()
    assert w.count == v.count == got.height
    assert w.counts == v.counts
    if types != "odds_drop" and got.height:  # every type and both directions are in the table
        assert set(got.get_column("type").cast(pl.String)) == set(SIGNALS)
        assert set(got.get_column("direction").cast(pl.String)) == set(get_args(Direction))
    if suffix == ".parquet":
        assert got.schema["type"] == got.schema["direction"] == pl.Categorical
