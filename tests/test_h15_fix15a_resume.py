"""``DropClient.last_event_id`` is the cursor of the last event the CALLER took (helper fix15a,
B15A-7): its thread reads ahead into a queue, and a cursor taken from the thread skipped what
was queued. Invariant, against a real server (uvicorn on 127.0.0.1) holding N drops: a caller
that takes k of them and resumes from ``last_event_id`` (with a new sync client) gets exactly
the other N - k, for any k and any queue size.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dropengine import Quote
from dropengine.client import DropClient
from dropengine.client.events import Heartbeat
from dropengine.core.alerts import Drop
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ManualSource

SPORT = "basketball_nba"
N = 12


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    source = ManualSource()
    bg = BackgroundServer(DropServer(source, ServeConfig()).app)
    base = bg.start()
    try:
        for i in range(N + 1):
            source.push([Quote(SPORT, "g1", "pinnacle", "h2h_home", -110 - 10 * i, 1_000 + 1_000 * i)])
        yield base
    finally:
        bg.stop()


PRICES = [-110 - 10 * i for i in range(1, N + 1)]


def _rest(url: str, cursor: str | None) -> list[int]:
    """The drops a sync client resuming from ``cursor`` gets before its first heartbeat."""
    got: list[int] = []
    with DropClient(url, api_key="k", sport=SPORT, heartbeat_s=1, last_event_id=cursor) as c:
        for event in c.events(heartbeats=True):
            if isinstance(event, Heartbeat):
                break
            if isinstance(event, Drop):
                got.append(int(event.new))
    return got


@pytest.mark.parametrize(("k", "queue_size"), [(1, 1024), (5, 2), (N, 1024)])
def test_resuming_from_the_sync_cursor_gets_exactly_the_rest(url: str, k: int, queue_size: int) -> None:
    got: list[int] = []
    with DropClient(url, api_key="k", sport=SPORT, since=0, queue_size=queue_size) as c:
        assert c.last_event_id is None  # nothing taken yet
        for alert in c.alerts():
            got.append(int(alert.new))  # type: ignore[union-attr]
            if len(got) == k:
                break
        cursor = c.last_event_id
    assert cursor is not None
    assert got + _rest(url, cursor) == PRICES


def test_before_anything_is_taken_the_cursor_is_the_one_given(url: str) -> None:
    with DropClient(url, api_key="k", sport=SPORT, last_event_id="e-7") as c:
        assert c.last_event_id == "e-7"
