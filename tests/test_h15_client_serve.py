"""dropengine.client against a real ``dropengine serve`` (uvicorn on loopback).

Alerts come from the product's :class:`~dropengine.server.sources.ManualSource` (the test pushes
quotes; ``push`` returns once the server has ingested them) or a :class:`ReplaySource`. Between
client and server sits :class:`Proxy`, a real TCP forwarder on loopback that the test cuts,
refuses, stalls and re-points at a restarted server: that is how a connection is killed and
alerts are produced while the client is away. Every wait is bounded (``_until``, ``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from dropengine import Quote
from dropengine.client import AsyncDropClient, Connected, DropClient, Reset
from dropengine.core.alerts import ALERT_FIELDS, Drop
from dropengine.core.errors import AuthError, UpstreamError
from dropengine.core.keys import KeyTable
from dropengine.core.retry import RetryPolicy, Stop
from dropengine.io.replay import replay
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ManualSource, ReplaySource

CANARY = "CANARY-CLIENT-KEY-51f0"
KEYS = KeyTable.parse(f"{CANARY} business 10\npro-key-000001 pro 3\n")
SPORT = "basketball_nba"
FAST = RetryPolicy().scaled(0.01)  # SPEC 8's rules, a hundredth of its waits


class Proxy:
    """A TCP forwarder ``127.0.0.1:port -> 127.0.0.1:target`` in a thread of its own.

    ``cut()`` aborts every open connection; ``refuse(True)`` closes new ones at once (the
    server is "down"); ``stall()`` stops forwarding on the open connections (a silent, half-dead
    link); ``target`` may be changed (a restarted server on another port)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.refusing = False
        self.accepted = 0
        self._conns: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, dict[str, bool]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        flags = {"stalled": False}
        self._conns.append((writer, up_writer, flags))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    while flags["stalled"]:
                        await asyncio.sleep(0.05)
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        async def go() -> None:
            for w, uw, _ in self._conns:
                w.transport.abort()
                uw.transport.abort()
            self._conns.clear()
        self._call(go())

    def refuse(self, on: bool) -> None:
        self.refusing = on

    def stall(self) -> None:
        for _, _, flags in self._conns:
            flags["stalled"] = True

    def close(self) -> None:
        self.cut()

        async def go() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:  # the pumps (a stalled one waits for ever)
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._call(go())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class Served:
    """One DropServer on loopback behind a :class:`Proxy`; ``push`` moves h2h_home prices."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.start()
        self.proxy = Proxy(int(self.url.rsplit(":", 1)[1]))
        self.clock = 1_000

    def start(self) -> None:
        self.source = ManualSource()
        self.server = DropServer(self.source, self.config)
        self.bg = BackgroundServer(self.server.app, secrets=KEYS.keys(), log_level="warning")
        self.url = self.bg.start()

    def restart(self) -> None:
        """A clean stop (its --state saved) and a new server process-alike from that state."""
        self.bg.stop()
        self.start()
        self.proxy.target = int(self.url.rsplit(":", 1)[1])

    def move(self, prices: list[int], event: str = "g1", sport: str = SPORT) -> None:
        for p in prices:
            self.clock += 1_000
            self.source.push([Quote(sport, event, "pinnacle", "h2h_home", p, self.clock)])

    def produced(self) -> list[Any]:
        return [e.alert for e in self.server.hub.buffer]

    def close(self) -> None:
        self.proxy.close()
        self.bg.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def make(**config: Any) -> Served:
        s = Served(ServeConfig(keys=KEYS, **config))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """A test written as a coroutine, run in a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(fn)
    def test(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return test


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


class Reader:
    """Iterates a client's events in a task, collecting them."""

    def __init__(self, client: AsyncDropClient, heartbeats: bool = False) -> None:
        self.client = client
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run(heartbeats))

    async def _run(self, heartbeats: bool) -> None:
        try:
            async for ev in self.client.events(heartbeats=heartbeats):
                self.events.append(ev)
        except Exception as exc:
            self.error = exc

    @property
    def alerts(self) -> list[Any]:
        return [e for e in self.events if isinstance(e, Drop)]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.aclose()


