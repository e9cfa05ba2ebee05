"""Breaking the server-wide sinks' secret handling (helper breaker15a, issue 15: "secrets in
the file being echoed in errors or logs"; ``serve --sink`` logs httpx's request lines at
``--log-level info``). A real webhook sink POSTs to a real loopback receiver; httpx's own INFO
record of the request is what ``serve`` prints. Findings: /tmp/notes/breaker15a.md.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from dropengine.core.alerts import Drop
from dropengine.deliver.http import WebhookSink

PASSWORD = "h00k-pa55word"
ALERT = Drop(sport_key="basketball_nba", event_id="e1", bookmaker="pinnacle", side="h2h_home", kind="game",
             market_key="h2h", prev=-110, new=-130, delta=-20, direction="toward_favorite", last_update=1_000,
             timestamp=1_000, elapsed_ms=0)


async def deliver_once(url_of: str) -> list[bytes]:
    """POST one alert through a WebhookSink at ``url_of.format(port=...)`` to a loopback
    receiver answering 204; the request lines it received."""
    lines: list[bytes] = []

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines.append(head.split(b"\r\n")[0])
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = WebhookSink(url_of.format(port=port))
    try:
        await sink.start()
        assert sink.offer(ALERT)
        await sink.aclose(5.0)
    finally:
        server.close()
    return lines


def test_a_webhook_password_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        lines = asyncio.run(asyncio.wait_for(deliver_once(f"http://hookuser:{PASSWORD}@127.0.0.1:{{port}}/hook"), 15))
    assert lines == [b"POST /hook HTTP/1.1"]  # delivered (the password went as basic auth, not in the path)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("httpx")]
    assert logged, "httpx logged no request line (the test would prove nothing)"
    assert not [m for m in logged if PASSWORD in m], logged


def test_a_webhook_query_token_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """The control (holds today): the query's token is masked in the same record."""
    with caplog.at_level(logging.INFO, logger="httpx"):
        lines = asyncio.run(asyncio.wait_for(deliver_once("http://127.0.0.1:{port}/hook?token=q-t0ken-123"), 15))
    assert lines == [b"POST /hook?token=q-t0ken-123 HTTP/1.1"]
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("httpx")]
    assert logged and not [m for m in logged if "q-t0ken-123" in m], logged
