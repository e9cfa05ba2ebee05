"""The server's fan-out core, without a server: sequence, ring buffer, resume, post-filters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.alerts import Drop
from dropengine.core.errors import ConfigError
from dropengine.core.filters import AlertFilter
from dropengine.server import Hub, parse_cursor, parse_request
from dropengine.server.hub import Cursor
from dropengine.server.params import ParamError

PRICES = [-200, -150, -130, -120, -115, -110, -105, 100, 105, 110, 115, 125, 150, 200, None]


def drop(i: int, delta: int = 10, sport: str = "basketball_nba", book: str = "pinnacle") -> Drop:
    direction = "toward_favorite" if delta < 0 else "toward_dog"
    return Drop(sport, f"e{i % 3}", book, "h2h_home", "game", "h2h", -110, -110 + delta, delta, direction,
                1000 + i, 1000 + i, 0)


def test_sequence_ids_and_frames() -> None:
    hub = Hub("ab12")
    entries = hub.publish([drop(1), drop(2)], now_ms=5)
    assert [e.seq for e in entries] == [1, 2]
    assert entries[0].frame.startswith(b"id: ab12-1\ndata: {\"type\":\"odds_drop\"")
    assert entries[0].frame.endswith(b"\n\n")
    assert str(hub.high_water) == "ab12-2"


def test_ring_is_bounded_by_size_and_age() -> None:
    hub = Hub("e", buffer_size=3, buffer_age_ms=100)
    hub.publish([drop(i) for i in range(5)], now_ms=0)
    assert [e.seq for e in hub.buffer] == [3, 4, 5]
    hub.publish([drop(9)], now_ms=150)
    assert [e.seq for e in hub.buffer] == [6]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-60, 60).filter(bool), st.sampled_from(["nba", "nhl"])), min_size=1,
             max_size=60),
    st.data(),
)
def test_resume_gets_exactly_the_missed_alerts(moves: list[tuple[int, str]], data: st.DataObject) -> None:
    """A client cut at any point and resumed with its last id sees exactly what a client
    that never left saw: same alerts, same order, none twice."""
    flt = AlertFilter.build(threshold=data.draw(st.integers(1, 40)),
                             direction=data.draw(st.sampled_from(["both", "toward_favorite", "toward_dog"])),
                             sports=data.draw(st.sampled_from([None, frozenset({"nba"})])))
    hub = Hub("ep", buffer_size=1000)
    steady, _ = hub.subscribe(flt)
    cut_at = data.draw(st.integers(0, len(moves)))
    resumed_at = data.draw(st.integers(cut_at, len(moves)))
    client, _ = hub.subscribe(flt)
    seen: list[int] = []
    last_id: Cursor | None = None
    for i, (delta, sport) in enumerate(moves):
        if i == cut_at:
            hub.unsubscribe(client)
        if i == resumed_at and i >= cut_at:
            client, reason = hub.subscribe(flt, last_id or Cursor("ep", 0))
            assert reason is None
        hub.publish([drop(i, delta, sport)], now_ms=i)
        if client in hub.subscribers:
            for e in hub.take(client):
                seen.append(e.seq)
                last_id = Cursor("ep", e.seq)
    if client not in hub.subscribers:
        client, reason = hub.subscribe(flt, last_id or Cursor("ep", 0))
        assert reason is None
    seen += [e.seq for e in hub.take(client, 10_000)]
    assert seen == [e.seq for e in hub.take(steady, 10_000)]
    assert seen == sorted(set(seen))


def test_resets_name_why() -> None:
    hub = Hub("now", buffer_size=2)
    hub.publish([drop(i) for i in range(5)], now_ms=0)
    flt = AlertFilter.build(threshold=1)
    assert "another epoch" in (hub.subscribe(flt, Cursor("old", 3))[1] or "")
    assert "ahead" in (hub.subscribe(flt, Cursor("now", 9))[1] or "")
    assert "no longer buffered" in (hub.subscribe(flt, Cursor("now", 1))[1] or "")
    sub, reason = hub.subscribe(flt, Cursor("now", 3))  # 4 and 5 are buffered: no reset
    assert reason is None and [e.seq for e in hub.take(sub)] == [4, 5]
    assert hub.counters.resets == 3


def test_since_sends_the_buffered_alerts_after_it() -> None:
    hub = Hub("s")
    hub.publish([drop(1)], now_ms=10)
    hub.publish([drop(2)], now_ms=20)
    sub, reason = hub.subscribe(AlertFilter.build(threshold=1, since=15))
    assert reason is None and [e.seq for e in hub.take(sub)] == [2]
    small = Hub("t", buffer_size=1)
    small.publish([drop(1)], now_ms=10)
    small.publish([drop(2)], now_ms=20)
    _, reason = small.subscribe(AlertFilter.build(threshold=1, since=5))
    assert reason is not None and "not all buffered" in reason


def test_a_subscriber_that_falls_behind_is_marked_and_holds_no_more() -> None:
    hub = Hub("q", max_pending=3)
    slow, _ = hub.subscribe(AlertFilter.build(threshold=1))
    fast, _ = hub.subscribe(AlertFilter.build(threshold=1))
    for i in range(10):
        hub.publish([drop(i)], now_ms=i)
        hub.take(fast)
    assert slow.overflowed and not slow.pending
    assert fast.delivered == 10 and not fast.overflowed
    assert hub.counters.overflowed == 1


quotes_st = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(PRICES), st.integers(0, 3)), min_size=1, max_size=80
)


@settings(max_examples=300, deadline=None)
@given(quotes_st, st.integers(1, 60), st.sampled_from(["both", "toward_favorite", "toward_dog"]))
def test_detecting_once_then_filtering_equals_detecting_per_connection(
    steps: list[tuple[str, int | None, int]], threshold: int, direction: str
) -> None:
    """The server's one engine (threshold 1) plus a connection's post-filter gives exactly
    the alerts of an engine run with that connection's threshold and direction (SPEC 3, 7)."""
    quotes, clock = [], 1_000
    for side, price, dt in steps:
        clock += dt
        quotes.append(Quote("nba", "e", "book", f"h2h_{'home' if side == 'a' else 'away'}", price, clock))
    once = DropEngine(threshold=1).observe_many(quotes)
    flt = AlertFilter.build(threshold=threshold, direction=direction)
    own = DropEngine(threshold=threshold, direction=direction).observe_many(quotes)
    assert [d for d in once if flt.accepts(d)] == own


