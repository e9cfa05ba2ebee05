"""A resume that needs the alert log while the log cannot be read (``server.busfeed.catch_up``):
never a ``reset`` for a transient failure, never an id behind the client's cursor.

The rule (busfeed's docstring): each look at the log (``info``, each backfill ``read``) is
retried while the client stays, with heartbeats whose id is the position the client already
has, for up to ``wait_s``; if the log still cannot be read, the response ENDS (the client
resumes with its own id, here or elsewhere). Here against an in-memory log whose looks fail
(:class:`BusUnavailable`) a drawn number of times, and once through a real frontend
(uvicorn) over a killed nats-server, where the response must end by itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import Drop
from dropengine.core.filters import AlertFilter
from dropengine.server import busfeed
from dropengine.server.busfeed import FeedCounters, catch_up, needs_log
from dropengine.server.hub import Cursor, Hub

from . import natsutil
from .natsutil import NatsServer

pytest.importorskip("nats")

from dropengine.bus import AlertLog, BusConfig, connect, ensure_streams
from dropengine.bus.connect import BusUnavailable, StreamNotFound
from dropengine.bus.log import LogEntry, LogInfo
from dropengine.server.asgi import BackgroundServer
from dropengine.server.busfeed import BusServer
from dropengine.server.ingest import ServeConfig

nats_server = natsutil.nats_server

EPOCH = "ep"


def drop(i: int) -> Drop:
    return Drop(sport_key="americanfootball_nfl", event_id=f"e{i}", bookmaker="pinnacle", side="h2h_home",
                kind="game", market_key="h2h", prev=-110, new=-130, delta=-20, direction="toward_favorite",
                last_update=1000 + i, timestamp=1000 + i, elapsed_ms=0)


@dataclass(frozen=True)
class _E:
    seq: int
    alert: Drop
    produced_ms: int


@dataclass
class FlakyLog:
    """A dense alert log 1..last whose next ``fails`` looks (info or read) do not answer, or
    answer ``definite`` (the log deleted) when set."""

    last: int
    fails: int = 0
    definite: bool = False
    looks: list[str] = field(default_factory=list)

    def _look(self, what: str) -> None:
        self.looks.append(what)
        if self.definite:
            raise StreamNotFound("no alert log X on test (stream not found)")
        if self.fails > 0:
            self.fails -= 1
            raise BusUnavailable(f"{what} failed on test: TimeoutError: nats: timeout")

    async def info(self) -> LogInfo:
        self._look("info")
        return LogInfo(EPOCH, 1, self.last)

    async def read(self, start: int, stop: int) -> AsyncIterator[_E]:
        self._look("read")
        for s in range(start, min(stop, self.last) + 1):
            await asyncio.sleep(0)
            yield _E(s, drop(s), s)


def frames_of(data: bytes) -> list[tuple[str, int]]:
    """(type, seq of its id) of each SSE event."""
    out = []
    for block in data.split(b"\n\n"):
        if block:
            lines = dict(line.split(b": ", 1) for line in block.split(b"\n"))
            epoch, seq = lines[b"id"].decode().rsplit("-", 1)
            assert epoch == EPOCH
            out.append((json.loads(lines[b"data"])["type"], int(seq)))
    return out


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(busfeed, "_RETRY_FIRST_S", 0.001)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(last=st.integers(4, 12), followed=st.integers(0, 12), cursor=st.integers(0, 12), fails=st.integers(0, 3),
       patient=st.booleans(), chunk=st.integers(1, 4))
def test_a_resume_through_an_unreadable_log_never_resets_or_rewinds(
        quick_retries: None, last: int, followed: int, cursor: int, fails: int, patient: bool, chunk: int) -> None:
    followed, cursor = min(followed, last), min(cursor, last)
    hub = Hub(EPOCH, buffer_size=3, logged=True, max_pending=1000)  # a small ring: old cursors need the log
    hub.publish_logged([(s, drop(s), s) for s in range(1, followed + 1)], now_ms=0)
    if not needs_log(hub, Cursor(EPOCH, cursor)):
        return  # the ring serves it at once (no log look at all): not this test's case
    log, counters = FlakyLog(last, fails), FeedCounters()
    got: list[tuple[str, int]] = []
    result: list[Any] = []

    async def run() -> None:
        async for item in catch_up(hub, AlertFilter(), Cursor(EPOCH, cursor), lambda: None, log, counters,
                                   chunk=chunk, heartbeat_s=0.001, wait_s=30.0 if patient else 0.0):
            if isinstance(item, bytes):
                got.extend(frames_of(item))
            else:
                result.append(item)

    asyncio.run(asyncio.wait_for(run(), 20))
    assert hub.counters.resets == 0  # never a reset: nothing was trimmed
    assert all(seq >= cursor for _, seq in got), got  # never an id behind the client's
    if not result:  # no subscriber: the response ends; the client comes back with its own id
        assert not patient and fails and counters.resumes_ended == 1
        assert not hub.subscribers
        return
    (sub, reason), = result
    assert reason is None and not sub.overflowed
    assert counters.resumes_ended == 0 and (fails == 0 or patient)
    hub.publish_logged([(s, drop(s), s) for s in range(hub.next_seq, last + 1)], now_ms=0)  # following goes on
    got += frames_of(b"".join(e.frame for e in hub.take(sub)))
    assert [s for kind, s in got if kind == "odds_drop"] == list(range(cursor + 1, last + 1))
    assert {kind for kind, _ in got} <= {"heartbeat", "odds_drop"}


def test_a_log_that_is_gone_ends_the_resume_at_once(quick_retries: None) -> None:
    hub = Hub(EPOCH, buffer_size=3, logged=True)
    hub.publish_logged([(s, drop(s), s) for s in range(1, 6)], now_ms=0)
    log, counters = FlakyLog(8, definite=True), FeedCounters()

    async def run() -> list[Any]:
        return [item async for item in catch_up(hub, AlertFilter(), Cursor(EPOCH, 7), lambda: None, log, counters,
                                                heartbeat_s=0.001, wait_s=30.0)]

    items = asyncio.run(asyncio.wait_for(run(), 10))
    # no subscriber (the response ends), only the heartbeats sent while it looked
    assert log.looks == ["info"] and all(isinstance(i, bytes) for i in items) and counters.resumes_ended == 1
    assert not hub.subscribers


@pytest.mark.bus
@pytest.mark.timeout(60)
def test_a_frontend_ends_a_resume_it_cannot_serve_without_a_reset(nats_server: NatsServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real frontend whose log cannot be read (nats-server killed): a client resuming ahead of
    it gets heartbeats with its own id, then the response ends (no reset) after ``resume_wait_s``."""
    config = BusConfig((nats_server.url,), prefix="rend", request_timeout_s=0.3)

    async def publish() -> None:
        async with await connect(config, name="test-publisher") as bus:
            await ensure_streams(bus)
            log = AlertLog(bus, partitions=1)
            for i in range(6):
                await log.publish(0, drop(i), qseq=i + 1, k=0, produced_ms=int(time.time() * 1000), expect_last=None)

    asyncio.run(asyncio.wait_for(publish(), 20))
    real_follow = AlertLog.follow

    async def lagging(self: AlertLog, start_seq: int) -> AsyncIterator[LogEntry]:
        async for e in real_follow(self, start_seq):
            if e.seq > 3:  # a frontend that has not caught up yet
                await asyncio.Event().wait()
            yield e

    monkeypatch.setattr(AlertLog, "follow", lagging)
    srv = BusServer(config, ServeConfig(), info_every_s=0.2, resume_wait_s=1.5)
    frames: list[tuple[str, str]] = []
    end: BaseException | None = None
    with BackgroundServer(srv.app) as url:
        natsutil.wait_until(lambda: srv.hub.next_seq == 4, 10, "the frontend at seq 3")
        epoch = srv.hub.epoch
        nats_server.kill()
        try:
            with httpx.stream("GET", url + "/v1/odds-drop/all", params={"apiKey": "k", "heartbeat_s": 1},
                              headers={"Last-Event-ID": f"{epoch}-5"}, timeout=httpx.Timeout(5, read=8)) as r:
                assert r.status_code == 200, r.read()
                sse_id = ""
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        sse_id = line[4:]
                    elif line.startswith("data: "):
                        frames.append((json.loads(line[6:])["type"], sse_id))
        except httpx.HTTPError as exc:
            end = exc
        finally:
            nats_server.restart()
    # ended by the server, cleanly (the body ends properly; not its slow-client cut), not by waiting
    assert end is None, (end, frames)
    assert srv.metrics.slow_clients_cut == 0
    assert srv.feed is not None and srv.feed.counters.resumes_ended == 1, frames
    assert [k for k, _ in frames if k == "reset"] == [], frames
    assert [i for k, i in frames if k == "heartbeat"] and all(i == f"{epoch}-5" for k, i in frames if i), frames
