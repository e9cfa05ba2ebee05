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
- fused17 (9f4a620: a game row told first, a text field read as ``x or fallback``): the whole
  table of kind x player x market key x line forms, with sport and team texts absent, None,
  "" or a str, fused == general (alerts, counters, every skip with its position), one file and
  two. (test_h20_fused17_rows draws these forms; here every combination is in one run, 0.1 s.)

Differential runs behind these (not kept: seconds each, not CI-cheap) found no difference
from e4ab31b; see /tmp/notes/findings-break20.md.
"""

from __future__ import annotations

import random
from pathlib import Path
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
    # (an independent copy: clone() shares the Arrow buffers, so a write into them through a numpy
    # view would change both; review20 R20-9)
    before = pl.DataFrame(given_frame.to_dict(as_series=False), schema=given_frame.schema)
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


_FORMS = (ABSENT := object(), None, "", "x")


def _every_row_form() -> list[list[dict[str, Any]]]:
    """Every kind x player x market key x line form (each its own identity), with a game row's and
    a prop's price fields, the texts cycling through absent/None/""/a str; then each row again
    with every price moved by 20 cents (an alert where it decodes)."""
    first, again = [], []
    n = 0
    for kind in (ABSENT, None, "", "game", "prop", "other"):
        for player in (*_FORMS, "Pat"):
            for mk in (*_FORMS, "pts", "a:b"):
                for line in (ABSENT, None, 2.5, 3):
                    r: dict[str, Any] = {"event_id": f"e{n}", "bookmaker": "pin", "last_update": 1000}
                    for name, v in (("kind", kind), ("player", player), ("market_key", mk), ("line", line),
                                    ("sport_key", _FORMS[n % 4]), ("home_team", _FORMS[n // 4 % 4]),
                                    ("away_team", _FORMS[n // 16 % 4]), ("commence_time", _FORMS[n // 2 % 4]),
                                    ("market", _FORMS[n // 8 % 4])):
                        if v is not ABSENT:
                            r[name] = v
                    r.update(home_ml=-110, home_spread=-3, home_spread_price=-105, total=220.5, over_price=-115,
                             under_price=-120 if n % 3 else None)
                    first.append(r)
                    again.append({**r, "last_update": 1001, "home_ml": -130, "home_spread_price": -125,
                                  "over_price": -135, "under_price": -140})
                    n += 1
    return [first, again]


def test_every_row_form_fused_equals_general(tmp_path: Path) -> None:
    """9f4a620's row routing (a game row told first, ``x or fallback`` texts) over the whole table
    of forms at once (test_h20_fused17_rows draws them), one file and the two envelopes as two files."""
    from .test_h20_fused17_rows import run

    envelopes = _every_row_form()
    for sport in ("nfl", ""):
        one = tmp_path / "one.ndjson"
        one.write_bytes(b"".join(msgspec.json.encode({"type": "odds_update", "sport_key": sport, "data": d}) + b"\n"
                                 for d in envelopes))
        want = run([one], False)
        assert want[0]  # some alerts
        assert run([one], True) == want
        a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
        a.write_bytes(msgspec.json.encode({"type": "odds_update", "sport_key": sport, "data": envelopes[0]}) + b"\n")
        b.write_bytes(msgspec.json.encode({"type": "odds_update", "sport_key": sport, "data": envelopes[1]}) + b"\n")
        assert run([a, b], True) == run([a, b], False)