@contextlib.asynccontextmanager
async def reading(url: str, **kwargs: Any) -> AsyncIterator[Reader]:
    kwargs.setdefault("sport", SPORT)
    kwargs.setdefault("policy", FAST)
    heartbeats = kwargs.pop("heartbeats", False)
    reader = Reader(AsyncDropClient(url, api_key=kwargs.pop("api_key", CANARY), **kwargs), heartbeats)
    try:
        yield reader
    finally:
        await reader.stop()


async def _push(s: Served, prices: list[int], **kw: Any) -> None:
    await asyncio.to_thread(s.move, prices, **kw)


# ---- typed alerts, effective filters ------------------------------------------------------------------


@run_async
async def test_typed_alerts_and_the_effective_filters(served: Callable[..., Served]) -> None:
    s = served()
    lines: list[str] = []
    async with asyncio.timeout(20), reading(s.proxy.url, threshold=15, bookmakers=["pinnacle"],
                                            types="odds_drop,line_move", on_event=lines.append) as r:
        await _until(lambda: len(s.server.hub.subscribers) == 1)
        await _push(s, [-110, -120, -140, -100])  # 10 (filtered by 15), 20 and 40 cents
        await _until(lambda: len(r.alerts) == 2)
        assert isinstance(r.events[0], Connected)
        f = r.events[0].filters
        assert (f.threshold, f.bookmakers, f.sports) == (15, ("pinnacle",), (SPORT,))
        assert f.types == ("odds_drop", "line_move")
        assert r.client.connected == r.events[0]
        assert r.alerts == [a for a in s.produced() if abs(a.delta) >= 15]  # typed values, equal to the server's
        assert [(a.prev, a.new) for a in r.alerts] == [(-120, -140), (-140, -100)]
        assert r.client.last_event_id == f"{s.server.hub.epoch}-3"
    assert lines and not any(CANARY in line for line in lines)


@run_async
async def test_multi_and_all_routes(served: Callable[..., Served]) -> None:
    s = served()
    async with asyncio.timeout(20), reading(s.proxy.url, sport=[SPORT, "soccer_epl"]) as multi, \
            reading(s.proxy.url, sport=None) as every, reading(s.proxy.url, sport="soccer_epl") as one:
        await _until(lambda: len(s.server.hub.subscribers) == 3)
        await _push(s, [-110, -120], sport=SPORT)
        await _push(s, [-110, -120], event="e2", sport="soccer_epl")
        await _push(s, [-110, -120], event="e3", sport="tennis_atp")
        await _until(lambda: len(every.alerts) == 3 and len(multi.alerts) == 2 and len(one.alerts) == 1)
        assert [a.sport_key for a in multi.alerts] == [SPORT, "soccer_epl"]
        assert [a.sport_key for a in every.alerts] == [SPORT, "soccer_epl", "tennis_atp"]


# ---- resume -------------------------------------------------------------------------------------------


@run_async
async def test_a_killed_connection_resumes_with_last_event_id_no_gap_no_duplicate(
        served: Callable[..., Served]) -> None:
    s = served()
    async with asyncio.timeout(20), reading(s.proxy.url) as r:
        await _until(lambda: len(s.server.hub.subscribers) == 1)
        await _push(s, [-110, -120, -130, -140])
        await _until(lambda: len(r.alerts) == 3)
        s.proxy.refuse(True)
        s.proxy.cut()  # killed mid-stream; reconnects are refused meanwhile (retried by the policy)
        await _until(lambda: not s.server.hub.subscribers and r.client.stats.reconnects >= 2)
        await _push(s, [-150, -160, -170])  # produced while the client is away
        s.proxy.refuse(False)
        await _until(lambda: len(r.alerts) == 6)
        await _push(s, [-180])  # and live again
        await _until(lambda: len(r.alerts) == 7)
        assert r.alerts == s.produced()  # every alert once, in order
        assert s.server.hub.counters.resumed == 1 and not r.client.resets
        assert [type(e).__name__ for e in r.events].count("Connected") == 2
        assert all(o.kind == "network" for o, _ in r.client.history)


