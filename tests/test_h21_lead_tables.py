"""The Parquet batch reader's row -> position function holds no input frame (review21's R21-3):
with several files its closure kept every file's DataFrame alive through detection, beside the
sorted table that copied them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine.core.skips import SkipLog
from dropengine.io.tables import parquet_quote_table

from .conftest import require_fast


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


def test_the_compiled_passes_refuse_columns_of_different_lengths() -> None:
    """numba checks no bounds: a shorter column given to a compiled pass was read past its end
    (review21's R21-9: 200,000 rows against 1-row columns answered 200,000 groups)."""
    require_fast()
    import numpy as np

    from dropengine.core.errors import ConfigError
    from dropengine.fast import kernel

    z = np.zeros(1, np.int64)
    with pytest.raises(ConfigError, match=r"group_rows: columns of different lengths \[200000, 1, 1, 1\]"):
        kernel.group_rows(np.arange(200_000), z, z, z)
    with pytest.raises(ConfigError, match="ids: columns of different lengths"):
        kernel.ids(np.arange(3), z, z, 3, 1, 1)
    ids, k, first = kernel.group_rows(np.arange(6) % 2, np.zeros(6), np.zeros(6), np.zeros(6))
    assert (ids.tolist(), k, first[:k].tolist()) == ([0, 1, 0, 1, 0, 1], 2, [0, 1])
