"""Live clients against ``mock-upstream``: real uvicorn on loopback, real SSE/WS clients.

Every test is bounded: the retry policy runs scaled down (``FAST``: base 20 ms, cap 0.6 s,
healthy after 0.2 s, 1012 waits 0.1 s), heartbeats are 1 s, and each run has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dropengine import DropEngine
from dropengine.core.alerts import Drop
from dropengine.core.errors import AuthError, UpstreamError
from dropengine.core.keys import KeyTable, Secret
from dropengine.core.retry import Retry, RetryPolicy, Stop
from dropengine.io.replay import ReplayStats, replay
from dropengine.live import Received, StreamQuery, UpstreamConfig, UpstreamStream
from dropengine.live.fanin import FanIn
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.asgi import BackgroundServer
from dropengine.sim.simfile import write_simulation
from dropengine.sim.simulate import SimConfig

from .conftest import FIXTURES

DEMO = FIXTURES / "demo_nba_frames.ndjson"
FAST = RetryPolicy(base_s=0.02, cap_s=0.6, healthy_s=0.2, restart_wait_s=0.1, floor_s=0.005)
KEY = "live-test-key-0001"
CANARY = "CANARY-KEY-7f3a9c"


@pytest.fixture(scope="module")
def two_sports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two simulated sports (a few thousand quotes each, with late rows and suspensions)."""
    out = tmp_path_factory.mktemp("sim")
    paths = []
    for i, sport in enumerate(("basketball_nba", "icehockey_nhl")):
        p = out / f"{sport}.ndjson"
        write_simulation(SimConfig(events=2, books=4, hours=1.5, seed=11 + i, sport_key=sport), p, None)
        paths.append(p)
    return paths


def expected_alerts(paths: list[Path]) -> tuple[list[Drop], int]:
    stats = ReplayStats()
    alerts = list(replay(paths, DropEngine(), stats=stats))
    return alerts, stats.quotes


def by_sport(alerts: list[Drop]) -> dict[str, list[Drop]]:
    out: dict[str, list[Drop]] = {}
    for a in alerts:
        out.setdefault(a.sport_key, []).append(a)
    return out


def config(url: str, transport: str = "sse", *, auth: str = "header", key: str = KEY,
           heartbeat_s: float | None = 1.0, **kw: Any) -> UpstreamConfig:
    return UpstreamConfig(url, Secret(key), transport, auth, heartbeat_s=heartbeat_s,  # type: ignore[arg-type]
                          policy=FAST, **kw)


async def collect(feed: FanIn, want_quotes: int, timeout: float) -> tuple[list[Drop], list[Received]]:
    """Run ``feed`` through an engine until ``want_quotes`` quotes arrived (or fail at timeout)."""
    engine = DropEngine()
    alerts: list[Drop] = []
    frames: list[Received] = []

    got = 0

    async def run() -> None:
        nonlocal got
        async for r in feed.frames():
            frames.append(r)
            alerts.extend(engine.observe_many(r.quotes))
            got += len(r.quotes)
            if got >= want_quotes:
                return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out with {got}/{want_quotes} quotes; {feed.stats}") from None
    return alerts, frames


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[BackgroundServer] = []

    def start(mock: MockUpstream) -> str:
        server = BackgroundServer(mock.app, secrets=mock.secrets())
        servers.append(server)
        return server.start()

    yield start
    for s in servers:
        s.stop()


# ---- fault-free: the stream is the recording ------------------------------------------------

@pytest.mark.parametrize(("transport", "auth"), [
    ("sse", "header"), ("sse", "query"), ("ws", "header"), ("ws", "query"), ("ws", "subprotocol"),
])
def test_live_alerts_equal_replay(serve: Any, transport: str, auth: str) -> None:
    expected, quotes = expected_alerts([DEMO])
    url = serve(MockUpstream(load_timeline([DEMO]), speed=None))
    feed = FanIn(config(url, transport, auth=auth), ["basketball_nba"])
    alerts, _ = asyncio.run(collect(feed, quotes, 15))
    assert alerts == expected
    assert len(expected) == 12


# ---- faults: nothing lost, nothing duplicated -----------------------------------------------

