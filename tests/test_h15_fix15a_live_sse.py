"""The upstream's SSE connection reads with the client's rules (helper fix15a, review R15-1:
live.sse_client's open_stream/read_events on formats.sse.SSEParser, shared with
dropengine.client). Against a real raw HTTP server on 127.0.0.1: a server trickling a line
that never ends is silence for the upstream too (it was a byte-timer on httpx-sse's events),
and a line longer than the cap ends the connection (httpx-sse held it without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

import dropengine.live.sse_client as sse_module
from dropengine.core.keys import Secret
from dropengine.core.retry import RetryPolicy
from dropengine.live.transport import UpstreamConfig
from dropengine.live.upstream import UpstreamStream

FAST = RetryPolicy(base_s=0.02, cap_s=0.2, healthy_s=10.0, restart_wait_s=0.05, floor_s=0.001)
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
SNAPSHOT = b"data: " + json.dumps({"type": "snapshot", "data": []}).encode() + b"\n\n"


def outcomes_of(after: bytes, every_s: float, until_connections: int = 2, timeout_s: float = 6.0) -> list[str]:
    """How an upstream stream's connections end when the server sends one frame and then
    ``after`` every ``every_s`` seconds (heartbeat 1 s: dead after 2 s without a block)."""
    opened: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            opened.append(1)
            writer.write(HEAD + SNAPSHOT)
            while True:
                await writer.drain()
                await asyncio.sleep(every_s)
                writer.write(after)
        writer.close()

    async def main() -> list[str]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        stream = UpstreamStream(UpstreamConfig(url, Secret("k-123456789"), heartbeat_s=1, policy=FAST),
                                "basketball_nba")
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s), contextlib.aclosing(stream.frames()) as frames:
                    async for _ in frames:
                        if len(opened) >= until_connections:
                            break
        finally:
            server.close()
        return [o.describe() for o, _ in stream.history]

    return asyncio.run(main())


def test_a_trickle_that_never_ends_a_line_is_silence_for_the_upstream() -> None:
    outcomes = outcomes_of(b"x", 0.1)
    assert outcomes and "no frame for 2 s" in outcomes[0], outcomes


def test_ping_comments_keep_the_upstream_open() -> None:
    outcomes = outcomes_of(b": ping\n\n", 0.2, timeout_s=2.5)
    assert outcomes == [], outcomes


def test_a_line_over_the_cap_ends_the_upstream_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_module, "MAX_LINE_CHARS", 10_000)
    outcomes = outcomes_of(b"y" * 4_000, 0.01)
    assert outcomes and "a line of more than 10,000 characters" in outcomes[0], outcomes
