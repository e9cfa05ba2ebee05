"""``AsyncDropClient`` against hostile and slow servers (helper fix15a: B15A-6, B15A-10).

The servers are real: a raw asyncio HTTP/1.1 server on 127.0.0.1 writing exactly the bytes a
test wants. Invariants: silence (SPEC 8) is counted in ended blocks (an event, or a comment such
as sse-starlette's ping), not bytes; the time the caller spends between events is not silence;
a line longer than ``MAX_LINE_CHARS`` ends the connection; ``aclose()`` ends a running stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import dropengine.live.sse_client as sse_module
from dropengine.client import AsyncDropClient
from dropengine.client.events import Connected, Heartbeat
from dropengine.core.errors import ConfigError
from dropengine.core.retry import RetryPolicy

FAST = RetryPolicy(base_s=0.02, cap_s=0.2, healthy_s=10.0, restart_wait_s=0.05, floor_s=0.001)
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\nconnection: close\r\n\r\n")
Handler = Callable[[asyncio.StreamWriter, int], Awaitable[None]]


def frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


CONNECTED = frame({"type": "connected", "filters": {}, "heartbeat_s": 1, "epoch": "e1", "id": "e1-0", "timestamp": 1})
HEARTBEAT = frame({"type": "heartbeat", "timestamp": 2})


async def serving(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    opened: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            opened.append(len(opened) + 1)
            writer.write(HEAD)
            await handler(writer, len(opened))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", opened


def connections_while(after_connected: bytes, seconds: float, silence_s: float = 0.4) -> tuple[int, list[str]]:
    """Connections a client opens in ``seconds`` (it stops at the second) to a server that sends
    ``connected`` and then ``after_connected`` every 0.1 s."""
    async def answer(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(CONNECTED)
        while True:
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(after_connected)

    async def main() -> tuple[int, list[str]]:
        server, url, opened = await serving(answer)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=silence_s)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    async for _ in client.events(heartbeats=True):
                        if len(opened) >= 2:
                            break
        finally:
            await client.aclose()
            server.close()
        return len(opened), [o.describe() for o, _ in client.history]

    return asyncio.run(main())


@pytest.mark.parametrize("keep_alive", [b": ping\r\n\r\n", b":\n\n", HEARTBEAT])
def test_a_comment_or_heartbeat_block_keeps_the_link_alive(keep_alive: bytes) -> None:
    connections, outcomes = connections_while(keep_alive, 1.2)
    assert connections == 1, outcomes


@pytest.mark.parametrize("trickle", [b"x", b"data: x\n", b": a comment line with no blank line after it\n"])
def test_bytes_or_lines_that_never_end_a_block_are_silence(trickle: bytes) -> None:
    connections, outcomes = connections_while(trickle, 5.0)
    assert connections >= 2 and "no frame for 0.4 s" in outcomes[0], outcomes


def test_the_time_the_caller_spends_between_events_is_not_silence() -> None:
    """Frames already sent wait for a slow caller: its pauses (here 3x silence_s) are not the
    server's silence, so no reconnect and nothing read twice."""
    async def answer(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(CONNECTED + HEARTBEAT * 3)
        await writer.drain()
        await asyncio.sleep(30)

    async def main() -> tuple[int, int, list[str]]:
        server, url, opened = await serving(answer)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=0.2)
        seen = 0
        try:
            async with asyncio.timeout(10):
                async for event in client.events(heartbeats=True):
                    assert isinstance(event, Connected | Heartbeat)
                    seen += 1
                    if seen == 4:
                        break
                    await asyncio.sleep(0.5)  # a slow caller
        finally:
            await client.aclose()
            server.close()
        return len(opened), seen, [o.describe() for o, _ in client.history]

    connections, seen, outcomes = asyncio.run(main())
    assert (connections, seen, outcomes) == (1, 4, [])


def test_a_line_longer_than_the_cap_ends_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_module, "MAX_LINE_CHARS", 10_000)

    async def answer(writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(CONNECTED + b"data: " + b"y" * 4_000)
        for _ in range(10):
            writer.write(b"y" * 4_000)
            await writer.drain()
        await asyncio.sleep(30)

    async def main() -> list[str]:
        server, url, opened = await serving(answer)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=5)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    async for _ in client.events(heartbeats=True):
                        if len(opened) >= 2:
                            break
        finally:
            await client.aclose()
            server.close()
        return [o.describe() for o, _ in client.history]

    outcomes = asyncio.run(main())
    assert outcomes and "a line of more than 10,000 characters" in outcomes[0], outcomes


def test_aclose_while_waiting_to_reconnect_ends_the_stream_and_a_closed_client_stays_closed() -> None:
    """B15A-10: aclose() from another task ends a running events() (here while it backs off
    after 503s), opens nothing more, and a later events() says the client is closed."""
    async def unavailable(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            asked.append(1)
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    asked: list[int] = []
    slow = RetryPolicy(base_s=5.0, cap_s=5.0, healthy_s=10.0, restart_wait_s=5.0, floor_s=5.0)

    async def main() -> tuple[bool, int, int]:
        server = await asyncio.start_server(unavailable, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = AsyncDropClient(url, api_key="k", policy=slow)

        async def read() -> None:
            async for _ in client.events():
                pass

        task = asyncio.create_task(read())
        try:
            async with asyncio.timeout(5):
                while not client.history:  # the first 503 ended: now it waits >= 5 s to retry
                    await asyncio.sleep(0.01)
            await client.aclose()
            done, _ = await asyncio.wait({task}, timeout=2)
            with pytest.raises(ConfigError, match="closed"):
                await anext(client.events())
            return bool(done) and task.exception() is None, len(asked), client.stats.connections
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            server.close()

    ended, requests, connections = asyncio.run(main())
    assert (ended, requests, connections) == (True, 1, 0)