FAULTS = [
    "cut,after=6,conn=1",
    "flap,conn=2-3",
    "http=503,conn=4,retry_after=0",
    "stall,after=5,conn=6",
    "cut,after=9,conn=7",
]


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_disconnects_lose_and_duplicate_nothing(serve: Any, two_sports: list[Path], transport: str) -> None:
    expected, quotes = expected_alerts(two_sports)
    faults = [*FAULTS, "close=1012,after=4,conn=5" if transport == "ws" else "close=1000,after=4,conn=5"]
    mock = MockUpstream(load_timeline(two_sports), speed=2000.0, max_gap=0.004, faults=faults)
    url = serve(mock)
    feed = FanIn(config(url, transport), ["basketball_nba", "icehockey_nhl"], rng=random.Random(1))
    alerts, _frames = asyncio.run(collect(feed, quotes, 60))
    got, want = by_sport(alerts), by_sport(expected)
    assert got.keys() == want.keys()
    for sport in want:
        assert got[sport] == want[sport], sport  # same alerts, same order, none lost or repeated
    for sport, stream in feed.streams.items():
        outcomes = [o.kind for o, _ in stream.history]
        # the faults were met and survived: cut, flap x2, 503, close, stall (heartbeat silence)
        assert len(stream.history) >= 6, (sport, outcomes)
        assert "silence" in outcomes
        assert all(isinstance(d, Retry) for _, d in stream.history)
        attempts = [c for c in mock.connections_log if c.sport == sport]
        assert len(attempts) == len(stream.history) + 1  # one connection per decision: no extra tries
    assert not feed.stats.skips, feed.stats.skips.first  # a cut event is never parsed


def test_recording_replays_to_the_alerts_of_the_live_run(serve: Any, two_sports: list[Path], tmp_path: Path) -> None:
    expected, quotes = expected_alerts(two_sports)
    mock = MockUpstream(load_timeline(two_sports), speed=2000.0, max_gap=0.004,
                        faults=["cut,after=8,conn=1-3", "flap,conn=4"])
    url = serve(mock)
    feed = FanIn(config(url, "sse"), ["basketball_nba", "icehockey_nhl"])
    alerts, frames = asyncio.run(collect(feed, quotes, 60))
    rec = tmp_path / "rec.ndjson"
    rec.write_text("".join(r.text + "\n" for r in frames))
    replayed = list(replay([rec], DropEngine()))
    assert sorted(map(bytes, map(_enc, replayed))) == sorted(map(bytes, map(_enc, alerts)))
    assert by_sport(replayed) == by_sport(expected)


def _enc(d: Drop) -> bytes:
    return d.to_json()


# ---- the policy table, end to end -----------------------------------------------------------

async def _attempts(url: str, transport: str, *, auth: str = "header", key: str = KEY, seconds: float = 1.5,
                    sport: str = "basketball_nba") -> tuple[UpstreamStream, BaseException | None, int]:
    stream = UpstreamStream(config(url, transport, auth=auth, key=key), sport, rng=random.Random(0))
    frames = 0
    error: BaseException | None = None

    async def run() -> None:
        nonlocal frames
        async for _ in stream.frames():
            frames += 1

    try:
        await asyncio.wait_for(run(), seconds)
    except TimeoutError:
        pass
    except UpstreamError as exc:
        error = exc
    return stream, error, frames


STOPS = [
    ("sse", "http=401", AuthError), ("sse", "http=403", AuthError), ("sse", "http=404", UpstreamError),
    ("ws", "close=1008,after=0", AuthError), ("ws", "close=4001,after=0", AuthError),
    ("ws", "close=4003,after=0", AuthError), ("ws", "close=4401,after=0", AuthError),
    ("ws", "http=403", AuthError),
]


@pytest.mark.parametrize(("transport", "fault", "error"), STOPS)
def test_never_retried(serve: Any, transport: str, fault: str, error: type[Exception]) -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None, faults=[fault])
    url = serve(mock)
    stream, exc, _ = asyncio.run(_attempts(url, transport))
    assert isinstance(exc, error), exc
    assert len(mock.connections_log) == 1  # exactly one attempt
    assert isinstance(stream.history[-1][1], Stop)


RETRIES = [
    ("sse", "http=500"), ("sse", "http=503"), ("sse", "http=429,retry_after=0"), ("sse", "cut,after=1"),
    ("sse", "flap"), ("sse", "close=1000,after=3"),
    ("ws", "close=1011,after=3"), ("ws", "close=1012,after=3"), ("ws", "close=1013,after=3"),
    ("ws", "close=4002,after=0"), ("ws", "cut,after=1"), ("ws", "flap"), ("ws", "http=503"),
]