def test_dump_and_load_round_trip() -> None:
    hub = Hub("rt", buffer_size=5)
    hub.publish([drop(i, sport="nhl") for i in range(7)], now_ms=3)
    again = Hub.load(hub.dump(), buffer_size=5)
    assert again.epoch == "rt" and again.next_seq == 8
    assert [(e.seq, e.alert, e.frame) for e in again.buffer] == [(e.seq, e.alert, e.frame) for e in hub.buffer]


def test_bad_settings_name_themselves() -> None:
    with pytest.raises(ConfigError, match="epoch"):
        Hub("Bad Epoch")
    with pytest.raises(ConfigError, match="buffer_size"):
        Hub("e", buffer_size=0)
    with pytest.raises(ConfigError, match="threshold"):
        AlertFilter.build(threshold=0)
    assert parse_cursor("ab-12") == Cursor("ab", 12)
    assert parse_cursor("AB-12") is None and parse_cursor("ab12") is None


@pytest.mark.parametrize(("query", "parameter"), [
    ({"threshold": "0"}, "threshold"), ({"threshold": "201"}, "threshold"), ({"threshold": "1.5"}, "threshold"),
    ({"threshold": "ten"}, "threshold"), ({"direction": "up"}, "direction"), ({"heartbeat_s": "0"}, "heartbeat_s"),
    ({"heartbeat_s": "31"}, "heartbeat_s"), ({"since": "-1"}, "since"), ({"since": "soon"}, "since"),
    ({"kinds": "games"}, "kinds"), ({"kinds": ""}, "kinds"), ({"bookmakers": ","}, "bookmakers"),
    ({"markets": "h2h,,spreads"}, "markets"), ({"event_id": ""}, "event_id"),
    # (a malformed last_event_id is a reset, not an error: tests/test_h13_frontfix_cursor.py)
])
def test_every_bad_parameter_is_named(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_request(query)
    assert info.value.parameter == parameter
    body = info.value.body()
    assert body["parameter"] == parameter and body["accepted"]


def test_multi_needs_sports_and_the_header_cursor_is_read() -> None:
    with pytest.raises(ParamError, match="sports"):
        parse_request({}, multi=True)
    req = parse_request({"sports": "a,b"}, multi=True, last_event_id="ep-4")
    assert req.filter.sports == frozenset({"a", "b"}) and req.cursor == Cursor("ep", 4)
    req = parse_request({}, last_event_id="garbage")  # malformed: a reset naming it, not an error (issue 13)
    assert req.cursor is None and req.cursor_reset is not None and req.cursor_reset.startswith("Last-Event-ID")
    req = parse_request({"last_event_id": "q-1"}, last_event_id="ep-4")  # the query wins
    assert req.cursor == Cursor("q", 1)


def test_since_after_an_age_eviction_gets_a_reset() -> None:
    hub = Hub("age", buffer_age_ms=1000)
    hub.publish([drop(1)], now_ms=2000)
    hub.trim(5000)  # the alert aged out: the ring is empty
    _, reason = hub.subscribe(AlertFilter.build(threshold=1, since=1500))
    assert reason is not None and "not all buffered" in reason
    _, reason = hub.subscribe(AlertFilter.build(threshold=1, since=2500))  # nothing was missed after it
    assert reason is None
    again = Hub.load(hub.dump())
    assert again.evicted_ms == 2000
