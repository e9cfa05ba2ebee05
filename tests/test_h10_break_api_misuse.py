"""Issue 10 (api-breaker): hostile-but-typed values to the core API.

Each test here failed before its fix (see the commit messages).
"""

from __future__ import annotations

import polars as pl
import pytest

from dropengine import DropEngine, FeedError, Quote, batch

COLS = ["sport_key", "event_id", "bookmaker", "side", "price", "last_update"]


@pytest.mark.parametrize("lu", [2**63, 2**63 + 1, 2**64, 2**80])
def test_last_update_beyond_int64_is_a_bad_time_in_stream_and_batch(lu: int) -> None:
    # before: the stream accepted it (and a snapshot of it could not be written past 2**64),
    # while batch.detect skipped the same row as "bad time": batch != stream
    with pytest.raises(FeedError, match="last_update") as info:
        Quote("nba", "e", "b", "h2h_home", -110, lu)
    assert info.value.reason == "bad time"
    eng = DropEngine()
    eng.observe(Quote("nba", "e", "b", "h2h_home", -110, 2**63 - 2))
    assert [d.delta for d in eng.observe(Quote("nba", "e", "b", "h2h_home", -150, 2**63 - 1))] == [-40]
    DropEngine.restore(eng.snapshot())
    rows = [("nba", "e", "b", "h2h_home", -110, 2**63 - 2), ("nba", "e", "b", "h2h_home", -150, 2**63 - 1)]
    assert batch.detect(pl.DataFrame(rows, schema=COLS, orient="row")).get_column("delta").to_list() == [-40]
