"""fix15c: the webhook sink against hostile real receivers on 127.0.0.1 (breaker15c's raw
HTTP/1.1 server): an attempt is bounded whole by ``timeout_s`` even when the answer's head
itself trickles in (B15C-1), and a 2xx whose body trickles counts by its status (B15C-2: the
body is not read), so the sink's worker is never held by a receiver. Every wait is bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dropengine.deliver import DeadLetterFile, RetrySchedule, WebhookSink

from .test_h15_breaker15c_http import RawReceiver, dead_lines, raw_receiver, until
from .test_h15_sinks_rules import drop

SECRET = "whsec_fix15c"


def _run(rx: RawReceiver, dead: Path) -> tuple[WebhookSink, bool]:
    async def main() -> tuple[WebhookSink, bool]:
        sink = WebhookSink(f"{rx.url}/hook", SECRET, dead_letter=DeadLetterFile(dead),
                           schedule=RetrySchedule(attempts=1, timeout_s=0.5))
        await sink.start()
        sink.offer(drop(1))
        # one attempt of at most timeout_s (0.5 s): 5 s is ten times that, a bound, not a measurement
        ended = await until(lambda: sink.counters.failed + sink.counters.delivered == 1, 5.0)
        await sink.aclose(0.0)
        return sink, ended

    return asyncio.run(main())


def test_an_answer_head_that_trickles_is_a_timeout(tmp_path: Path) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        if await rx.read_request(reader) is None:
            return
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400:  # a byte every 20 ms: each read in time
            if rx.stopping:
                return
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(trickle) as rx:
        sink, ended = _run(rx, dead)
    assert ended, "the attempt outlived its timeout: the sink's only worker is stuck on it"
    assert sink.counters.failed == 1 and sink.counters.delivered == 0
    assert "timeout" in str(dead_lines(dead)[0]["reason"])


def test_a_trickling_ok_body_counts_by_its_status(tmp_path: Path) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        if await rx.read_request(reader) is None:
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(400):
            if rx.stopping:
                return
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.02)

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(trickle) as rx:
        sink, ended = _run(rx, dead)
    assert ended
    # 1000 bytes would take 20 s: the sink counted the 200 within its 0.5 s (or gave up at 0.5 s),
    # either way the worker is free; a whole 200 head is a delivery
    assert sink.counters.delivered == 1 and dead_lines(dead) == []


def test_tls_spoken_to_a_plain_http_port_is_rejected_not_retried(tmp_path: Path) -> None:
    """N4: a certificate or protocol failure cannot get better: one request, dead-lettered."""
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        await reader.read(1024)  # a TLS ClientHello
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(plain) as rx:
        async def main() -> WebhookSink:
            sink = WebhookSink(rx.url.replace("http://", "https://") + "/hook", SECRET,
                               dead_letter=DeadLetterFile(dead),
                               schedule=RetrySchedule(attempts=4, base_s=0.01, cap_s=0.01, timeout_s=5.0))
            await sink.start()
            sink.offer(drop(1))
            await sink.aclose(5.0)
            return sink

        sink = asyncio.run(main())
    c = sink.counters
    assert (c.failed, c.requests, c.retried) == (1, 1, 0)
    assert str(dead_lines(dead)[0]["reason"]).startswith("rejected: TLS error")
