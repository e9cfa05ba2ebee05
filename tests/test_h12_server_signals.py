"""Issue 12: ``dropengine serve`` with line moves and steam (SPEC 7, 10, 11), for real: uvicorn on
loopback, httpx-sse clients.

Detection runs once (every type, 1 cent, 0.25 points); each connection filters by ``types``,
``threshold``, ``line_threshold``, ``direction``. The quotes come from a ManualSource the test
pushes into (each push returns once the server ingested it) with a fixed ``now_ms``, so every
expectation is exact; the real NFL recording is fed the same way and every connection's frames
are compared, byte for byte, with a stand-alone engine run with that connection's settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from dropengine import DropEngine, Quote
from dropengine.core.keys import KeyTable
from dropengine.io.replay import read_quotes
from dropengine.server import sources
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer

from .conftest import require_data
from .test_serve import _wait, status_of

KEY = "CANARY-H12-SERVER-7f31"
KEYS = KeyTable.parse(f"{KEY} business 20\n")
NFL = "americanfootball_nfl"
NOW = 1_762_700_000_000  # the ``now_ms`` every push stamps its alerts with (deterministic frames)

Start = Callable[..., tuple[str, DropServer, "Source"]]


class Source(sources.ManualSource):
    """The product's ManualSource with a data clock and quote builders for the test."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = NOW

    def tick(self, ms: int = 1_000) -> int:
        self.clock += ms
        return self.clock

    def send(self, *quotes: Quote) -> None:
        self.push(list(quotes), now_ms=NOW)

    def spread(self, book: str, line: float, price: int | None, event: str = "g1", ms: int = 1_000) -> Quote:
        return Quote(NFL, event, book, f"spread_home@{line:g}", price, self.tick(ms), home_team="Kansas City Chiefs",
                     away_team="Denver Broncos")

    def h2h(self, book: str, price: int, event: str = "g1", ms: int = 1_000) -> Quote:
        return Quote(NFL, event, book, "h2h_home", price, self.tick(ms))


@pytest.fixture
def start() -> Iterator[Start]:
    running: list[BackgroundServer] = []

    def go(**config: Any) -> tuple[str, DropServer, Source]:
        source = Source()
        srv = DropServer(source, ServeConfig(keys=KEYS, **config))
        bg = BackgroundServer(srv.app, secrets=KEYS.keys())
        running.append(bg)
        return bg.start(), srv, source

    yield go
    for bg in running:
        bg.stop()


def read(url: str, n: int, path: str = "/v1/odds-drop/all", timeout: float = 5, headers: dict[str, str] | None = None,
         **params: Any) -> list[tuple[str, str]]:
    """The first ``n`` SSE events as (id, raw data text)."""
    out: list[tuple[str, str]] = []
    with httpx.Client(timeout=httpx.Timeout(5, read=timeout)) as c, \
            connect_sse(c, "GET", url + path, params={"apiKey": KEY, **params}, headers=headers or {}) as es:
        assert es.response.status_code == 200, es.response.read()
        for ev in es.iter_sse():
            out.append((ev.id, ev.data))
            if len(out) >= n:
                break
    return out


