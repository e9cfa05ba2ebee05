"""Issue 10: caller misuse raises ConfigError naming the argument, at every core entry point.

``bookmakers=123`` used to raise a bare TypeError, ``observe({...})`` an AttributeError, and
``now_ms="x"`` was emitted as ``"timestamp": "x"``. The properties below feed wrong-typed
values to every argument of the core's public entry points (``DropEngine`` and its
``observe``/``observe_many``/``evict``/``restore``, ``batch.detect``/``detect_counted``,
``AlertFilter``, ``Quote``): only the documented error may escape, and it names the argument.
``Quote`` validates feed data, so its documented error is ``FeedError``; ``restore`` reads
saved state, so its documented error is ``SnapshotError``.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import AlertFilter, ConfigError, DropEngine, FeedError, Quote, SnapshotError
from dropengine.analysis.batch import detect, detect_counted

JUNK: list[Any] = [
    123, -1, 1.5, math.nan, True, False, None, "x", "", b"pin", ["pin", 3], [object()], {"a": 1},
    {1, 2}, (), object(), 2**70, -(2**70), float("inf"), [["nested"]], {"pin": "x"},
]
junk = st.sampled_from(JUNK) | st.text(max_size=5) | st.integers() | st.floats() | st.lists(st.integers(), max_size=2)

ENGINE_ARGS = ("threshold", "direction", "reference", "unit", "sports", "event_id", "bookmakers", "markets",
               "kinds", "reprime_after_suspension")
FILTER_ARGS = ("direction", "sports", "event_ids", "bookmakers", "markets", "kinds")
QUOTE_ARGS = ("sport_key", "event_id", "bookmaker", "side", "price", "last_update", "kind", "market_key",
              "market", "player", "line", "home_team", "away_team", "commence_time")
GOOD_QUOTE: dict[str, Any] = {
    "sport_key": "nba", "event_id": "E1", "bookmaker": "pin", "side": "h2h_home", "price": -110,
    "last_update": 1,
}


def _expect(exc_type: type[Exception], name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; it either works or raises ``exc_type`` whose message names ``name``."""
    try:
        return fn(*args, **kwargs)
    except exc_type as exc:
        assert name in str(exc), f"{exc_type.__name__} does not name {name!r}: {exc}"
        return exc


@settings(max_examples=400, deadline=None)
@given(arg=st.sampled_from(ENGINE_ARGS), value=junk)
def test_engine_constructor_misuse_is_a_config_error(arg: str, value: Any) -> None:
    _expect(ConfigError, arg, DropEngine, **{arg: value})


@settings(max_examples=400, deadline=None)
@given(arg=st.sampled_from((*ENGINE_ARGS, "timestamp_column")), value=junk, counted=st.booleans())
def test_batch_detect_misuse_is_a_config_error(arg: str, value: Any, counted: bool) -> None:
    frame = pl.DataFrame({"sport_key": ["nba"], "event_id": ["E"], "bookmaker": ["pin"], "side": ["h2h_home"],
                          "price": [-110], "last_update": [1]})
    _expect(ConfigError, arg, detect_counted if counted else detect, frame, **{arg: value})


@settings(max_examples=200, deadline=None)
@given(value=junk)
def test_batch_detect_wants_a_frame(value: Any) -> None:
    _expect(ConfigError, "quotes", detect, value)


@settings(max_examples=400, deadline=None)
@given(arg=st.sampled_from(FILTER_ARGS), value=junk)
def test_alert_filter_misuse_is_a_config_error(arg: str, value: Any) -> None:
    # built directly (the dataclass) and through build() (which takes text and iterables)
    _expect(ConfigError, arg, AlertFilter, **{arg: value})
    build_name = {"event_ids": "event_id"}.get(arg, arg)
    _expect(ConfigError, build_name, AlertFilter.build, **{build_name: value})


