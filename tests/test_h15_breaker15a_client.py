"""Breaking ``dropengine.client`` with hostile servers (helper breaker15a, issue 15 "Clients").

The servers are real: a raw asyncio HTTP/1.1 server on 127.0.0.1 that writes exactly the bytes
a test wants (a trickle that never completes an event, a giant error body), read by the real
:class:`~dropengine.client.AsyncDropClient` over TCP. Findings: /tmp/notes/breaker15a.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from dropengine.client import AsyncDropClient
from dropengine.core.retry import RetryPolicy

FAST = RetryPolicy(base_s=0.02, cap_s=0.2, healthy_s=10.0, restart_wait_s=0.05, floor_s=0.001)
HEADERS = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
           b"cache-control: no-cache\r\nconnection: close\r\n\r\n")


def frame(obj: dict[str, Any], sse_id: str | None = None) -> bytes:
    return (f"id: {sse_id}\n" if sse_id else "").encode() + b"data: " + json.dumps(obj).encode() + b"\n\n"


def connected(heartbeat_s: int = 1) -> bytes:
    return frame({"type": "connected", "filters": {}, "heartbeat_s": heartbeat_s, "epoch": "e1", "id": "e1-0",
                  "timestamp": 1})


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def serving(handler: Handler) -> tuple[asyncio.Server, str, list[bytes]]:
    """A loopback HTTP server: each connection's request head is read (and kept), then
    ``handler`` writes the answer (it gets the connection's number). Returns the server, its
    URL and the request heads so far."""
    seen: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            await handler(reader, writer, len(seen))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen


async def read_until(client: AsyncDropClient, done: Callable[[], bool], timeout_s: float) -> None:
    """Iterate the client until ``done()`` or ``timeout_s`` (whichever first)."""
    async def go() -> None:
        async for _ in client.events(heartbeats=True):
            if done():
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(go(), timeout_s)


# ---- B15A-6 (fixed in c9645ec): a trickle that never completed a frame was never "silent" ----

def _silence_reconnects(trickle: bool) -> tuple[int, list[str]]:
    """How many connections a client makes in 2 s to a server that sends ``connected`` and then
    either nothing, or a byte every 0.1 s of an event it never ends (silence_s = 0.5)."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(HEADERS + connected(heartbeat_s=1))
        await writer.drain()
        while True:
            if trickle:
                writer.write(b"x")
                await writer.drain()
            await asyncio.sleep(0.1)

    async def main() -> tuple[int, list[str]]:
        server, url, seen = await serving(answer)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=0.5)
        try:
            await read_until(client, lambda: len(seen) >= 2, timeout_s=2.0)
        finally:
            await client.aclose()
            server.close()
        return len(seen), [o.describe() for o, _ in client.history]

    return asyncio.run(main())


def test_silence_after_connected_reconnects() -> None:
    """The control of the test below (holds today): nothing after ``connected`` for silence_s:
    a reconnect."""
    connections, outcomes = _silence_reconnects(trickle=False)
    assert connections >= 2, outcomes


def test_bytes_that_never_make_a_frame_are_silence() -> None:
    connections, outcomes = _silence_reconnects(trickle=True)
    assert connections >= 2, outcomes


# ---- invariants checked on the way ----------------------------------------------------------------

def test_an_error_body_of_any_size_ends_in_a_short_message() -> None:
    """A hostile 500 with a 4 MB body: the client retries (5xx) and what it keeps is short."""
    async def huge_500(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        body = b"<html>" + b"A" * (4 << 20) + b"</html>"
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        await writer.drain()

    async def main() -> list[str]:
        server, url, _seen = await serving(huge_500)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=1.0)
        try:
            await read_until(client, lambda: True, timeout_s=1.0)  # 500s only: no event ends it
        finally:
            await client.aclose()
            server.close()
        return [o.describe() for o, _ in client.history]

    outcomes = asyncio.run(main())
    assert outcomes and all("500" in o and len(o) < 600 for o in outcomes), outcomes


def test_a_server_that_never_sends_connected_still_hands_on_alerts_and_resumes() -> None:
    """A vendor-like server that sends one alert per connection and no ``connected`` frame: each
    is handed on, and every reconnect carries the last id seen as Last-Event-ID (no gap)."""
    drop = {"type": "odds_drop", "sport_key": "basketball_nba", "event_id": "e1", "bookmaker": "pinnacle",
            "side": "h2h_home", "kind": "game", "market_key": "h2h", "prev": -110, "new": -130, "delta": 20,
            "direction": "toward_favorite", "last_update": 2_000, "timestamp": 2_001, "elapsed_ms": 1_000}

    async def no_connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(HEADERS + frame({**drop, "last_update": 2_000 + n}, sse_id=f"e1-{n}"))
        await writer.drain()

    async def main() -> tuple[int, list[bytes]]:
        server, url, seen = await serving(no_connected)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=1.0)
        try:
            await read_until(client, lambda: client.stats.alerts >= 3, timeout_s=5.0)
        finally:
            await client.aclose()
            server.close()
        return client.stats.alerts, seen

    alerts, heads = asyncio.run(main())
    assert alerts >= 3
    for n, head in enumerate(heads[1:3], start=1):
        assert f"last-event-id: e1-{n}\r\n".encode() in head.lower(), head