@run_async
async def test_a_restarted_server_resumes_the_stream_from_its_state(served: Callable[..., Served],
                                                                    tmp_path: Path) -> None:
    s = served(state_path=tmp_path / "serve.state", state_fork=False)
    async with asyncio.timeout(25), reading(s.proxy.url) as r:
        await _until(lambda: len(s.server.hub.subscribers) == 1)
        await _push(s, [-110, -120, -130])
        await _until(lambda: len(r.alerts) == 2)
        first = s.produced()
        s.proxy.refuse(True)
        await asyncio.to_thread(s.restart)  # a clean stop saves the ring; the new server loads it
        await _push(s, [-140, -150])  # the restored engine moves on from -130: no re-priming
        s.proxy.refuse(False)
        await _until(lambda: len(r.alerts) == 4)
        assert r.alerts == first + s.produced()[len(first):] and len(s.produced()) == 4
        assert s.server.hub.counters.resumed == 1 and not r.client.resets


@run_async
async def test_a_cursor_the_server_no_longer_holds_gets_a_reset_event(served: Callable[..., Served]) -> None:
    s = served(buffer_size=2)
    resets: list[Reset] = []
    got: list[Any] = []
    client = AsyncDropClient(s.proxy.url, api_key=CANARY, sport=SPORT, policy=FAST)

    async def scanner() -> None:  # what an arb scanner writes: alerts, and a word on a reset
        async for alert in client.alerts(on_reset=resets.append):
            got.append(alert)

    task = asyncio.create_task(scanner())
    try:
        async with asyncio.timeout(20):
            await _until(lambda: len(s.server.hub.subscribers) == 1)
            await _push(s, [-110, -120])
            await _until(lambda: len(got) == 1)
            s.proxy.refuse(True)
            s.proxy.cut()
            await _push(s, [-130, -140, -150, -160])  # the ring (2) no longer holds the cursor's successor
            s.proxy.refuse(False)
            await _until(lambda: len(resets) == 1)
            await _push(s, [-170])
            await _until(lambda: len(got) == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
    assert "no longer buffered" in resets[0].reason and resets[0].id == f"{s.server.hub.epoch}-5"
    assert client.resets == resets and client.stats.resets == 1
    assert [(a.prev, a.new) for a in got] == [(-110, -120), (-160, -170)]  # the gap is told, not hidden


@run_async
async def test_heartbeat_silence_reconnects_and_resumes(served: Callable[..., Served]) -> None:
    s = served()
    # heartbeats every second; a link quiet for 1.5 s is dead (the test's scale of SPEC 8's 2x)
    async with asyncio.timeout(20), reading(s.proxy.url, heartbeat_s=1, silence_s=1.5, heartbeats=True) as r:
        await _until(lambda: len(s.server.hub.subscribers) == 1)
        await _push(s, [-110, -120])
        await _until(lambda: len(r.alerts) == 1)
        s.proxy.stall()  # the link goes quiet: no frame, no close
        await _push(s, [-130, -140])
        await _until(lambda: len(r.alerts) == 3)
        assert r.alerts == s.produced()
        assert [o.kind for o, _ in r.client.history][-1] == "silence"
        assert s.server.hub.counters.resumed >= 1


# ---- what is never retried ------------------------------------------------------------------------------


@run_async
async def test_rejected_keys_are_auth_errors_never_retried(served: Callable[..., Served]) -> None:
    s = served()
    for key, status in (("unknown-key-0001", 403), ("pro-key-000001", 403)):
        client = AsyncDropClient(s.bg.url, api_key=key, sport=SPORT, policy=FAST)
        before = s.server.metrics.rejected_403
        with pytest.raises(AuthError) as exc:
            async with asyncio.timeout(10):
                async for _ in client:
                    pass
        await client.aclose()
        assert exc.value.status == status and key not in str(exc.value)
        assert s.server.metrics.rejected_403 == before + 1  # one request: not retried
        assert len(client.history) == 1 and isinstance(client.history[0][1], Stop)


@run_async
async def test_a_parameter_the_server_refuses_is_an_upstream_error_naming_it(served: Callable[..., Served]) -> None:
    s = served()
    client = AsyncDropClient(s.bg.url, api_key=CANARY, sport=SPORT, threshold=500, policy=FAST, auth="query")
    with pytest.raises(UpstreamError) as exc:
        async with asyncio.timeout(10):
            async for _ in client:
                pass
    await client.aclose()
    assert not isinstance(exc.value, AuthError) and exc.value.status == 400
    assert "threshold: '500' is not an integer in 1..200" in str(exc.value) and CANARY not in str(exc.value)
    assert s.server.metrics.rejected_400 == 1


# ---- the sync client --------------------------------------------------------------------------------------


def test_the_sync_client_in_a_thread(served: Callable[..., Served]) -> None:
    s = served()
    got: list[Any] = []
    done = threading.Event()
    client = DropClient(s.proxy.url, api_key=CANARY, sport=SPORT, threshold=10, policy=FAST)

    def consume() -> None:
        for alert in client.alerts():
            got.append(alert)
            if len(got) == 4:
                break
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    try:
        asyncio.run(_until(lambda: len(s.server.hub.subscribers) == 1))
        s.move([-110, -120, -130])
        asyncio.run(_until(lambda: len(got) == 2))
        s.proxy.cut()  # the background loop reconnects and resumes
        s.move([-140, -150])
        assert done.wait(10)
    finally:
        client.close()
        t.join(10)
    assert got == s.produced() and client.stats.connections == 2
    assert client.connected is not None and client.connected.filters.threshold == 10
    assert not t.is_alive()


def test_the_sync_client_raises_the_stop_in_the_readers_thread(served: Callable[..., Served]) -> None:
    s = served()
    with DropClient(s.bg.url, api_key="unknown-key-0002", sport=SPORT, policy=FAST) as client, \
            pytest.raises(AuthError):
        for _ in client:
            pass


# ---- serve fed from a replay ---------------------------------------------------------------------------------


def _frames() -> list[dict[str, Any]]:
    rows = []
    for i, (home, away) in enumerate([(-110, 100), (-125, 110), (-125, 120), (-140, 125), (-120, 105)]):
        rows.append({"kind": "game", "event_id": "g9", "bookmaker": "pinnacle", "home_team": "A", "away_team": "B",
                     "commence_time": "2026-05-12T22:30:00Z", "last_update": 1_000 + i * 1_000,
                     "home_ml": home, "away_ml": away})
    frames: list[dict[str, Any]] = [{"type": "connected", "sport_key": SPORT}]
    frames.append({"type": "initial_state", "sport_key": SPORT, "data": rows[:1]})
    frames += [{"type": "odds_update", "sport_key": SPORT, "data": [r]} for r in rows[1:]]
    return frames


@run_async
async def test_serve_fed_by_a_replay_gives_the_client_what_replay_gives(tmp_path: Path) -> None:
    path = tmp_path / "nba.ndjson"
    path.write_text("".join(json.dumps(f) + "\n" for f in _frames()))
    server = DropServer(ReplaySource([path], speed=None), ServeConfig(keys=KEYS))
    from dropengine import DropEngine

    expected = list(replay([path], DropEngine(threshold=10)))
    assert len(expected) == 6  # home: 15, 15, 20 cents; away: 10, 10, 20 (125 -> 120 is 5)
    with BackgroundServer(server.app, secrets=KEYS.keys()) as url:
        await _until(lambda: server.source.done)  # type: ignore[attr-defined]
        # every alert is in the ring already: since=0 asks for all of it
        async with asyncio.timeout(10), reading(url, since=0, threshold=10) as r:
            await _until(lambda: len(r.alerts) == len(expected))
    strip = [f for f in ALERT_FIELDS if f not in ("type", "timestamp")]  # the server stamps receipt time
    def fields(alerts: list[Any]) -> list[dict[str, Any]]:
        return [{k: getattr(a, k) for k in strip} for a in alerts]

    assert fields(r.alerts) == fields(expected)