def alerts_of(frames: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [json.loads(d) for _, d in frames if json.loads(d)["type"] in ("odds_drop", "line_move", "steam")]


def feed_moves(src: Source) -> None:
    """One price drop, four line moves of the home spread (0.25, 0.5, 1 and 0.5 points, all
    toward the favourite, -3 being the NFL key number), a total that drops (toward the dog), and
    the steam they make: the moves of 0.5 points or more count (the server's steam line
    threshold), so draftkings, fanduel and betmgm are the three books (pinnacle's 0.25 does
    not count); the total's move is one book only."""
    src.send(src.h2h("pinnacle", -110), src.h2h("pinnacle", -125))  # prime, then a 15-cent drop
    for book in ("pinnacle", "draftkings", "fanduel", "betmgm"):
        src.send(src.spread(book, -3, -110))  # every series primes
    src.send(src.spread("pinnacle", -3.25, -110))  # 0.25
    src.send(src.spread("draftkings", -3.5, -105))  # 0.5
    src.send(src.spread("fanduel", -4, -110))  # 1.0
    src.send(Quote(NFL, "g1", "draftkings", "total_over@44.5", -110, src.tick()))
    src.send(Quote(NFL, "g1", "draftkings", "total_over@44", -110, src.tick()))  # over down: toward the dog
    src.send(src.spread("betmgm", -3.5, -110))  # 0.5: the third counted book -> steam


# ---- the per-connection filters ------------------------------------------------------------------

CONNECTIONS: dict[str, tuple[dict[str, str], list[tuple[Any, ...]]]] = {
    # name: (query, the alerts it gets as (type, book or books, move))
    "default": ({}, [("odds_drop", "pinnacle", -15)]),
    "lines": ({"types": "line_move"}, [("line_move", "draftkings", -0.5), ("line_move", "fanduel", -1),
                                       ("line_move", "draftkings", -0.5), ("line_move", "betmgm", -0.5)]),
    "quarter": ({"types": "line_move", "line_threshold": "0.25"},
                [("line_move", "pinnacle", -0.25), ("line_move", "draftkings", -0.5), ("line_move", "fanduel", -1),
                 ("line_move", "draftkings", -0.5), ("line_move", "betmgm", -0.5)]),
    "one_point": ({"types": "line_move", "line_threshold": "1"}, [("line_move", "fanduel", -1)]),
    "steam": ({"types": "steam"}, [("steam", ("draftkings", "fanduel", "betmgm"), 4_000)]),
    "favourites": ({"types": "steam,odds_drop,line_move", "direction": "toward_favorite", "threshold": "20"},
                   [("line_move", "draftkings", -0.5), ("line_move", "fanduel", -1), ("line_move", "betmgm", -0.5),
                    ("steam", ("draftkings", "fanduel", "betmgm"), 4_000)]),
    "dogs": ({"types": "line_move,steam", "direction": "toward_dog"}, [("line_move", "draftkings", -0.5)]),
    "fanduel": ({"types": "steam,line_move", "bookmakers": "fanduel"},
                [("line_move", "fanduel", -1), ("steam", ("draftkings", "fanduel", "betmgm"), 4_000)]),
}


def summary(a: dict[str, Any]) -> tuple[Any, ...]:
    if a["type"] == "steam":
        return "steam", tuple(b["bookmaker"] for b in a["books"]), a["lag_ms"]
    if a["type"] == "line_move":
        return "line_move", a["bookmaker"], a["points"]
    return "odds_drop", a["bookmaker"], a["delta"]


def test_each_connection_gets_the_types_and_moves_it_asked_for(start: Start) -> None:
    url, srv, src = start()
    got: dict[str, list[tuple[str, str]]] = {}

    def client(name: str) -> None:
        query, expected = CONNECTIONS[name]
        got[name] = read(url, 1 + len(expected), **query)

    with ThreadPoolExecutor(len(CONNECTIONS)) as pool:
        futures = [pool.submit(client, name) for name in CONNECTIONS]
        _wait(lambda: len(srv.hub.subscribers) == len(CONNECTIONS))
        feed_moves(src)
        for f in futures:
            f.result(timeout=15)
    for name, (_query, expected) in CONNECTIONS.items():
        alerts = alerts_of(got[name])
        assert [summary(a) for a in alerts] == expected, name
        # the toward_dog line move is the total's (over down), every other one the spread's
        assert all(a["direction"] == "toward_dog" for a in alerts if a.get("side") == "total_over"), name
        ids = [int(i.rsplit("-", 1)[1]) for i, d in got[name][1:]]
        assert ids == sorted(set(ids)), name  # strictly increasing: one sequence over every type
    assert srv.status()["alerts_by_type"] == {"odds_drop": 1, "line_move": 5, "steam": 1}
    metrics = status_of(url, "/metrics").text
    assert 'dropengine_alerts_total{type="line_move"} 5' in metrics and "dropengine_alerts_produced_total 7" in metrics
    # a frame of each type is the alert's wire JSON (SPEC 10, 11)
    line = next(a for a in alerts_of(got["quarter"]) if a["bookmaker"] == "draftkings")
    assert line == {"type": "line_move", "sport_key": NFL, "event_id": "g1", "bookmaker": "draftkings",
                    "side": "spread_home", "kind": "game", "market_key": "spreads", "prev_line": -3, "new_line": -3.5,
                    "points": -0.5, "prev_price": -110, "new_price": -105, "direction": "toward_favorite",
                    "key_numbers": [3], "last_update": NOW + 8_000, "timestamp": NOW, "elapsed_ms": 4_000,
                    "home_team": "Kansas City Chiefs", "away_team": "Denver Broncos"}
    steam = alerts_of(got["steam"])[0]
    assert steam["leader"] == "draftkings" and steam["side"] == "spread_home" and steam["last_update"] == NOW + 12_000
    assert [(b["type"], b["prev_line"], b["new_line"], b["last_update"]) for b in steam["books"]] == [
        ("line_move", -3, -3.5, NOW + 8_000), ("line_move", -3, -4, NOW + 9_000), ("line_move", -3, -3.5, NOW + 12_000)]


def test_the_connected_frame_echoes_the_effective_types_and_line_threshold(start: Start) -> None:
    url, _, _ = start(steam_books=2, steam_window_ms=60_000, steam_threshold=15, steam_groups="betmgm+borgata")
    default = json.loads(read(url, 1)[0][1])
    assert default["filters"]["types"] == ["odds_drop"] and default["filters"]["line_threshold"] == 0.5
    assert "steam" not in default  # the steam settings are shown to connections that ask for steam
    mine = json.loads(read(url, 1, types="steam,line_move", line_threshold="1.25", threshold="12")[0][1])
    assert mine["filters"]["types"] == ["line_move", "steam"]  # in SPEC order, whatever order was asked
    assert mine["filters"]["line_threshold"] == 1.25 and mine["filters"]["threshold"] == 12
    assert mine["steam"] == {"books": 2, "window_ms": 60_000, "threshold": 15, "line_threshold": 0.5,
                             "groups": [["betmgm", "borgata"]]}
    whole = json.loads(read(url, 1, types="line_move", line_threshold="2")[0][1])
    assert whole["filters"]["line_threshold"] == 2 and json.dumps(whole["filters"]["line_threshold"]) == "2"


def test_steam_runs_with_the_servers_settings(start: Start) -> None:
    """--steam-books 2, --steam-window 60 s, --steam-threshold 15: a 10-cent drop does not
    count, a 20-cent one does; two books within a minute fire; a book 61 s after the
    leader's move opens a new window (the first aged out), whatever the connection's threshold."""
    url, srv, src = start(steam_books=2, steam_window_ms=60_000, steam_threshold=15)
    for book in ("pinnacle", "draftkings", "fanduel"):
        src.send(src.h2h(book, -110))
    src.send(src.h2h("pinnacle", -120))  # 10 cents: detected (a drop), not steam
    src.send(src.h2h("draftkings", -120))  # 10 cents: no steam
    src.send(src.h2h("pinnacle", -140))  # 20 cents: counts
    src.send(src.h2h("draftkings", -145, ms=61_000))  # 25 cents, 61 s later: pinnacle is out of the window
    src.send(src.h2h("fanduel", -135, ms=30_000))  # 25 cents, 30 s after draftkings: steam of 2
    frames = read(url, 2, types="steam", since="0", threshold="200")
    steam = json.loads(frames[1][1])
    assert steam["type"] == "steam" and [b["bookmaker"] for b in steam["books"]] == ["draftkings", "fanduel"]
    assert [b["delta"] for b in steam["books"]] == [-25, -25] and steam["lag_ms"] == 30_000
    assert srv.hub.counters.by_type == {"odds_drop": 5, "steam": 1}


# ---- resume across types -------------------------------------------------------------------------

def test_a_resume_gets_exactly_the_alerts_of_its_types_it_missed(start: Start) -> None:
    url, srv, src = start()
    src.send(src.h2h("pinnacle", -110), src.h2h("pinnacle", -125))  # alert 1: a drop
    for book in ("pinnacle", "draftkings", "fanduel", "betmgm"):
        src.send(src.spread(book, -3, -110))
    src.send(src.spread("pinnacle", -3.5, -110))  # alert 2: a line move
    cursor = f"{srv.hub.epoch}-{srv.hub.next_seq - 1}"  # the client has seen everything up to here
    feed_moves(src)  # while it is away: drops, line moves (some under 0.5 points), a steam
    src.send(src.h2h("pinnacle", -150))  # and one more drop
    for types in ("line_move", "steam", "odds_drop", "odds_drop,line_move,steam", "line_move,steam"):
        wanted = set(types.split(","))
        # what it missed, judged here on the alerts' own fields (the defaults: 10 cents, 0.5 points)
        missed = [e for e in srv.hub.buffer if e.seq > 2 and e.alert.type in wanted and
                  (e.alert.type != "line_move" or abs(e.alert.points) >= 0.5) and
                  (e.alert.type != "odds_drop" or abs(e.alert.delta) >= 10)]
        assert missed, f"the scenario must give {types} something to miss"
        for how in ({"last_event_id": cursor}, {"headers": {"Last-Event-ID": cursor}}):
            frames = read(url, 1 + len(missed), types=types, **how)
            assert json.loads(frames[0][1])["type"] == "connected"
            assert frames[1:] == [(f"{srv.hub.epoch}-{e.seq}", e.alert.to_json().decode()) for e in missed], types
    # and nothing else was pending: the next frame is a heartbeat carrying the high-water id
    after = read(url, 2 + len(missed), types=types, last_event_id=cursor, heartbeat_s="1")
    assert json.loads(after[-1][1])["type"] == "heartbeat"
    assert after[-1][0] == f"{srv.hub.epoch}-{srv.hub.next_seq - 1}"
    assert {e.alert.type for e in srv.hub.buffer} == {"odds_drop", "line_move", "steam"}


def test_a_cursor_the_ring_no_longer_holds_gets_a_reset_whatever_the_types(start: Start) -> None:
    url, srv, src = start(buffer_size=3)
    feed_moves(src)  # 7 alerts of three types; the ring keeps the last 3
    frames = read(url, 2, types="line_move", last_event_id=f"{srv.hub.epoch}-2")
    reset = json.loads(frames[1][1])
    assert reset["type"] == "reset" and "no longer buffered" in reset["reason"]


# ---- validation ------------------------------------------------------------------------------------

BAD = [
    ({"types": "odds"}, "types"), ({"types": ""}, "types"), ({"types": "line_move,"}, "types"),
    ({"types": "odds_drop,,steam"}, "types"), ({"types": "LINE_MOVE"}, "types"),
    ({"line_threshold": "0.1"}, "line_threshold"), ({"line_threshold": "0.2499"}, "line_threshold"),
    ({"line_threshold": "20.5"}, "line_threshold"), ({"line_threshold": "nan"}, "line_threshold"),
    ({"line_threshold": "-1"}, "line_threshold"), ({"line_threshold": "1e1"}, "line_threshold"),
    ({"line_threshold": ""}, "line_threshold"), ({"line_threshold": "half"}, "line_threshold"),
]


def test_a_bad_types_or_line_threshold_answers_400_naming_it(start: Start) -> None:
    url, srv, _ = start()
    for query, parameter in BAD:
        r = status_of(url, "/v1/odds-drop/all", apiKey=KEY, **query)
        assert r.status_code == 400, (query, r.text)
        body = r.json()
        assert body["parameter"] == parameter and body["accepted"] and KEY not in r.text, query
    for parameter in ("types", "line_threshold"):  # given twice: which one was meant cannot be guessed
        with httpx.Client(timeout=5) as c:
            twice = c.get(url + "/v1/odds-drop/all", params=[("apiKey", KEY), (parameter, "steam"), (parameter, "1")])
        assert twice.status_code == 400 and twice.json()["parameter"] == parameter
    assert srv.metrics.rejected_400 == len(BAD) + 2 and not srv.hub.subscribers


def test_every_line_threshold_in_range_is_accepted(start: Start) -> None:
    url, _, _ = start()
    for value, echo in (("0.25", 0.25), ("20", 20), ("0.5", 0.5), (" 3 ", 3), ("7.000", 7), ("19.75", 19.75)):
        connected = json.loads(read(url, 1, types="line_move", line_threshold=value)[0][1])
        assert connected["filters"]["line_threshold"] == echo, value


# ---- real data: each connection equals its own engine --------------------------------------------

def test_on_the_nfl_recording_each_connection_gets_what_its_own_engine_detects(start: Start) -> None:
    """Detection once, filtered per connection == one engine per connection, on the real NFL
    recording (1,200 line moves, 2,200 drops at 1 cent, 150 steams): frame by frame, byte for
    byte. The default connection (no ``types``) gets exactly today's frames: the drops of a
    default engine at threshold 10, nothing else."""
    path = require_data("theoddsapi_nfl", "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz")
    batches = list(read_quotes([path], line_only=True))
    connections: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
        "default": ({}, {}),
        "lines": ({"types": "line_move", "line_threshold": "1"}, {"types": "line_move", "line_threshold": 1}),
        "steam": ({"types": "steam"}, {"types": "steam"}),
        "all": ({"types": "odds_drop,line_move,steam", "direction": "toward_favorite", "threshold": "5",
                 "markets": "spreads,totals"},
                {"types": "odds_drop,line_move,steam", "direction": "toward_favorite", "threshold": 5,
                 "steam_threshold": 10, "markets": "spreads,totals"}),
    }
    expected: dict[str, list[bytes]] = {}
    for name, (_, settings) in connections.items():
        engine = DropEngine(**settings)
        expected[name] = [a.to_json() for batch, stamp in batches for a in engine.observe_many(batch, stamp)]
    assert len(expected["default"]) > 500 and len(expected["steam"]) > 50 and len(expected["lines"]) > 100
    # no eviction: the recording spans 30 hours, and a price last seen more than 6 hours (data
    # time) earlier would be forgotten by the server and prime again (a stand-alone engine keeps it)
    url, srv, src = start(max_pending=50_000, evict_idle_s=0, evict_started_s=0)
    got: dict[str, list[tuple[str, str]]] = {}

    def client(name: str) -> None:
        got[name] = read(url, 1 + len(expected[name]), timeout=20, **connections[name][0])

    with ThreadPoolExecutor(len(connections)) as pool:
        futures = [pool.submit(client, name) for name in connections]
        _wait(lambda: len(srv.hub.subscribers) == len(connections))
        for batch, stamp in batches:
            src.push(batch, now_ms=stamp)
        for f in futures:
            f.result(timeout=60)
    for name in connections:
        assert [d.encode() for _, d in got[name][1:]] == expected[name], name
    default_ids = [int(i.rsplit("-", 1)[1]) for i, _ in got["default"][1:]]
    assert default_ids == sorted(set(default_ids))


