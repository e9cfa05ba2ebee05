"""Breaker 15c: the webhook sink against hostile REAL receivers on 127.0.0.1.

A raw asyncio HTTP/1.1 server (:class:`RawReceiver`, a thread with its own loop) misbehaves
as a receiver may: it trickles its answer (slowloris), answers 200 with an enormous body,
resets the connection after reading the body, asks for a wait in Retry-After's HTTP-date
form, or never answers. Its findings (/tmp/notes/breaker15c.md) are fixed: these are their
regression tests, with controls that held from the start. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dropengine.deliver import DeadLetterFile, RetrySchedule, WebhookSink

from .test_h15_sinks_rules import drop

SECRET = "whsec_breaker15c"


@dataclass
class Got:
    """One request as the raw receiver read it."""

    head: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawReceiver:
    """An HTTP/1.1 server on 127.0.0.1 whose every connection runs ``handler``
    (reader, writer, receiver); it notes what it read in :attr:`got`."""

    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawReceiver], Awaitable[None]]
    got: list[Got] = field(default_factory=list)
    stopping: bool = False
    #: handler notes (bytes written, how a connection ended)
    notes: dict[str, object] = field(default_factory=dict)
    url: str = ""

    async def read_request(self, reader: asyncio.StreamReader) -> Got | None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        head, *lines = raw.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        got = Got(head, headers, body)
        self.got.append(got)
        return got


@contextlib.contextmanager
def raw_receiver(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawReceiver], Awaitable[None]]
                 ) -> Iterator[RawReceiver]:
    rx = RawReceiver(handler)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    server_box: list[asyncio.Server] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await rx.handler(reader, writer, rx)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # (a cancelled handler ends quietly: the receiver is stopping)
        finally:
            writer.close()

    async def start() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        server_box.append(server)
        rx.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="breaker15c raw receiver", daemon=True)
    thread.start()
    assert ready.wait(10), "the raw receiver did not start"
    try:
        yield rx
    finally:
        rx.stopping = True

        async def stop() -> None:
            server_box[0].close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def response(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Content-Type: application/json",
            *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def until(cond: Callable[[], bool], timeout: float) -> bool:
    """Wait for ``cond`` (polled), at most ``timeout`` seconds; whether it held."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def dead_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# -- B15C-1 (fixed in 19bb1be): an answer that trickles in is timed out ------------------------
async def _trickle_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
    """A status line, then a header that never ends: a byte every 20 ms (each read well inside
    the sink's per-read timeout), so the status is never known."""
    if await rx.read_request(reader) is None:
        return
    writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(400):
        if rx.stopping:
            return
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(0.02)


async def _trickle_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
    """A whole 200 head, then a body of a byte every 20 ms that never completes."""
    if await rx.read_request(reader) is None:
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(400):
        if rx.stopping:
            return
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("trickle", [_trickle_head, _trickle_body], ids=["head", "body"])
def test_a_trickling_answer_ends_within_the_request_timeout(
        tmp_path: Path,
        trickle: Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawReceiver], Awaitable[None]]) -> None:
    dead = tmp_path / "dead.ndjson"
    with raw_receiver(trickle) as rx:
        async def main() -> tuple[WebhookSink, bool]:
            sink = WebhookSink(f"{rx.url}/hook", SECRET, dead_letter=DeadLetterFile(dead),
                               schedule=RetrySchedule(attempts=1, timeout_s=0.5))
            await sink.start()
            sink.offer(drop(1))
            # the documented bound: one attempt of at most timeout_s (0.5 s); 3 s is six times that
            ended = await until(lambda: sink.counters.failed + sink.counters.delivered == 1, 3.0)
            await sink.aclose(0.0)
            return sink, ended

        sink, ended = asyncio.run(main())
    assert ended, "the request outlived its timeout by 6x: the sink's only worker is stuck on it"
    if trickle is _trickle_head:  # no status ever: a timeout, dead-lettered after the one attempt
        assert sink.counters.failed == 1 and "timeout" in str(dead_lines(dead)[0]["reason"])
    else:  # the status decides once the head is in: delivered, the body is not waited for
        assert sink.counters.delivered == 1


# -- B15C-2 (fixed in 19bb1be): a 200 with an enormous body is not read -----------------
def test_a_huge_ok_body_is_not_read() -> None:
    size = 40 * 1024 * 1024
    chunk = b"x" * (1024 * 1024)

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        if await rx.read_request(reader) is None:
            return
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        sent = 0
        try:
            while sent < size and not rx.stopping:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 2.0)  # a client that stopped reading: give up
                sent += len(chunk)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            rx.notes["sent"] = sent

    with raw_receiver(huge) as rx:
        async def main() -> WebhookSink:
            sink = WebhookSink(f"{rx.url}/hook", SECRET, schedule=RetrySchedule(attempts=1, timeout_s=5.0))
            await sink.start()
            sink.offer(drop(2))
            await until(lambda: sink.counters.delivered + sink.counters.failed == 1, 10.0)
            await sink.aclose(0.0)
            return sink

        sink = asyncio.run(main())
        assert sink.counters.delivered == 1  # the status said delivered
        assert until_sync(lambda: "sent" in rx.notes, 5.0)
    # the socket buffers of loopback hold a few MiB; a sink that stops at the headers lets far less through
    assert int(rx.notes["sent"]) < 16 * 1024 * 1024  # type: ignore[call-overload]


