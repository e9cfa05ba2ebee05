"""Breaking the clients' resume cursor against a real ``DropServer`` (uvicorn on 127.0.0.1)
(helper breaker15a, issue 15 "Clients"). Findings: /tmp/notes/breaker15a.md.

The invariant: ``client.last_event_id`` is documented as "the id of the last event handed on
(persist it to resume later)". A caller that has taken ``k`` alerts of a backlog of ``n``, stops,
and resumes from that id must get exactly the other ``n - k``: no gap, no repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from dropengine import Quote
from dropengine.client import AsyncDropClient, DropClient
from dropengine.client.events import Heartbeat
from dropengine.core.alerts import Drop
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ManualSource

SPORT = "basketball_nba"
N = 20  # alerts in the server's ring
K = 3  # alerts the first reader takes


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A real server whose ring holds N price drops (one event, one book, -110 down by 15 cents a step)."""
    source = ManualSource()
    srv = DropServer(source, ServeConfig())
    bg = BackgroundServer(srv.app)
    base = bg.start()
    try:
        for i in range(N + 1):
            source.push([Quote(SPORT, "g1", "pinnacle", "h2h_home", -110 - 15 * i, 1_000 + 1_000 * i)])
        yield base
    finally:
        bg.stop()


def rest_after(base: str, cursor: str | None) -> list[int]:
    """The alerts' new prices a client resuming from ``cursor`` gets before its first heartbeat."""
    async def go() -> list[int]:
        got: list[int] = []
        async with AsyncDropClient(base, api_key="k", sport=SPORT, heartbeat_s=1, last_event_id=cursor) as c:
            async for event in c.events(heartbeats=True):
                if isinstance(event, Heartbeat):
                    break
                if isinstance(event, Drop):
                    got.append(int(event.new))
        return got

    return asyncio.run(asyncio.wait_for(go(), 10))


def every_price() -> list[int]:
    return [-110 - 15 * i for i in range(1, N + 1)]


def test_the_async_client_resumes_where_its_caller_stopped(url: str) -> None:
    """Control (holds today): AsyncDropClient's cursor is the k-th alert's."""
    async def take() -> tuple[list[int], str | None]:
        got: list[int] = []
        async with AsyncDropClient(url, api_key="k", sport=SPORT, since=0) as c:
            async for alert in c.alerts():
                got.append(int(alert.new))  # type: ignore[union-attr]
                if len(got) == K:
                    break
            return got, c.last_event_id

    first, cursor = asyncio.run(asyncio.wait_for(take(), 10))
    assert first + rest_after(url, cursor) == every_price()


def test_the_sync_client_resumes_where_its_caller_stopped(url: str) -> None:
    got: list[int] = []
    with DropClient(url, api_key="k", sport=SPORT, since=0) as c:
        for alert in c.alerts():
            got.append(int(alert.new))  # type: ignore[union-attr]
            if len(got) == K:
                break
        cursor = c.last_event_id
    assert got + rest_after(url, cursor) == every_price()
