"""The Parquet batch reader's row -> position function holds no input frame (review21's R21-3):
with several files its closure kept every file's DataFrame alive through detection, beside the
sorted table that copied them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dropengine.core.skips import SkipLog
from dropengine.io.tables import parquet_quote_table


def _held(fn: object) -> list[object]:
    """Everything a closure reaches through its cells, lists and tuples (one level of each)."""
    out: list[object] = []
    for cell in getattr(fn, "__closure__", None) or ():
        value = cell.cell_contents
        out.append(value)
        if isinstance(value, (list, tuple)):
            for item in value:
                out.append(item)
                if isinstance(item, (list, tuple)):
                    out.extend(item)
    return out


def test_where_names_rows_of_every_file_without_holding_their_frames(tmp_path: Path) -> None:
    paths = []
    for k in range(3):
        p = tmp_path / f"q{k}.parquet"
        pl.DataFrame({
            "sport_key": ["s"] * 4, "event_id": [f"e{k}"] * 4, "bookmaker": ["b"] * 4,
            "side": ["h2h_home"] * 4, "price": [-110 - j for j in range(4)],
            "last_update": [10 * j + k for j in range(4)],
        }).write_parquet(p)
        paths.append(p)
    table, where = parquet_quote_table(paths, SkipLog())
    assert table.height == 12
    assert not any(isinstance(v, pl.DataFrame) for v in _held(where))
    # rows in clock order across the files, each named by its own file and row
    assert [where(i) for i in range(4)] == ["q0.parquet:row 1", "q1.parquet:row 1", "q2.parquet:row 1",
                                            "q0.parquet:row 2"]