def until_sync(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- control: a receiver that takes the body, then resets ------------------------------------
def test_a_reset_after_the_body_is_retried_once_under_the_same_delivery_id() -> None:
    async def reset_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        while True:
            got = await rx.read_request(reader)
            if got is None:
                return
            if len(rx.got) == 1:  # processed, then the connection dies before the answer
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            writer.write(response("200 OK", b"{}"))
            await writer.drain()

    with raw_receiver(reset_first) as rx:
        async def main() -> WebhookSink:
            sink = WebhookSink(f"{rx.url}/hook", SECRET,
                               schedule=RetrySchedule(attempts=3, base_s=0.01, cap_s=0.01, timeout_s=2.0))
            await sink.start()
            sink.offer(drop(3))
            await sink.aclose(5.0)
            return sink

        sink = asyncio.run(main())
    ids = [g.headers["x-dropengine-delivery"] for g in rx.got]
    assert len(ids) == 2 and len(set(ids)) == 1  # the documented retry duplicate, droppable by id
    assert [g.headers["x-dropengine-attempt"] for g in rx.got] == ["1", "2"]
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.retried, c.requests) == (1, 1, 0, 1, 2)


# -- control: a redirect to another host is not followed (the signature and body stay home) ---
def test_a_redirect_elsewhere_is_not_followed_and_is_dead_lettered(tmp_path: Path) -> None:
    async def thief(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        if await rx.read_request(reader) is not None:
            writer.write(response("200 OK", b"{}"))
            await writer.drain()

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(thief) as elsewhere:
        async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
            if await rx.read_request(reader) is not None:
                writer.write(response("307 Temporary Redirect", b"", {"Location": f"{elsewhere.url}/steal"}))
                await writer.drain()

        with raw_receiver(redirect) as rx:
            async def main() -> WebhookSink:
                sink = WebhookSink(f"{rx.url}/hook", SECRET, dead_letter=DeadLetterFile(dead),
                                   schedule=RetrySchedule(attempts=3, base_s=0.01, cap_s=0.01, timeout_s=2.0))
                await sink.start()
                sink.offer(drop(4))
                await sink.aclose(5.0)
                return sink

            sink = asyncio.run(main())
    assert len(rx.got) == 1 and elsewhere.got == []
    assert [x["reason"] for x in dead_lines(dead)] == ["rejected: HTTP 307 (not retried)"]
    assert sink.counters.failed == 1


# -- B15C-3 (fixed in d4dd01d, 19bb1be): Retry-After as an HTTP date, and a 503's, are honoured --
def test_a_retry_after_http_date_is_waited_for(tmp_path: Path) -> None:
    until_s = math.ceil(time.time()) + 2  # HTTP dates have whole seconds

    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        while (await rx.read_request(reader)) is not None:
            if time.time() < until_s:
                writer.write(response("429 Too Many Requests", b'{"error": "slow down"}',
                                      {"Retry-After": email.utils.formatdate(until_s, usegmt=True)}))
            else:
                writer.write(response("200 OK", b"{}"))
            await writer.drain()

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(limited) as rx:
        async def main() -> WebhookSink:
            sink = WebhookSink(f"{rx.url}/hook", SECRET, dead_letter=DeadLetterFile(dead),
                               schedule=RetrySchedule(attempts=4, base_s=0.01, cap_s=0.02, retry_after_cap_s=5.0,
                                                      timeout_s=2.0))
            await sink.start()
            sink.offer(drop(5))
            await sink.aclose(8.0)
            return sink

        sink = asyncio.run(main())
    assert dead_lines(dead) == []
    assert sink.counters.delivered == 1
    assert len(rx.got) <= 3  # the 429, the retry after the date (one more if the clocks straddle a second)


# -- B15C-4 (fixed in 049c21b): an interrupted drain still accounts for the queue --
def test_a_cancelled_drain_still_accounts_for_every_alert(tmp_path: Path) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        if await rx.read_request(reader) is None:
            return
        while not rx.stopping:
            await asyncio.sleep(0.02)

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(hang) as rx:
        async def main() -> WebhookSink:
            sink = WebhookSink(f"{rx.url}/hook", SECRET, dead_letter=DeadLetterFile(dead),
                               schedule=RetrySchedule(attempts=2, timeout_s=30.0))
            await sink.start()
            for i in range(5):
                sink.offer(drop(i))
            await until(lambda: len(rx.got) == 1, 5.0)
            closing = asyncio.create_task(sink.aclose(10.0))  # the first Ctrl-C: drain for 10 s
            await asyncio.sleep(0.1)
            closing.cancel()  # the second Ctrl-C
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            await asyncio.sleep(0.2)
            return sink

        sink = asyncio.run(main())
    c = sink.counters
    assert c.offered == c.delivered + c.failed + c.dropped == 5
    assert len(dead_lines(dead)) == 5


def test_a_503_retry_after_is_waited_for(tmp_path: Path) -> None:
    back_at = time.monotonic() + 1.0

    async def maintenance(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        while (await rx.read_request(reader)) is not None:
            if time.monotonic() < back_at:
                writer.write(response("503 Service Unavailable", b"{}", {"Retry-After": "1"}))
            else:
                writer.write(response("200 OK", b"{}"))
            await writer.drain()

    dead = tmp_path / "dead.ndjson"
    with raw_receiver(maintenance) as rx:
        async def main() -> WebhookSink:
            sink = WebhookSink(f"{rx.url}/hook", SECRET, dead_letter=DeadLetterFile(dead),
                               schedule=RetrySchedule(attempts=4, base_s=0.01, cap_s=0.02, retry_after_cap_s=5.0,
                                                      timeout_s=2.0))
            await sink.start()
            sink.offer(drop(6))
            await sink.aclose(8.0)
            return sink

        sink = asyncio.run(main())
    assert dead_lines(dead) == [] and sink.counters.delivered == 1
