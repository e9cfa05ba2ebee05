"""break25 (session 18), B25-1: a zero-byte ``.parquet`` file is one skip, the same on the stream
and the batch engine.

The bar is identical counters and skips between the engines. The stream replay reads a Parquet file
through ``io.files.guarded``: ``_read_parquet`` reports the file as ``unreadable file`` (polars
cannot read 0 bytes) and yields nothing, and ``guarded`` then sees an empty stream from a 0-byte file
and reports it again as ``empty file``: two skips for one file. ``replay_batch`` reports the one
``unreadable file``. (Pre-existing: both lines date from 337daa4.) A zero-byte CSV or NDJSON file is
one ``empty file`` on both engines, which this test also states.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay, replay_batch

ROW = {
    "sport_key": "basketball_nba",
    "event_id": "E1",
    "bookmaker": "pin",
    "side": "h2h_home",
    "price": -110,
    "last_update": 1_747_000_000_000,
}


def _skips(tmp_path: Path, empty_name: str) -> tuple[dict[str, int], dict[str, int]]:
    """Skip counts of the stream replay and the batch replay of one good quote table and one
    zero-byte file named ``empty_name``, both named."""
    pl.DataFrame([ROW]).write_parquet(tmp_path / "a.parquet")
    (tmp_path / empty_name).write_bytes(b"")
    stream, batch = ReplayStats(), ReplayStats()
    paths = [tmp_path / "a.parquet", tmp_path / empty_name]
    list(replay(paths, DropEngine(threshold=5), "auto", stream))
    replay_batch(paths, "auto", batch, threshold=5)
    return dict(stream.skips.counts), dict(batch.skips.counts)


@pytest.mark.parametrize("name", ["b.csv", "b.ndjson"])
def test_a_zero_byte_text_file_is_one_empty_file_on_both_engines(tmp_path: Path, name: str) -> None:
    stream, batch = _skips(tmp_path, name)
    assert stream == batch == {"empty file": 1}


# B25-1 (fixed in io/files.guarded): the stream engine counted a zero-byte .parquet twice
# (unreadable file + empty file), the batch engine once
def test_a_zero_byte_parquet_file_is_one_skip_on_both_engines(tmp_path: Path) -> None:
    stream, batch = _skips(tmp_path, "b.parquet")
    assert sum(stream.values()) == 1
    assert stream == batch
