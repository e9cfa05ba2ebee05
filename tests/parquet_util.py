"""Small Parquet quote tables for the tests: one schema of hand-made rows and one writer of
``Quote`` values (written once here; several test files build such inputs)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from dropengine import Quote
from dropengine.formats.tables import QUOTE_COLUMNS, table_row

#: The columns of hand-made quote rows (a price and a line as floats; nulls where a row has none).
QUOTE_SCHEMA: dict[str, type[pl.DataType]] = {
    "sport_key": pl.String,
    "event_id": pl.String,
    "bookmaker": pl.String,
    "side": pl.String,
    "price": pl.Float64,
    "last_update": pl.Int64,
    "market_key": pl.String,
    "line": pl.Float64,
}


def h2h_row(
    t: int, price: Any, event: str = "E1", sport: str | None = "basketball_nba", **extra: Any
) -> dict[str, Any]:
    """A hand-made moneyline row of book ``pin`` in :data:`QUOTE_SCHEMA`'s columns (``extra``: other
    or faulty cells, which win)."""
    return {
        "sport_key": sport,
        "event_id": event,
        "bookmaker": "pin",
        "side": "h2h_home",
        "price": price,
        "last_update": t,
        "market_key": "h2h",
        "line": None,
        **extra,
    }


def write_quotes(path: Path, quotes: Iterable[Quote]) -> Path:
    """``quotes`` as a Parquet quote table at ``path`` (the rows the table writers write)."""
    rows = [table_row(q) for q in quotes]
    pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS}, strict=False).write_parquet(path)
    return path
