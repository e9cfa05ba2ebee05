"""dropengine.client's pure parts: the typed query, the frame decoder (ours and the vendor's two
documented odds_drop shapes) and the resume cursor. No sockets here; the clients against real
servers are tests/test_h15_client_serve.py and test_h15_client_vendor.py."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.client import AsyncDropClient, Connected, DropQuery, EventDecoder, Heartbeat, Reset
from dropengine.client.resume import Resume
from dropengine.core.alerts import Drop, encode_alert
from dropengine.core.errors import ConfigError, FeedError
from dropengine.formats.sse import SSEEvent, SSEParser
from dropengine.server.hub import reset_frame, sse_frame

from .strategies import quote_streams

# ---- the query ------------------------------------------------------------------------------------


def test_query_routes_and_params() -> None:
    one = DropQuery.build("basketball_nba", threshold=15, direction="toward_favorite", bookmakers="pinnacle,bet365",
                          markets=["h2h"], kinds="game", types="steam,odds_drop", line_threshold=0.25,
                          event_id="g1", since=5, heartbeat_s=2)
    assert one.path == "/v1/odds-drop/basketball_nba" and one.sport_key == "basketball_nba"
    assert one.params() == {"threshold": "15", "direction": "toward_favorite", "bookmakers": "bet365,pinnacle",
                            "markets": "h2h", "kinds": "game", "types": "odds_drop,steam",
                            "line_threshold": "0.25", "event_id": "g1", "since": "5", "heartbeat_s": "2"}
    assert one.params(since=9)["since"] == "9"  # a resume cursor overrides
    multi = DropQuery.build(["a_b", "c_d"])
    assert multi.path == "/v1/odds-drop/multi" and multi.params() == {"sports": "a_b,c_d", "heartbeat_s": "5"}
    assert multi.sport_key is None
    assert DropQuery.build(None).path == "/v1/odds-drop/all"


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"threshold": 1.5}, "threshold"), ({"threshold": True}, "threshold"), ({"threshold": 0}, "threshold"),
    ({"direction": "up"}, "direction"), ({"kinds": "game,futures"}, "kinds"), ({"types": "steem"}, "types"),
    ({"bookmakers": "a,,b"}, "bookmakers"), ({"markets": "h2h,x y"}, "markets"),
    ({"line_threshold": float("nan")}, "line_threshold"), ({"event_id": "a,b"}, "event_id"),
    ({"since": -1}, "since"), ({"heartbeat_s": 31}, "heartbeat_s"), ({"heartbeat_s": 0}, "heartbeat_s"),
])
def test_query_refuses_bad_values_naming_the_field(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=f"^{named}: "):
        DropQuery.build("basketball_nba", **kwargs)


def test_query_refuses_bad_routes() -> None:
    for sport in ("bad key", ["x", "x"], [], "a/b"):
        with pytest.raises(ConfigError, match=r"^sport: "):
            DropQuery.build(sport)
    with pytest.raises(ConfigError, match=r"^multi: "):
        DropQuery(("a", "b"))


# ---- decoding ---------------------------------------------------------------------------------------


def _data(frame: bytes) -> str:
    events = SSEParser().feed(frame.decode())
    assert len(events) == 1
    return events[0].data


@settings(max_examples=40, deadline=None)
@given(quote_streams(lines=True))
def test_every_alert_the_server_writes_decodes_to_the_same_value(quotes: list[Any]) -> None:
    engine = DropEngine(threshold=5, types="odds_drop,line_move,steam", line_threshold=0.5, steam_books=2)
    alerts = engine.observe_many(quotes)
    decoder = EventDecoder()
    for i, alert in enumerate(alerts):
        got = decoder.decode(_data(sse_frame(alert, f"e-{i}")))  # the server's frame bytes
        assert got == alert and type(got) is type(alert)


def test_stream_frames_decode_typed() -> None:
    d = EventDecoder()
    connected = d.decode(json.dumps({
        "type": "connected", "filters": {"threshold": 15, "direction": "both", "sports": ["basketball_nba"],
                                         "event_id": None, "bookmakers": ["pinnacle"], "markets": None,
                                         "kinds": None, "since": None, "types": ["odds_drop", "steam"]},
        "heartbeat_s": 5, "steam": {"books": 3, "window_ms": 300000, "threshold": 10, "line_threshold": 0.5,
                                    "groups": [["a", "b"]]},
        "epoch": "abc", "id": "abc-7", "timestamp": 1}))
    assert isinstance(connected, Connected)
    assert connected.filters.threshold == 15 and connected.filters.bookmakers == ("pinnacle",)
    assert connected.filters.types == ("odds_drop", "steam") and connected.id == "abc-7"
    assert connected.steam is not None and connected.steam.groups == (("a", "b"),)
    reset = d.decode(_data(reset_frame("evicted", "abc-9", 5)))
    assert reset == Reset(reason="evicted", id="abc-9", timestamp=5)
    assert d.decode('{"type":"heartbeat","id":"abc-9","timestamp":3}') == Heartbeat(id="abc-9", timestamp=3)
    # the vendor's connected frame (001): other fields, no epoch
    vendor = d.decode('{"type":"connected","sport_key":"mlb","tier":"business","push_mode":"raw",'
                      '"filters":{"event_id":null,"bookmakers":["fanduel"],"since":12},"timestamp":9}')
    assert isinstance(vendor, Connected) and vendor.sport_key == "mlb" and vendor.filters.since == 12


_OURS = Drop("basketball_nba", "g1", "pinnacle", "spread_home@-3.5", "game", "spreads", -110, -120, -10,
             "toward_favorite", 1747000000123, 1747000000124, 61000, "Lakers", "Warriors", "2026-05-12T22:30:00Z")


def test_vendor_streaming_page_shape_is_a_drop() -> None:
    # reference/002: prev/new/delta and a SPEC side; no sport_key (single sport), market_key, elapsed_ms
    frame = {"type": "odds_drop", "event_id": "g1", "bookmaker": "pinnacle", "side": "spread_home@-3.5",
             "kind": "game", "prev": -110, "new": -120, "delta": -10, "direction": "toward_favorite",
             "home_team": "Lakers", "away_team": "Warriors", "commence_time": "2026-05-12T22:30:00Z",
             "last_update": 1747000000123, "timestamp": 1747000000124}
    got = EventDecoder("basketball_nba").decode(json.dumps(frame))
    assert got == msgspec.structs.replace(_OURS, elapsed_ms=0)  # elapsed unknown: 0, as documented
    with pytest.raises(FeedError, match="sport_key") as exc:
        EventDecoder(None).decode(json.dumps(frame))  # /all: a frame must name its sport
    assert exc.value.reason == "missing field"


@pytest.mark.parametrize(("parts", "side", "market_key"), [
    ({"side": "home", "market_key": "spreads", "line": -3.5}, "spread_home@-3.5", "spreads"),
    ({"side": "over", "market_key": "totals", "line": 220.5}, "total_over@220.5", "totals"),
    ({"side": "away"}, "h2h_away", "h2h"),
    ({"side": "home", "market_key": "h2h"}, "h2h_home", "h2h"),
    ({"side": "under", "market_key": "player_points", "player": "L. James", "line": 24.5, "market": "Points"},
     "player_points:L. James:under@24.5", "player_points"),
])
def test_vendor_asyncapi_shape_is_a_drop(parts: dict[str, Any], side: str, market_key: str) -> None:
    # reference/001: prior_price/new_price, an ABSOLUTE delta_cents, side home/away/over/under
    frame = {"type": "odds_drop", "sport_key": "basketball_nba", "timestamp": 1747000000124,
             "bookmaker": "pinnacle", "event_id": "g1", "prior_price": 105, "new_price": -105,
             "delta_cents": 210, "elapsed_ms": 61000, **parts}
    got = EventDecoder().decode(json.dumps(frame))
    assert isinstance(got, Drop)
    assert (got.side, got.market_key, got.kind) == (side, market_key, "prop" if "player" in parts else "game")
    # SPEC 1: +105 -> -105 is 10 cents toward the favourite, whatever the vendor's naive 210 says
    assert (got.prev, got.new, got.delta, got.direction) == (105, -105, -10, "toward_favorite")
    assert got.last_update == got.timestamp == 1747000000124 and got.elapsed_ms == 61000
    assert encode_alert(got)  # a whole Drop: it encodes


@pytest.mark.parametrize(("data", "reason", "named"), [
    ("not json", "bad json", "frame"),
    ("[1, 2]", "bad frame", "frame"),
    ('{"type": "hot_feed_status", "sources": []}', "unknown type", "type"),
    ('{"type": "odds_drop", "sport_key": "s", "event_id": "g", "bookmaker": "b", "side": "h2h_home",'
     ' "prev": -110, "new": 50, "timestamp": 1}', "invalid price", "new"),
    ('{"type": "odds_drop", "sport_key": "s", "event_id": "g", "bookmaker": "b", "side": "sideways",'
     ' "prev": -110, "new": -120, "timestamp": 1}', "bad side", "side"),
    ('{"type": "odds_drop", "sport_key": "s", "event_id": "g", "bookmaker": "b", "side": "home",'
     ' "market_key": "spreads", "prior_price": -110, "new_price": -120, "timestamp": 1}', "bad side", "side"),
    ('{"type": "odds_drop", "sport_key": "s", "event_id": 7, "bookmaker": "b", "side": "h2h_home",'
     ' "prev": -110, "new": -120, "timestamp": 1}', "bad frame", "event_id"),
    ('{"type": "line_move", "sport_key": "s"}', "bad frame", "line_move"),
    ('{"type": "reset"}', "bad frame", "reason"),
])
def test_bad_frames_are_feed_errors_naming_the_field(data: str, reason: str, named: str) -> None:
    with pytest.raises(FeedError) as exc:
        EventDecoder("s").decode(data)
    assert exc.value.reason == reason and named in str(exc.value)


# ---- resume ------------------------------------------------------------------------------------------


def _alert(i: int, ts: int) -> Drop:
    return Drop("s", f"g{i}", "b", "h2h_home", "game", "h2h", -110, -120, -10, "toward_favorite", ts, ts, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=30), st.data())
def test_a_resume_by_since_hands_every_alert_on_exactly_once(steps: list[int], data: st.DataObject) -> None:
    """A server without ids: the client resumes with ``since`` and drops what comes again,
    whether the server counts ``since`` in or out or ignores it (then sends only what is new)."""
    ts, alerts = 1_000, []
    for i, step in enumerate(steps):  # timestamps that often repeat (a burst in one millisecond)
        ts += step
        alerts.append(_alert(i, ts))
    cut = data.draw(st.integers(0, len(alerts)))
    mode = data.draw(st.sampled_from(["inclusive", "exclusive", "ignored"]))
    resume = Resume()
    resume.request(None)
    got = [a for a in alerts[:cut] if resume.fresh(a)]
    headers, since = resume.request(None)
    assert headers == {}
    if cut == 0:
        assert since is None
        again = alerts
    elif mode == "inclusive":
        again = [a for a in alerts if a.timestamp >= since]  # type: ignore[operator]
    elif mode == "exclusive":
        again = [a for a in alerts if a.timestamp > since]  # type: ignore[operator]
    else:
        again = alerts[cut:]
    got += [a for a in again if resume.fresh(a)]
    assert got == alerts


def test_resume_prefers_ids_and_takes_a_fresh_streams_connected_id() -> None:
    r = Resume()
    assert r.request(7) == ({}, 7)
    r.connected("e-4", sent_cursor=False, sent_since=False)  # from now: it stands at e-4
    assert r.request(7) == ({"Last-Event-ID": "e-4"}, 7)
    r2 = Resume()
    r2.connected("e-9", sent_cursor=False, sent_since=True)  # a backlog since a time follows: not a cursor
    assert r2.last_event_id is None
    r2.seen("e-5")
    r2.connected("e-9", sent_cursor=True, sent_since=False)  # a resumed stream: its backlog follows
    assert r2.last_event_id == "e-5"
    for bad in ("", " ", "é-1", "a\tb"):  # no header can carry it back: not a cursor
        r2.seen(bad)
    assert r2.last_event_id == "e-5"



def test_a_connection_is_dead_after_twice_the_heartbeat() -> None:
    client = AsyncDropClient("http://127.0.0.1:9", api_key="k-123456789", sport="s", heartbeat_s=3)
    assert client.dead_after_s == 6  # SPEC 8: twice what was asked for
    client._decoded(SSEEvent('{"type":"connected","heartbeat_s":2,"filters":{}}'))
    assert client.dead_after_s == 4  # then twice what the server says it sends
    assert AsyncDropClient("http://127.0.0.1:9", api_key="k-123456789", silence_s=0.5).dead_after_s == 0.5
    for bad in ({"silence_s": 0}, {"heartbeat_s": 31}, {"auth": "cookie"}, {"last_event_id": "a\nb"},
                {"last_event_id": "é"},
                {"policy": 5}, {"connect_timeout_s": -1}, {"query": DropQuery.build("s"), "threshold": 5},
                {"query": "s"}):
        with pytest.raises(ConfigError, match=f"^{next(iter(bad))}: "):
            AsyncDropClient("http://127.0.0.1:9", api_key="k-123456789", **bad)
    for url in ("http://127.0.0.1:9/?apiKey=k-123456789", "ftp://x/?apiKey=k-123456789"):
        with pytest.raises(ConfigError, match=r"^base_url: ") as exc:
            AsyncDropClient(url, api_key="k-123456789")
        assert "k-123456789" not in str(exc.value)