@pytest.mark.parametrize(("transport", "fault"), RETRIES)
def test_retried_with_backoff_and_no_hot_loop(serve: Any, transport: str, fault: str) -> None:
    """A fault on every connection: the client keeps retrying, each after the policy's delay."""
    mock = MockUpstream(load_timeline([DEMO]), speed=None, faults=[fault], retry_after=0)
    url = serve(mock)
    stream, exc, _ = asyncio.run(_attempts(url, transport, seconds=1.5))
    assert exc is None
    n = len(mock.connections_log)
    assert n >= 3, n  # it did retry
    # no hot loop: with a 20 ms base doubling to a 0.6 s cap, 1.5 s holds a handful of attempts
    assert n <= 25, n
    delays = [d.delay_s for _, d in stream.history if isinstance(d, Retry)]
    if "1012" in fault:
        assert min(delays) >= FAST.restart_wait_s


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_flapping_does_not_reset_the_backoff(serve: Any, transport: str) -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None, faults=["flap"])
    url = serve(mock)
    stream, _, _ = asyncio.run(_attempts(url, transport, seconds=1.5))
    attempts = [d.attempt for _, d in stream.history if isinstance(d, Retry)]
    assert attempts == list(range(1, len(attempts) + 1))  # never back to 1


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_a_stall_is_detected_within_two_heartbeats(serve: Any, transport: str) -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None, faults=["stall,after=2,conn=1"])
    url = serve(mock)
    stream, exc, frames = asyncio.run(_attempts(url, transport, seconds=3.5))
    assert exc is None
    first = stream.history[0][0]
    assert first.kind == "silence"
    assert len(mock.connections_log) >= 2 and frames > 2


def test_over_the_cap_waits_for_a_free_slot(serve: Any) -> None:
    """429 (SSE) / 4002 (WS) for a second connection on a cap-1 key; it gets in once the first leaves."""
    keys = KeyTable.single(KEY, "business", 1)
    mock = MockUpstream(load_timeline([DEMO]), speed=None, keys=keys, retry_after=0)
    url = serve(mock)

    async def scenario() -> tuple[UpstreamStream, int]:
        holder = UpstreamStream(config(url, "sse"), "basketball_nba")
        waiter = UpstreamStream(config(url, "ws"), "basketball_nba", rng=random.Random(2))
        held = holder.frames()
        await anext(held)
        got = 0

        async def wait() -> None:
            nonlocal got
            async for _ in waiter.frames():
                got += 1
                return

        task = asyncio.ensure_future(wait())
        await asyncio.sleep(0.5)
        assert got == 0
        await held.aclose()  # frees the slot
        await asyncio.wait_for(task, 5)
        return waiter, got

    waiter, got = asyncio.run(scenario())
    assert got == 1
    assert waiter.history and all(o.code == 4002 for o, _ in waiter.history)


@pytest.mark.parametrize(("tier", "transport", "code"), [
    ("pro", "sse", 403), ("pro", "ws", 4001), (None, "sse", 403), (None, "ws", 1008),
])
def test_key_checks_stop_the_client(serve: Any, tier: str | None, transport: str, code: int) -> None:
    keys = KeyTable.single(KEY, tier or "business")
    mock = MockUpstream(load_timeline([DEMO]), speed=None, keys=keys)
    url = serve(mock)
    _stream, exc, _ = asyncio.run(_attempts(url, transport, key=KEY if tier else "not-a-known-key"))
    assert isinstance(exc, AuthError)
    assert (exc.status or exc.close_code) == code
    assert len(mock.connections_log) == 1


# ---- fan-in ---------------------------------------------------------------------------------

