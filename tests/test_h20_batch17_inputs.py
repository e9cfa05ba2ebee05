"""Issue 14 (session 13, batch17): what the compiled signals path's session-13 changes rely on.

- ``_compiled_passes`` selects a DataFrame's working columns eagerly (its chunks kept) and a
  LazyFrame's by a collect (cut into morsels): the results do not depend on how the input is
  chunked, nor on whether it came lazily;
- the line moves' table is written in a thread beside the routing, from the numbers the routing
  read, and a steam's table no longer writes the input's text columns the alerts table gathers by
  row (``_STEAM_WRITTEN``): with attribute filters (sport, event, bookmaker, market, kind) on
  every signal type, the compiled path's alerts, values and counters are still the pure path's.
"""

from __future__ import annotations

import itertools
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis.batch import BatchResult, detect_counted

from .conftest import require_fast
from .strategies import detect_options
from .test_h12_batch_equivalence import frame_of, signal_options, signal_streams

TYPES = ("odds_drop,line_move,steam", "line_move,steam", "line_move", "steam", "odds_drop,steam", "odds_drop")


def same(a: BatchResult, b: BatchResult) -> None:
    assert_frame_equal(a.alerts, b.alerts, check_exact=True)
    assert a.counters == b.counters
    assert a.skipped == b.skipped
    assert_frame_equal(a.rejected, b.rejected)
    assert a.rows.to_list() == b.rows.to_list()
    assert a.alert_values() == b.alert_values()


def chunked(frame: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    """``frame`` as the rows between ``cuts`` (each piece one chunk), not rechunked."""
    bounds = sorted({0, frame.height, *(min(c, frame.height) for c in cuts)})
    pieces = [frame.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]
    return pl.concat(pieces, rechunk=False) if pieces else frame


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signal_streams(), st.data())
def test_signals_the_same_whatever_the_inputs_chunks(quotes: list[Quote], data: st.DataObject) -> None:
    require_fast()
    opts = {**data.draw(signal_options()), "types": data.draw(st.sampled_from(TYPES))}
    frame = frame_of(quotes)
    cuts = data.draw(st.lists(st.integers(1, max(frame.height - 1, 1)), max_size=4))
    pieces = chunked(frame, cuts)
    one = detect_counted(frame, accel="fast", **opts)
    same(detect_counted(pieces, accel="fast", **opts), one)
    same(detect_counted(pieces.lazy(), accel="fast", **opts), one)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signal_streams(), st.data())
def test_signals_with_attribute_filters_equal_the_pure_path(quotes: list[Quote], data: st.DataObject) -> None:
    require_fast()
    base: dict[str, Any] = data.draw(detect_options(units=("cents", "cents", "prob"), filters=True))
    opts = {**data.draw(signal_options(base)), "types": data.draw(st.sampled_from(TYPES))}
    frame = frame_of(quotes)
    same(detect_counted(frame, accel="fast", **opts), detect_counted(frame, accel="pure", **opts))


def test_price_drops_alone_with_a_cooldown_keep_their_texts() -> None:
    """Price drops alone with a cooldown: the drops' table is the returned table, so it carries the
    input's teams, start and market itself (the signals path leaves them out of it otherwise:
    ``_drops_returned`` decides both). Fast == pure, and the texts are there."""
    require_fast()
    game = dict(sport_key="basketball_nba", event_id="e1", kind="game", market_key="h2h", home_team="H",
                away_team="A", commence_time="2026-05-12T22:30:00Z")
    quotes = [Quote(bookmaker=b, side="h2h_home", price=p, last_update=t, **game)
              for t, (b, p) in enumerate([("b1", 150), ("b2", 150), ("b1", 120), ("b2", 110), ("b1", 100)], 1)]
    frame = frame_of(quotes)
    for opts in ({"types": "odds_drop", "cooldown_ms": 1}, {"types": "odds_drop,steam", "cooldown_ms": 1}):
        fast = detect_counted(frame, accel="fast", **opts)
        same(fast, detect_counted(frame, accel="pure", **opts))
        assert fast.alerts.height >= 2
        assert fast.alerts.get_column("home_team").cast(pl.String).to_list() == ["H"] * fast.alerts.height
