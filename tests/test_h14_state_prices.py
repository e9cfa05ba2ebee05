"""Issue 14: ``DropEngine._observe_prices`` (the fused frames path's entry point) is
``observe_many`` on the quotes its observation tuples stand for: the same alerts, counters,
state (snapshot bytes) and event starts, through the one detection loop."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.engine import PriceObservation
from dropengine.core.errors import ConfigError
from dropengine.core.quote import QuoteInfo
from tests.strategies import detect_options, streams_with_options


def observation(q: Quote) -> PriceObservation:
    """The tuple the fused decoder builds for ``q`` (its row fields in a fresh QuoteInfo)."""
    info = QuoteInfo(q.sport_key, q.kind,  # type: ignore[arg-type]  # set by Quote.__post_init__
                     q.market, q.player, q.home_team, q.away_team, q.commence_time)
    return ((q.event_id, q.bookmaker, q.side), q.price, q.last_update, q.market_key, q.line, info)  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(case=streams_with_options(detect_options()), as_tuple=st.lists(st.booleans(), min_size=40, max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=3), now=st.sampled_from((None, 5)))
def test_observe_prices_is_observe_many_on_the_quotes(
    case: tuple[list[Quote], dict[str, Any]], as_tuple: list[bool], cuts: list[int], now: int | None
) -> None:
    quotes, opts = case
    # a line-only observation is never a tuple (the fused path hands those on as Quotes)
    items = [observation(q) if as_tuple[i % 40] and not q.line_only else q for i, q in enumerate(quotes)]
    ref, eng = DropEngine(**opts), DropEngine(**opts)
    bounds = sorted({0, len(quotes), *(min(c, len(quotes)) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        assert eng._observe_prices(items[lo:hi], now) == ref.observe_many(quotes[lo:hi], now)
        assert eng.counters == ref.counters
    assert eng.snapshot() == ref.snapshot()


def test_a_tuple_is_not_a_quote_for_observe_many_and_signals_are_refused() -> None:
    q = Quote("nba", "e1", "pin", "h2h_home", -110, 1000)
    with pytest.raises(ConfigError, match=r"quotes\[0\]"):
        DropEngine().observe_many([observation(q)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="_observe_prices"):
        DropEngine(types=frozenset({"odds_drop", "line_move"}))._observe_prices([q])
    with pytest.raises(ConfigError, match=r"quotes\[1\]"):
        DropEngine()._observe_prices([q, "x"])  # type: ignore[list-item]