def test_all_follows_the_universe(serve: Any, two_sports: list[Path]) -> None:
    mock = MockUpstream(load_timeline(two_sports), speed=1.0, sports_extra=["soccer_epl"])
    url = serve(mock)
    cfg = config(url, "sse", universe_refresh_s=0.2)

    async def scenario() -> FanIn:
        feed = FanIn(cfg, None)
        frames = feed.frames()

        async def until(cond: Any) -> None:
            while not cond():
                await asyncio.wait_for(anext(frames), 5)

        await until(lambda: feed.stats.open == 3)
        assert sorted(feed.universe) == ["basketball_nba", "icehockey_nhl", "soccer_epl"]
        mock.set_sports(["basketball_nba", "americanfootball_nfl"])
        await until(lambda: set(feed.streams) >= {"americanfootball_nfl"} and "icehockey_nhl" not in feed._tasks)
        await frames.aclose()
        return feed

    feed = asyncio.run(scenario())
    assert feed.stats.streams["icehockey_nhl"].state == "stopped"
    assert feed.stats.universe_refreshes >= 2


def test_one_failing_sport_never_stops_the_others(serve: Any, two_sports: list[Path]) -> None:
    expected, quotes = expected_alerts([two_sports[0]])
    mock = MockUpstream(load_timeline(two_sports), speed=None,
                        faults=["http=403,sport=icehockey_nhl"])
    url = serve(mock)
    feed = FanIn(config(url, "ws"), ["basketball_nba", "icehockey_nhl", "no_such_sport"])
    alerts, _ = asyncio.run(collect(feed, quotes, 20))
    assert by_sport(alerts) == by_sport(expected)
    assert isinstance(feed.failures["icehockey_nhl"], AuthError)
    assert feed.failures["no_such_sport"].status == 404


def test_multi_ends_with_the_error_when_every_sport_fails(serve: Any) -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None, faults=["http=401"])
    url = serve(mock)
    feed = FanIn(config(url, "sse"), ["basketball_nba"])
    with pytest.raises(AuthError):
        asyncio.run(collect(feed, 1, 10))


def test_ws_subscribe_filters_and_survives_reconnects(serve: Any) -> None:
    """The subscription is sent again on every connection; once acknowledged, the stream
    carries only that event's rows, and some of them (the filter is not vacuous)."""
    mock = MockUpstream(load_timeline([DEMO]), speed=200.0, max_gap=0.02, faults=["cut,after=6,conn=1"])
    url = serve(mock)
    event = "nba-2026-05-12-LAL-GSW"

    async def scenario() -> list[list[Any]]:
        stream = UpstreamStream(config(url, "ws"), "basketball_nba", rng=random.Random(3))
        stream.subscription = event
        connections: list[list[Any]] = []
        frames = stream.frames()
        try:
            async with asyncio.timeout(15):  # the whole scenario, not per frame
                while True:
                    env = (await anext(frames)).envelope
                    if env["type"] == "connected":
                        connections.append([])
                    connections[-1].append(env)
                    acked = [c for c in connections if any(e["type"] == "subscribed" for e in c)]
                    if len(connections) >= 2 and acked and any(
                            e["type"] == "odds_update" for e in acked[-1][[e["type"] for e in acked[-1]].index(
                                "subscribed"):]):
                        break
                await stream.subscribe(None)  # unsubscribe: the mock acknowledges it
                while connections[-1][-1]["type"] != "unsubscribed":
                    connections[-1].append((await anext(frames)).envelope)
        finally:
            await frames.aclose()
        return connections

    connections = asyncio.run(scenario())
    assert len(connections) >= 2  # the cut made a second connection
    matched = 0
    for conn in connections:
        types = [e["type"] for e in conn]
        if "subscribed" not in types:
            continue
        after_ack = conn[types.index("subscribed") + 1:]
        for env in after_ack:
            if env["type"] == "odds_update":
                assert {r["event_id"] for r in env["data"]} == {event}
                matched += len(env["data"])
    assert matched > 0
    assert any(e["type"] == "subscribed" for e in connections[-1])  # re-sent after the reconnect
    assert connections[-1][-1]["type"] == "unsubscribed"


def test_sse_refuses_subscribe() -> None:
    stream = UpstreamStream(config("http://127.0.0.1:9", "sse"), "basketball_nba")
    with pytest.raises(Exception, match="SSE filters are set in the URL"):
        asyncio.run(stream.subscribe("x"))


def test_query_filters_pass_through(serve: Any) -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None)
    url = serve(mock)
    cfg = config(url, "sse", filters=StreamQuery.build(bookmakers="pinnacle", kinds="game"))

    async def scenario() -> list[Any]:
        stream = UpstreamStream(cfg, "basketball_nba")
        out = []
        frames = stream.frames()
        try:
            while len(out) < 3:
                out.append((await asyncio.wait_for(anext(frames), 5)).envelope)
        finally:
            await frames.aclose()
        return out

    connected = asyncio.run(scenario())[0]
    assert connected["type"] == "connected"
    assert connected["filters"]["bookmakers"] == ["pinnacle"] and connected["filters"]["kinds"] == ["game"]


