"""break25 (session 18), B25-3: a price cell of whitespace alone is read two ways.

The row reader (``formats.tables.quote_from_row``: the stream engine's tables, and replay_batch's
loads) takes only ``""`` as an empty price (a suspension) and judges ``"  "`` as text that is no
number: an ``invalid price`` row. ``analysis.batch``'s text price column strips the cell first, so
``"  "``, ``"\\t"``, a no-break or ideographic space is an empty price there: a suspension, which
resets the key's reference (SPEC 3), so ``batch.detect`` on the table gives other alerts than the
stream engine reading the same table. test_h23_prec16_skip_order states the rule (row by row, the
reader's reason is both batch loads'); its drawn prices never hold whitespace alone. Also: batch's
reading of a text price or time (polars' ``strip_chars`` and regexes) is a second copy of
``rules.number_from_text``'s, and polars keeps U+001C..U+001F that Python's ``strip`` removes:
``"-150\x1f"`` is a price for the reader, an invalid price in batch; ``"1000\x1e"`` a time there, a bad time
here. The files' paths (stream replay, replay_batch) agree: only ``batch.detect`` on a frame differs.
Pre-existing (7c16d19 the same).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl
import pytest

from dropengine import DropEngine
from dropengine.analysis.batch import detect_counted
from dropengine.core import rules
from dropengine.core.errors import FeedError
from dropengine.formats.tables import quote_from_row
from dropengine.io.replay import ReplayStats, replay

from .conftest import require_fast

BLANKS = ["  ", "\t", " \u00a0", "\u3000"]
SCHEMA = {c: pl.String for c in ("sport_key", "event_id", "bookmaker", "side", "price")} | {"last_update": pl.Int64}


def _table(middle: str) -> pl.DataFrame:
    prices = ["-110", middle, "-150"]
    return pl.DataFrame(
        [
            {
                "sport_key": "basketball_nba",
                "event_id": "E1",
                "bookmaker": "pin",
                "side": "h2h_home",
                "price": p,
                "last_update": 1_747_000_000_000 + 1000 * i,
            }
            for i, p in enumerate(prices)
        ],
        schema=SCHEMA,
    )


def _reader(row: dict[str, object]) -> str | None:
    """The row reader's reason for a row (as test_h23_prec16_skip_order's ``_reader``)."""
    try:
        q = quote_from_row(row)
    except FeedError as exc:
        return exc.reason
    return None if q.price is None or rules.is_valid_price(q.price) else "invalid price"


def test_an_empty_price_cell_is_a_suspension_on_every_path(tmp_path: Path) -> None:
    """Control: ``""`` is a suspension for the reader and both batch loads (passes)."""
    require_fast()
    table = _table("")
    want = [_reader(r) for r in table.iter_rows(named=True)]
    assert want == [None, None, None]
    for accel in ("pure", "fast"):
        got = dict(detect_counted(table, threshold=5, accel=accel).rejected.iter_rows())
        assert [got.get(i) for i in range(table.height)] == want


@pytest.mark.parametrize("blank", BLANKS)
def test_a_whitespace_price_cell_is_one_reading_on_every_path(tmp_path: Path, blank: str) -> None:
    require_fast()
    table = _table(blank)
    path = tmp_path / "q.parquet"
    table.write_parquet(path)
    engine = DropEngine(threshold=5)
    stream = [msgspec.json.encode(a) for a in replay([path], engine, "auto", ReplayStats())]
    want = [_reader(r) for r in table.iter_rows(named=True)]
    for accel in ("pure", "fast"):
        res = detect_counted(table, threshold=5, accel=accel)
        got = dict(res.rejected.iter_rows())
        assert [got.get(i) for i in range(table.height)] == want, accel
        assert [msgspec.json.encode(a) for a in res.alert_values()] == stream, accel


#: Python's ``str.strip`` (the row reader's, rules.number_from_text) removes the information
#: separators U+001C..U+001F; polars' ``strip_chars`` (batch's text price and time columns) keeps them
SEPARATED = [
    ("price", "-150\x1f"),
    ("price", "\x1c-150"),
    ("last_update", "1747000002000\x1e"),
    ("last_update", "\x1d1747000002000"),
]


@pytest.mark.parametrize(("column", "cell"), SEPARATED)
def test_a_number_between_separators_is_one_reading_on_every_path(column: str, cell: str) -> None:
    require_fast()
    rows = [
        {
            "sport_key": "nba",
            "event_id": "e1",
            "bookmaker": "pin",
            "side": "h2h_home",
            "price": p,
            "last_update": str(1_747_000_000_000 + 1000 * i),
        }
        for i, p in enumerate(["-110", "-150", "-200"])
    ]
    rows[1][column] = cell
    table = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]})
    want = [_reader(r) for r in table.iter_rows(named=True)]
    assert want == [None, None, None]  # (the reader strips them: a usable row)
    for accel in ("pure", "fast"):
        got = dict(detect_counted(table, threshold=5, accel=accel).rejected.iter_rows())
        assert [got.get(i) for i in range(table.height)] == want, accel


def test_an_empty_text_time_is_one_reason_on_every_path() -> None:
    require_fast()
    rows = [
        {
            "sport_key": "nba",
            "event_id": "e1",
            "bookmaker": "pin",
            "side": "h2h_home",
            "price": "-110",
            "last_update": t,
        }
        for t in ["1000", "", "3000", None]
    ]
    table = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]})
    want = [_reader(r) for r in table.iter_rows(named=True)]
    assert want == [None, "missing field", None, "missing field"]
    for accel in ("pure", "fast"):
        got = dict(detect_counted(table, threshold=5, accel=accel).rejected.iter_rows())
        assert [got.get(i) for i in range(table.height)] == want, accel
