"""break20 (session 13, issue 14): what this session's changes must keep, from the outside.

- batch17 (``_compiled_passes`` selects a DataFrame's working columns eagerly, keeping its
  chunks; ``_columns_table`` lets the parts' columns go by ``drop_in_place``; the line moves'
  table is written in a thread): the caller's DataFrame is left as it was (values, schema,
  column order, chunks), also after the lazily built values are read, and reusable for a
  second call with the same results; an input whose columns are chunked each differently
  (a frame put together column by column) gives the results of its rechunked copy, on the
  compiled path and equal to the pure path.
- state17 (0a358ab: ``_Keys.cool`` looks a bookmaker's sides up once per run of its keys):
  a hot set small enough that every spill cools several keys of interleaved events and
  bookmakers at once gives the default engine's alerts, counters and snapshot bytes, across
  a snapshot/restore and an eviction. (break18's tiny hot set cools one key at a time, so it
  never reaches the run of several keys that 0a358ab caches.)

Differential runs behind these (not kept: seconds each, not CI-cheap) found no difference
from e4ab31b; see /tmp/notes/findings-break20.md.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import BatchResult, detect_counted
from dropengine.core import keystate

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of, signal_options, signal_streams

_SETTINGS = settings(max_examples=8, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])
_TYPES = ("odds_drop,line_move,steam", "odds_drop,steam", "line_move,steam", "odds_drop,line_move")
_TEXT = ("sport_key", "event_id", "bookmaker", "side", "kind", "market_key", "player", "market", "home_team",
         "away_team", "commence_time")


def _result(r: BatchResult) -> tuple[Any, ...]:
    return (r.alerts.schema, r.alerts.rows(), r.counters, sorted(r.skipped.items()), r.rejected.rows(),
            r.rows.to_list(), repr(r.alert_values()))


def _misaligned(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each column chunked its own way (one piece, or 2-5 pieces of its own sizes)."""
    columns = []
    for k, c in enumerate(frame.columns):
        col = frame.get_column(c)
        step = max(1, col.len() // (2 + k % 4))
        pieces = [col.slice(a, step) for a in range(0, col.len(), step)]
        columns.append(pl.concat(pieces, rechunk=False) if k % 2 == 0 and pieces else col.rechunk())
    return pl.DataFrame(columns)


@_SETTINGS
@given(signal_streams(), st.data())
def test_the_callers_frame_is_left_as_it_was_and_chunking_does_not_matter(
    quotes: list[Quote], data: st.DataObject
) -> None:
    require_fast()
    opts = {**data.draw(signal_options()), "types": data.draw(st.sampled_from(_TYPES))}
    frame = frame_of(quotes)
    if data.draw(st.booleans()):  # dictionary-encoded text, as a Parquet reader gives it
        frame = frame.with_columns(pl.col(c).cast(pl.Categorical) for c in _TEXT if c in frame.columns)
    given_frame = _misaligned(frame) if data.draw(st.booleans()) else frame
    before = given_frame.clone()
    chunks = [given_frame.get_column(c).n_chunks() for c in given_frame.columns]
    got = detect_counted(given_frame, accel="fast", **opts)
    first = _result(got)  # (builds the lazy values: they read the input's columns)
    assert_frame_equal(given_frame, before, check_exact=True)
    assert given_frame.columns == before.columns
    assert [given_frame.get_column(c).n_chunks() for c in given_frame.columns] == chunks
    assert _result(detect_counted(given_frame, accel="fast", **opts)) == first  # reusable
    assert _result(detect_counted(frame.rechunk(), accel="fast", **opts)) == first
    assert _result(detect_counted(given_frame, accel="pure", **opts)) == first


_ENC = msgspec.json.Encoder()
_SIDES = ("h2h_home", "h2h_away", "spread_home@-3", "spread_away@3", "total_over@210.5")
_PRICES = (-130, -120, -110, -105, -100, 100, 105, 120, 140, -112.5, 125.5, None)


def _run(quotes: list[Quote], opts: dict[str, Any], cap: int | None, cut: int, evict_at: int | None) -> tuple[Any, ...]:
    engine = DropEngine(**opts)
    if cap is not None:
        engine._state.cap = cap
        engine._lines.cap = cap
    alerts = engine.observe_many(quotes[:cut])
    snap = engine.snapshot()
    engine = DropEngine.restore(snap)
    if cap is not None:
        engine._state.cap = cap
        engine._lines.cap = cap
    evicted = engine.evict(evict_at) if evict_at is not None else None
    alerts += engine.observe_many(quotes[cut:])
    return [_ENC.encode(a) for a in alerts], engine.counters, snap, evicted, engine.snapshot()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(r=st.randoms(use_true_random=False), cap=st.sampled_from((3, 4, 6, 9)),
       opts=st.sampled_from(({}, {"reference": "anchor"}, {"unit": "prob", "threshold": 1.5}, {"threshold": 9.5},
                             {"types": "odds_drop,line_move,steam", "steam_books": 2},
                             {"reprime_after_suspension": False})))
def test_spills_of_several_keys_at_once_equal_the_default_engine(
    monkeypatch: pytest.MonkeyPatch, r: random.Random, cap: int, opts: dict[str, Any]
) -> None:
    # never doubling the limit: every spill cools len(hot) - 1 keys (several, of runs of books)
    monkeypatch.setattr(keystate, "_GROW_AFTER", 1 << 30)
    events, books = ["e1", "e2", "e3"], ["b1", "b2", "b3", "b4"]
    quotes: list[Quote] = []
    t = 1_000
    run: tuple[str, str] = ("e1", "b1")
    for _ in range(r.randint(10, 120)):
        if r.random() < 0.4:  # a bookmaker's keys one after another (a vendor row), else interleaved
            run = (r.choice(events), r.choice(books))
        t += r.choice((0, 1, 5, 1000))
        quotes.append(Quote("nba", run[0], run[1], r.choice(_SIDES), r.choice(_PRICES), t))
    cut = r.randint(0, len(quotes))
    evict_at = r.choice((None, t - 3, t + 1))
    assert _run(quotes, opts, cap, cut, evict_at) == _run(quotes, opts, None, cut, evict_at)
