"""Breaking the quote-table writers: a written table must replay like the quotes it holds
(the same alerts and counters), whatever the prices, in every table format."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.skips import SkipLog
from dropengine.io.tables import read_quote_table, write_quote_table

SUFFIXES = ("csv", "ndjson", "parquet")


def _replay(quotes: list[Quote]) -> tuple[list[float], dict[str, int]]:
    engine = DropEngine()
    deltas = [d.delta for d in engine.observe_many(quotes)]
    return deltas, engine.counters.as_dict()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_int_price_beyond_int64_stays_invalid_not_suspended(tmp_path: Path, suffix: str) -> None:
    # -110, then an invalid price (an int no int64 holds), then -120: the invalid price leaves
    # the key as it was, so -120 is a 10-cent move. Written as null (Parquet's Int64 column
    # cannot hold 10**30) it became a suspension, and -120 re-primed: no alert.
    quotes = [Quote("nba", "e1", "b", "h2h_home", p, t) for t, p in enumerate([-110, 10**30, -120], 1)]
    path = tmp_path / f"q.{suffix}"
    write_quote_table(path, quotes)
    skips = SkipLog()
    back = [q for _, q in read_quote_table(path, skips)]
    assert _replay(back) == _replay(quotes)
    assert _replay(quotes)[1]["invalid"] == 1


@settings(max_examples=40, deadline=None)
@given(prices=st.lists(st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-110, -120, 150, 100, -100])),
                       min_size=1, max_size=8))
def test_any_int_prices_replay_alike_from_every_table(tmp_path_factory: pytest.TempPathFactory,
                                                       prices: list[int]) -> None:
    quotes = [Quote("nba", "e1", "b", "h2h_home", p, t) for t, p in enumerate(prices, 1)]
    want = _replay(quotes)
    base = tmp_path_factory.mktemp("t")
    for suffix in SUFFIXES:
        path = base / f"q.{suffix}"
        write_quote_table(path, quotes)
        back = [q for _, q in read_quote_table(path, SkipLog())]
        assert _replay(back) == want, suffix