# ---- B15A-10 (fixed in 3c5e86d): aclose() mid-stream did not stop the client: it reconnected ----

def test_aclose_mid_stream_ends_the_iteration() -> None:
    from dropengine.server.app import DropServer, ServeConfig
    from dropengine.server.asgi import BackgroundServer
    from dropengine.server.sources import ManualSource

    bg = BackgroundServer(DropServer(ManualSource(), ServeConfig()).app)
    url = bg.start()

    async def main() -> tuple[bool, int]:
        client = AsyncDropClient(url, api_key="k", heartbeat_s=1, policy=FAST)
        first = asyncio.Event()

        async def reader() -> None:
            async for _ in client.events(heartbeats=True):
                first.set()

        task = asyncio.create_task(reader())
        try:
            await asyncio.wait_for(first.wait(), 5)  # the connected frame: streaming
            await client.aclose()
            done, _ = await asyncio.wait({task}, timeout=1.5)
            return bool(done), client.stats.connections
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.aclose()

    try:
        ended, connections = asyncio.run(main())
    finally:
        bg.stop()
    assert ended and connections == 1, (ended, connections)


# ---- B15A-15 (fixed in 411b311): a resume by since repeated a burst larger than 256 at one timestamp ----

def test_a_burst_at_one_timestamp_is_not_repeated_after_a_resume_by_since() -> None:
    ts = 1_778_600_000_000
    burst = b"".join(frame({"type": "odds_drop", "sport_key": "basketball_nba", "event_id": f"e{i}",
                            "bookmaker": "pinnacle", "side": "h2h_home", "kind": "game", "market_key": "h2h",
                            "prev": -110, "new": -130, "delta": -20, "direction": "toward_favorite",
                            "last_update": ts, "timestamp": ts, "elapsed_ms": 0}) for i in range(300))

    async def vendor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        # no ids: the first connection sends the burst and ends; a resume (since=ts-1) gets it again, then quiet
        writer.write(HEADERS + burst)
        await writer.drain()
        if n >= 2:
            writer.write(frame({"type": "heartbeat", "timestamp": ts + 1}))  # (the reader looks up after it)
            await writer.drain()
            await asyncio.sleep(30)

    async def main() -> tuple[int, int, list[bytes]]:
        server, url, seen = await serving(vendor)
        client = AsyncDropClient(url, api_key="k", sport="basketball_nba", policy=FAST, silence_s=5.0)
        try:
            await read_until(client, lambda: client.stats.alerts >= 600 or client.stats.repeats >= 300, timeout_s=2.0)
        finally:
            await client.aclose()
            server.close()
        return client.stats.alerts, client.stats.repeats, seen

    alerts, repeats, heads = asyncio.run(main())
    assert len(heads) >= 2 and f"since={ts - 1}".encode() in heads[1], heads[:2]  # resumed by since
    assert alerts == 300, (alerts, repeats)


# ---- B15A-16 (fixed in c83b23d): an event id with surrounding blanks wedged the client ----

def test_an_id_with_a_trailing_blank_does_not_stop_reconnects() -> None:
    drop = {"type": "odds_drop", "sport_key": "basketball_nba", "event_id": "e1", "bookmaker": "pinnacle",
            "side": "h2h_home", "kind": "game", "market_key": "h2h", "prev": -110, "new": -130, "delta": -20,
            "direction": "toward_favorite", "last_update": 2_000, "timestamp": 2_001, "elapsed_ms": 0}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(HEADERS + connected() + b"id: e1-1 \n" + frame(drop))  # then the stream ends
        await writer.drain()

    async def main() -> tuple[int, list[str]]:
        server, url, seen = await serving(answer)
        client = AsyncDropClient(url, api_key="k", policy=FAST, silence_s=1.0)
        try:
            await read_until(client, lambda: len(seen) >= 2, timeout_s=1.5)
        finally:
            await client.aclose()
            server.close()
        return len(seen), [o.describe() for o, _ in client.history][-2:]

    connections, outcomes = asyncio.run(main())
    assert connections >= 2, outcomes  # the reconnect reached the server (with a usable cursor, or none)