# ---- line-only books (SPEC 10): the server's sources decode them -----------------------------------

def _line_only_recording(path: Path) -> Path:
    """Three books move the home spread from -3 to -3.5 within a minute; fanduel publishes
    lines without per-side prices (a line-only book): its move is a line move all the same, and
    it is the third book of the steam."""
    def row(book: str, line: float, lu: int, prices: bool) -> dict[str, Any]:
        r: dict[str, Any] = {"kind": "game", "event_id": "E1", "bookmaker": book, "home_team": "Kansas City Chiefs",
                             "away_team": "Denver Broncos", "commence_time": "2025-11-09T18:00:00Z",
                             "last_update": lu, "home_ml": -150, "away_ml": 130, "home_spread": line,
                             "away_spread": -line, "total": 44.5}
        if prices:
            r.update(home_spread_price=-110, away_spread_price=-110, over_price=-110, under_price=-110)
        return r

    t0 = 1_762_700_000_000
    books = (("pinnacle", True), ("draftkings", True), ("fanduel", False))
    lines = [{"type": "initial_state", "sport_key": NFL, "timestamp": t0,
              "data": [row(b, -3, t0, p) for b, p in books]}]
    for i, (b, p) in enumerate(books):
        lu = t0 + 10_000 * (i + 1)
        lines.append({"type": "odds_update", "sport_key": NFL, "timestamp": lu, "data": [row(b, -3.5, lu, p)]})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _lines_and_steam(url: str) -> list[tuple[Any, ...]]:
    frames = read(url, 1 + len(EXPECTED_LINE_ONLY), types="line_move,steam", since="0")
    return [(*summary(a), a.get("side")) for a in alerts_of(frames)]


