"""The contract between the upstream loop and a transport, without a network: a connector
gets the query (no key) and an ``on_open`` callback, and reaches the stream through nothing
else. A WebSocket-like connector hands its sender over on every connection; the stream sends
its subscription there, and forgets the sender when the connection ends."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator
from typing import Any

from dropengine.core.keys import Secret
from dropengine.core.retry import Outcome
from dropengine.formats.query import StreamQuery
from dropengine.live import UpstreamStream
from dropengine.live.transport import Connector, Ended, OnOpen, UpstreamConfig

KEY = "KEY-not-in-the-query-1234"


def fake_ws(log: list[Any], connections: int) -> Connector:
    """Two frames per connection, then a retried close (1012); then a refused key."""
    count = 0

    async def connect(config: UpstreamConfig, sport: str, params: dict[str, str], dead_after_s: float,
                      on_open: OnOpen) -> AsyncGenerator[str, None]:
        nonlocal count
        count += 1
        n = count
        log.append(("params", n, dict(params)))
        if n > connections:
            raise Ended(Outcome.close(1008, "invalid API key"))

        async def send(text: str) -> None:
            log.append(("sent", n, text))

        await on_open(send)
        yield '{"type":"connected"}'
        yield '{"type":"heartbeat"}'
        raise Ended(Outcome.close(1012, "restart"))

    return connect


async def _no_sleep(_: float) -> None:
    return None


def run_stream(subscription: str | None, connections: int = 2) -> tuple[list[Any], UpstreamStream]:
    log: list[Any] = []
    cfg = UpstreamConfig("http://127.0.0.1:9", Secret(KEY), "ws", filters=StreamQuery.build(kinds="game"),
                         heartbeat_s=3)
    stream = UpstreamStream(cfg, "basketball_nba", rng=random.Random(1), sleep=_no_sleep)
    stream._connector = lambda: fake_ws(log, connections)  # type: ignore[method-assign]
    stream.subscription = subscription

    async def scenario() -> None:
        frames = stream.frames()
        try:
            async for _ in frames:
                log.append(("frame", stream._send is not None))
        except Exception as exc:  # the refused key ends it
            log.append(("stopped", type(exc).__name__))
        assert stream._send is None  # the connection is gone: no sender is kept

    asyncio.run(scenario())
    return log, stream


def test_the_subscription_is_sent_on_every_connection_through_on_open() -> None:
    log, _ = run_stream("E1")
    sent = [e for e in log if e[0] == "sent"]
    assert sent == [("sent", 1, '{"type":"subscribe","event_id":"E1"}'),
                    ("sent", 2, '{"type":"subscribe","event_id":"E1"}')]
    assert ("frame", True) in log and log[-1] == ("stopped", "AuthError")


def test_without_a_subscription_nothing_is_sent() -> None:
    log, _ = run_stream(None)
    assert not [e for e in log if e[0] == "sent"]


def test_the_connector_gets_the_query_and_heartbeat_but_never_the_key() -> None:
    log, _ = run_stream(None)
    params = [e[2] for e in log if e[0] == "params"]
    assert params[0] == {"kinds": "game", "heartbeat_s": "3"}
    assert all(KEY not in str(p) for p in params)


def test_subscribe_while_open_sends_at_once() -> None:
    log: list[Any] = []
    cfg = UpstreamConfig("http://127.0.0.1:9", Secret(KEY), "ws")
    stream = UpstreamStream(cfg, "basketball_nba", sleep=_no_sleep)
    stream._connector = lambda: fake_ws(log, 1)  # type: ignore[method-assign]

    async def scenario() -> None:
        frames = stream.frames()
        await anext(frames)
        await stream.subscribe("E9")
        await stream.subscribe(None)
        await frames.aclose()
        await stream.subscribe("E10")  # closed: recorded for the next connection, not sent

    asyncio.run(scenario())
    assert [e[2] for e in log if e[0] == "sent"] == ['{"type":"subscribe","event_id":"E9"}', '{"type":"unsubscribe"}']
    assert stream.subscription == "E10" and stream._send is None
