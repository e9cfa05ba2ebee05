"""Breaking stream vs batch replay: the same Parquet quote table must give the same skip
counts by reason on both engines (issue 11: "both engines report the same counters and skips
for every input")."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay, replay_batch

_SCHEMA = {"sport_key": pl.String, "event_id": pl.String, "bookmaker": pl.String, "side": pl.String,
           "price": pl.Int64, "last_update": pl.Int64, "line": pl.Float64}


def _table(tmp_path: Path, rows: list[tuple[object, ...]]) -> Path:
    path = tmp_path / "q.parquet"
    pl.DataFrame([dict(zip(_SCHEMA, r, strict=True)) for r in rows], schema=_SCHEMA, orient="row").write_parquet(path)
    return path


def _skip_counts(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    st, sb = ReplayStats(), ReplayStats()
    list(replay([path], DropEngine(), stats=st))
    replay_batch([path], stats=sb)
    return dict(st.skips.counts), dict(sb.skips.counts)


def test_rows_both_engines_already_skip_alike(tmp_path: Path) -> None:
    path = _table(tmp_path, [
        ("nba", "e1", "b", "h2h_home", -110, 1, None),
        ("", "e1", "b", "h2h_home", -120, 2, None),  # missing field
        ("nba", "e1", "b", "bogus", -130, 3, None),  # bad side
        ("nba", "e1", "b", "h2h_home", -140, -5, None),  # bad time
    ])
    stream, batch = _skip_counts(path)
    assert stream == batch == {"missing field": 1, "bad side": 1, "bad time": 1}


# analysis/batch.py classed a non-finite line as "bad field" where the stream readers
# (formats.frames.coerce_line) say "bad line", and a null last_update as "bad time" where the
# stream readers (formats.tables.quote_from_row) say "missing field" (fixed with this test).
@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (("nba", "e1", "b", "spread_home@-3", -150, 7, float("nan")), "bad line"),
        (("nba", "e1", "b", "spread_home@-3", -150, 7, float("inf")), "bad line"),
        (("nba", "e1", "b", "h2h_home", -150, None, None), "missing field"),
    ],
)
def test_bad_line_and_missing_time_skip_alike(tmp_path: Path, row: tuple[object, ...], reason: str) -> None:
    path = _table(tmp_path, [("nba", "e1", "b", "h2h_home", -110, 1, None), row])
    stream, batch = _skip_counts(path)
    assert stream == {reason: 1}
    assert batch == stream