@settings(max_examples=600, deadline=None)
@given(arg=st.sampled_from(QUOTE_ARGS), value=junk)
def test_quote_field_errors_are_feed_errors_naming_the_field(arg: str, value: Any) -> None:
    result = _expect(FeedError, arg, Quote, **{**GOOD_QUOTE, arg: value})
    if isinstance(result, Quote):  # accepted: every field holds what its annotation says
        assert type(result.market_key) is str and result.kind in ("game", "prop")
        for name in ("sport_key", "event_id", "bookmaker", "side"):
            assert type(getattr(result, name)) is str
        # and the engine takes it without a crash
        DropEngine().observe_many([result, result])


@settings(max_examples=300, deadline=None)
@given(value=junk)
def test_observe_wants_a_quote(value: Any) -> None:
    eng = DropEngine()
    _expect(ConfigError, "quote", eng.observe, value)
    assert eng.keys_held == 0 and eng.counters.seen == 0


@settings(max_examples=300, deadline=None)
@given(value=junk, at=st.integers(0, 3))
def test_observe_many_wants_quotes_and_keeps_state_consistent(value: Any, at: int) -> None:
    good = [Quote("nba", "E", "pin", "h2h_home", p, t) for t, p in enumerate((-110, -130, -150), 1)]
    batch = [*good[:at], value, *good[at:]]
    eng = DropEngine()
    err = _expect(ConfigError, f"quotes[{at}]", eng.observe_many, batch)
    assert isinstance(err, ConfigError)
    # the quotes before the bad one were applied, and the counters agree with the state
    ref = DropEngine()
    ref.observe_many(good[:at])
    assert eng.counters == ref.counters and eng.keys_held == ref.keys_held
    # not an iterable at all
    if not hasattr(value, "__iter__"):
        _expect(ConfigError, "quotes", DropEngine().observe_many, value)


@settings(max_examples=300, deadline=None)
@given(value=junk)
def test_now_ms_must_be_unix_ms(value: Any) -> None:
    eng = DropEngine()
    eng.observe(Quote("nba", "E", "pin", "h2h_home", -110, 1))
    got = _expect(ConfigError, "now_ms", eng.observe, Quote("nba", "E", "pin", "h2h_home", -150, 2), value)
    if isinstance(got, list):
        # accepted: the alert's timestamp is an int (or the quote's own time for None)
        assert value is None or (type(value) is int and value >= 0)
        for d in got:
            assert type(d.timestamp) is int
    else:  # rejected before anything was applied
        assert eng.counters.seen == 1
    _expect(ConfigError, "now_ms", DropEngine().observe_many, [], value)


@settings(max_examples=200, deadline=None)
@given(value=junk, by_start=st.booleans())
def test_evict_misuse_is_a_config_error(value: Any, by_start: bool) -> None:
    if by_start:
        _expect(ConfigError, "started_before_ms", DropEngine().evict, 0, started_before_ms=value)
    else:
        _expect(ConfigError, "before_ms", DropEngine().evict, value)


@settings(max_examples=200, deadline=None)
@given(value=junk | st.binary(max_size=60))
def test_restore_misuse_is_a_snapshot_error(value: Any) -> None:
    with pytest.raises(SnapshotError, match="snapshot"):
        DropEngine.restore(value)


# -- the cases the issue names, spelled out ------------------------------------------------


def test_the_cases_from_the_issue() -> None:
    with pytest.raises(ConfigError, match="bookmakers"):
        DropEngine(bookmakers=123)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="quote"):
        DropEngine().observe({"event_id": "E"})  # type: ignore[arg-type]
    eng = DropEngine()
    eng.observe(Quote("nba", "E", "pin", "h2h_home", -110, 1))
    with pytest.raises(ConfigError, match="now_ms"):
        eng.observe(Quote("nba", "E", "pin", "h2h_home", -150, 2), now_ms="x")  # type: ignore[arg-type]


def test_a_quote_subclass_is_still_a_quote() -> None:
    class Tagged(Quote, frozen=True):
        tag: str = ""

    eng = DropEngine()
    assert eng.observe_many([Tagged("nba", "E", "pin", "h2h_home", -110, 1),
                             Tagged("nba", "E", "pin", "h2h_home", -150, 2)])[0].delta == -40