def test_every_query_filter_reaches_the_upstream(serve: Any) -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None)
    url = serve(mock)
    filters = StreamQuery.build(event_id="nba-2026-05-12-LAL-GSW", bookmakers="pinnacle,fanduel",
                                  markets="h2h", kinds="game", since=1778600000000)

    async def scenario(transport: str) -> dict[str, Any]:
        stream = UpstreamStream(config(url, transport, filters=filters), "basketball_nba")
        frames = stream.frames()
        try:
            return dict((await asyncio.wait_for(anext(frames), 5)).envelope)
        finally:
            await frames.aclose()

    for transport in ("sse", "ws"):
        echoed = asyncio.run(scenario(transport))["filters"]
        assert echoed == {"event_id": "nba-2026-05-12-LAL-GSW", "bookmakers": ["pinnacle", "fanduel"],
                          "markets": ["h2h"], "kinds": ["game"], "since": 1778600000000}, transport


def test_an_error_page_that_echoes_the_key_does_not_leak_it(serve: Any) -> None:
    """Gateways often echo the request in their 403 page; the key must not reach our messages."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"forbidden: {request.url} key={request.headers.get('x-api-key')}", 403)

    app = Starlette(routes=[Route("/v1/sse/odds/{sport}", echo)])
    server = BackgroundServer(app)
    url = server.start()
    try:
        for auth in ("query", "header"):
            stream = UpstreamStream(config(url, "sse", auth=auth, key=CANARY), "basketball_nba")
            _, exc, _ = asyncio.run(_stream_once(stream))
            assert isinstance(exc, AuthError)
            text = "\n".join([str(exc), repr(exc), repr(stream.history), stream.state.error, stream.state.last_outcome])
            assert "forbidden" in text and CANARY not in text
    finally:
        server.stop()


def test_a_bad_sport_key_in_the_universe_is_skipped(serve: Any, two_sports: list[Path]) -> None:
    mock = MockUpstream(load_timeline(two_sports), speed=None, sports_extra=["soccer epl", "a/b"])
    url = serve(mock)

    async def scenario() -> FanIn:
        feed = FanIn(config(url, "sse"), None)
        frames = feed.frames()
        try:
            async with asyncio.timeout(10):
                while feed.stats.open < 2:
                    await anext(frames)
        finally:
            await frames.aclose()
        return feed

    feed = asyncio.run(scenario())
    assert sorted(feed.universe) == ["basketball_nba", "icehockey_nhl"]
    assert set(feed.failures) == {"soccer epl", "a/b"}


# ---- the key never leaks --------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_canary_key_never_appears(serve: Any, transport: str, caplog: pytest.LogCaptureFixture,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    keys = KeyTable.single(CANARY, "business", 1)
    mock = MockUpstream(load_timeline([DEMO]), speed=None, keys=keys,
                        faults=["cut,after=3,conn=1", "http=503,conn=2", "close=4401,after=1,conn=3"])
    url = serve(mock)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for auth in ("query", "header") + (("subprotocol",) if transport == "ws" else ()):
        cfg = config(url, transport, auth=auth, key=CANARY)
        stream = UpstreamStream(cfg, "basketball_nba", on_event=texts.append)
        _, exc, _ = asyncio.run(_stream_once(stream))
        texts += [repr(cfg), str(cfg), repr(stream), repr(exc), str(exc), repr(stream.history), repr(stream.stats)]
        mock.conn_counters.clear()
    out = capsys.readouterr()
    everything = "\n".join([*texts, caplog.text, out.out, out.err])
    assert "basketball_nba" in everything  # the capture did capture
    assert CANARY not in everything


async def _stream_once(stream: UpstreamStream) -> tuple[UpstreamStream, BaseException | None, int]:
    n = 0
    try:
        async def run() -> None:
            nonlocal n
            async for _ in stream.frames():
                n += 1

        await asyncio.wait_for(run(), 3)
    except TimeoutError:
        return stream, None, n
    except UpstreamError as exc:
        return stream, exc, n
    return stream, None, n