#: Both sides of the spread move at each book (home down: toward the favourite; away up: toward
#: the dog), so each side steams at the third book, fanduel's quote of that side.
THREE = ("pinnacle", "draftkings", "fanduel")
EXPECTED_LINE_ONLY = [
    ("line_move", "pinnacle", -0.5, "spread_home"), ("line_move", "pinnacle", 0.5, "spread_away"),
    ("line_move", "draftkings", -0.5, "spread_home"), ("line_move", "draftkings", 0.5, "spread_away"),
    ("line_move", "fanduel", -0.5, "spread_home"), ("steam", THREE, 20_000, "spread_home"),
    ("line_move", "fanduel", 0.5, "spread_away"), ("steam", THREE, 20_000, "spread_away"),
]


def test_a_replayed_line_only_book_moves_its_line_and_counts_for_steam(start: Start, tmp_path: Path) -> None:
    recording = _line_only_recording(tmp_path / "lines.ndjson")
    srv = DropServer(sources.ReplaySource([recording], speed=None), ServeConfig(keys=KEYS))
    with BackgroundServer(srv.app, secrets=KEYS.keys()) as url:
        _wait(lambda: status_of(url, "/healthz").json()["source"]["finished"])
        assert _lines_and_steam(url) == EXPECTED_LINE_ONLY


def test_a_line_only_book_from_the_live_upstream_moves_its_line(tmp_path: Path) -> None:
    from dropengine.core.keys import Secret
    from dropengine.core.retry import RetryPolicy
    from dropengine.live import UpstreamConfig
    from dropengine.mock import MockUpstream, load_timeline
    from dropengine.server.sources import UpstreamSource

    mock = MockUpstream(load_timeline([_line_only_recording(tmp_path / "lines.ndjson")]), speed=None)
    with BackgroundServer(mock.app) as upstream_url:
        cfg = UpstreamConfig(upstream_url, Secret("up-key"), "sse", heartbeat_s=1.0,
                             policy=RetryPolicy(base_s=0.02, cap_s=0.2, healthy_s=0.2, restart_wait_s=0.1))
        srv = DropServer(UpstreamSource(cfg, [NFL]), ServeConfig(keys=KEYS))
        with BackgroundServer(srv.app, secrets=KEYS.keys()) as url:
            _wait(lambda: srv.hub.counters.produced >= len(EXPECTED_LINE_ONLY))
            assert _lines_and_steam(url) == EXPECTED_LINE_ONLY
