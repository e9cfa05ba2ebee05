"""Quote tables: one column list (derived from Quote), one row mapping both ways, and writers
whose files the readers read back to the same quotes (issue 11: one home per format rule)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.tables import (
    LINE_ONLY_COLUMN,
    NUMERIC_COLUMNS,
    OPTIONAL_COLUMNS,
    QUOTE_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
    quote_from_row,
    table_row,
)
from dropengine.io.tables import read_quote_table, write_quote_table

from .test_h11_formats_vendor import quotes


def test_the_column_list_is_the_quote_itself() -> None:
    fields = msgspec.structs.fields(Quote)
    # issue 12: the quote's last field is the optional line_only column (SPEC 10), no QUOTE_COLUMNS member
    assert tuple(f.name for f in fields) == (*QUOTE_COLUMNS, LINE_ONLY_COLUMN)
    assert tuple(f.name for f in fields if f.required) == REQUIRED_COLUMNS
    assert set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) == set(QUOTE_COLUMNS)
    assert set(TEXT_COLUMNS) | set(NUMERIC_COLUMNS) == set(QUOTE_COLUMNS)
    assert not set(TEXT_COLUMNS) & set(NUMERIC_COLUMNS)


@given(quotes())
def test_a_quote_and_its_table_row_map_both_ways(q: Quote) -> None:
    assert quote_from_row(table_row(q)) == q


@settings(max_examples=200, deadline=None)
@given(st.lists(quotes(), min_size=1, max_size=5), st.sampled_from(["q.csv", "q.ndjson", "q.jsonl.gz", "q.parquet"]))
def test_a_written_table_reads_back_to_the_same_quotes(qs: list[Quote], name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if name.endswith(".csv") and any("\n" in v or "\r" in v for q in qs for v in _texts(q)):
            with pytest.raises(ConfigError, match="holds a line break"):
                write_quote_table(path, qs)  # one line per row: refused, never a file that reads otherwise
            return
        assert write_quote_table(path, qs) == len(qs)
        skips = SkipLog()
        back = [q for _, q in read_quote_table(path, skips)]
    assert not skips
    if name.endswith(".parquet") and any(type(q.price) is float for q in qs):
        # one price type per Parquet column: Float64 as soon as one price is fractional
        qs = [msgspec.structs.replace(q, price=None if q.price is None else float(q.price)) for q in qs]
    assert back == qs


def _texts(q: Quote) -> list[str]:
    return [v for c in TEXT_COLUMNS if type(v := getattr(q, c)) is str]
