"""Issue 14: the lean SSE response (dropengine/server/stream.py) writes, byte for byte, what the
sse-starlette response wrote: head, chunking, frames, ids, resets, heartbeats. A real uvicorn
on 127.0.0.1 and raw sockets (so the HTTP/1.1 chunk framing is compared too), one server, the
two responses chosen per connection (``StreamServer.sse_response``)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dropengine import Quote
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.stream import HEADERS

from .test_serve import KEYS, SPORT, ManualSource

KEY = "CANARY-SERVE-KEY-4d2e"
RESPONSES = ("lean", "sse-starlette")


@pytest.fixture
def served() -> Iterator[Callable[..., tuple[str, DropServer, ManualSource, BackgroundServer]]]:
    running: list[BackgroundServer] = []

    def start(config: ServeConfig | None = None) -> tuple[str, DropServer, ManualSource, BackgroundServer]:
        source = ManualSource()
        srv = DropServer(source, config or ServeConfig(keys=KEYS))
        bg = BackgroundServer(srv.app, secrets=KEYS.keys())
        running.append(bg)
        return bg.start(), srv, source, bg

    yield start
    for bg in running:
        bg.stop()


def open_raw(url: str, query: str, *, version: str = "1.1", method: str = "GET",
             headers: str = "") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(f"{method} /v1/odds-drop/all?apiKey={KEY}&{query} HTTP/{version}\r\nHost: x\r\n{headers}\r\n".encode())
    return s


def read_until(s: socket.socket, buf: bytearray, done: Callable[[bytes], bool], timeout: float = 15) -> bytes:
    """Reads into ``buf`` until ``done(buf)`` (or the peer closes); returns what was read."""
    deadline = time.monotonic() + timeout
    while not done(bytes(buf)):
        if time.monotonic() > deadline:
            raise AssertionError(f"not read within {timeout} s; got {bytes(buf)[-400:]!r}")
        s.settimeout(max(0.05, deadline - time.monotonic()))
        part = s.recv(65536)
        if not part:
            break
        buf += part
    return bytes(buf)


def drops(n: int) -> Callable[[bytes], bool]:
    """``read_until``'s condition: ``n`` alerts read."""
    return lambda b: b.count(b'"type":"odds_drop"') >= n


_DATE = re.compile(rb"\r\ndate: [^\r]*", re.IGNORECASE)
_STAMP = re.compile(rb'"timestamp":[0-9]{13}')


def normalized(raw: bytes) -> bytes:
    """The bytes with the wall clock taken out: the ``date`` header and the ``timestamp`` of the
    frames a connection makes itself (connected, reset, heartbeat: 13 digits either way, so the
    chunk sizes stay as they were)."""
    return _STAMP.sub(b'"timestamp":1700000000000', _DATE.sub(b"\r\ndate: -", raw))


def test_head_is_sse_starlettes() -> None:
    """The response head, as sse-starlette built it (names, values, order)."""
    from sse_starlette.sse import EventSourceResponse

    async def nothing() -> Any:
        yield b""

    assert EventSourceResponse(nothing(), ping=0).raw_headers == HEADERS


def test_live_resumed_and_reset_streams_are_byte_identical(served: Any) -> None:
    """Every kind of start (from since, from a cursor, with a malformed cursor: a reset, from
    now) and live alerts after it: the same bytes from both responses, the chunks included."""
    url, srv, src, _ = served()
    src.move("g", [-110, -125, -140])  # alerts 1 and 2
    src.move("h", [-110])  # primes
    src.move("k", [-110])  # primes
    epoch = srv.hub.epoch
    starts = {
        "since": "threshold=1&heartbeat_s=30&since=0",
        "cursor": "threshold=1&heartbeat_s=30",
        "reset": f"threshold=1&heartbeat_s=30&last_event_id={epoch}-x",
        "now": "threshold=20&heartbeat_s=30&types=odds_drop,steam",
    }
    socks: dict[tuple[str, str], socket.socket] = {}
    bufs: dict[tuple[str, str], bytearray] = {}
    for name, query in starts.items():
        for response in RESPONSES:
            srv.sse_response = response
            headers = f"Last-Event-ID: {epoch}-1\r\n" if name == "cursor" else ""
            socks[name, response] = open_raw(url, query, headers=headers)
            bufs[name, response] = bytearray()
            read_until(socks[name, response], bufs[name, response], lambda b: b'"type":"connected"' in b)
    try:
        # alerts 3-5 in one publish (one chunk of three frames), then 6
        src.push([Quote(SPORT, "g", "pinnacle", "h2h_home", -160, src.clock + 1),
                  Quote(SPORT, "h", "pinnacle", "h2h_home", -130, src.clock + 2),
                  Quote(SPORT, "k", "pinnacle", "h2h_home", -130, src.clock + 3)])
        src.clock += 3
        # 5 cents (not for threshold 20), a 3 KB frame: its chunk size is 0xc.. (a hex letter, whatever its digits)
        src.push([Quote(SPORT, "g", "pinnacle", "h2h_home", -165, src.clock + 1, home_team="Team " + "x" * 2900)])
        src.clock += 1
        # since=0: 1-6; from cursor 1: 2-6; reset (from now): 3-6; threshold 20 from now: 3-5
        want = {"since": 6, "cursor": 5, "reset": 4, "now": 3}
        for key, s in socks.items():
            read_until(s, bufs[key], drops(want[key[0]]))
        for name in starts:
            lean, old = (normalized(bytes(bufs[name, r])) for r in RESPONSES)
            assert lean == old, name
            assert lean.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in lean.lower()
            assert name == "now" or re.search(rb"\r\nc[0-9a-f][0-9a-f]\r\nid: ", lean), name  # (the 3 KB frame)
        assert b'"type":"reset"' in bufs["reset", "lean"]
        assert f'id: {epoch}-1\ndata: {{"type":"odds_drop"'.encode() not in bufs["cursor", "lean"]  # it had 1
        assert f'id: {epoch}-2\ndata: {{"type":"odds_drop"'.encode() not in bufs["reset", "lean"]  # from now
    finally:
        for s in socks.values():
            s.close()


def test_heartbeats_are_byte_identical_and_carry_the_newest_id(served: Any) -> None:
    """Idle, a heartbeat carries the position; after an alert, the alert's id."""
    url, srv, src, _ = served()
    src.move("g", [-110, -125])  # alert 1
    socks, bufs = {}, {}
    for response in RESPONSES:
        srv.sse_response = response
        socks[response] = open_raw(url, "threshold=1&heartbeat_s=2")
        bufs[response] = bytearray()
    try:
        for r in RESPONSES:
            read_until(socks[r], bufs[r], lambda b: b.count(b'"type":"heartbeat"') >= 1)
        src.move("g", [-140])  # alert 2, just after a heartbeat: the next one is 2 s away
        for r in RESPONSES:
            read_until(socks[r], bufs[r], lambda b: b.count(b'"type":"heartbeat"') >= 2)
        lean, old = (normalized(bytes(bufs[r])) for r in RESPONSES)
        assert lean == old
        epoch = srv.hub.epoch
        frames = lean.split(b"\r\n\r\n", 1)[1]
        order = [(m.group(1).decode(), m.group(2).decode())
                 for m in re.finditer(rb'id: ([^\n]*)\ndata: \{"type":"([a-z_]+)"', frames)]
        assert order == [(f"{epoch}-1", "heartbeat"), (f"{epoch}-2", "odds_drop"), (f"{epoch}-2", "heartbeat")]
    finally:
        for s in socks.values():
            s.close()


@pytest.mark.parametrize("method", ["HEAD", "GET-1.0"])
def test_head_and_http10_are_byte_identical(served: Any, method: str) -> None:
    """A HEAD answers the head and no stream; an HTTP/1.0 client gets an unchunked body (the
    lean response's general path: no direct chunk writes)."""
    url, srv, src, _ = served()
    src.move("g", [-110, -125])
    verb, version = ("HEAD", "1.1") if method == "HEAD" else ("GET", "1.0")
    socks, bufs = {}, {}
    for response in RESPONSES:
        srv.sse_response = response
        socks[response] = open_raw(url, "threshold=1&heartbeat_s=30&since=0", method=verb, version=version)
        bufs[response] = bytearray()
    try:
        for r in RESPONSES:
            if verb == "HEAD":
                read_until(socks[r], bufs[r], lambda b: b.endswith(b"\r\n\r\n"))
            else:
                read_until(socks[r], bufs[r], lambda b: b'"type":"odds_drop"' in b)
        if verb == "GET":
            src.move("g", [-140])
            for r in RESPONSES:
                read_until(socks[r], bufs[r], lambda b: b.count(b'"type":"odds_drop"') >= 2)
    finally:
        for s in socks.values():
            s.close()
    out = {r: normalized(bytes(bufs[r])) for r in RESPONSES}
    assert out["lean"] == out["sse-starlette"]
    if method == "GET-1.0":
        assert b"transfer-encoding" not in out["lean"].lower()


def test_a_graceful_shutdown_ends_the_lean_body_properly(served: Any) -> None:
    """uvicorn's graceful shutdown reaches the stream at once (the protocol's hook): what is
    pending goes out, then the chunked body ends (``0\\r\\n\\r\\n``) and the socket closes;
    the client resumes elsewhere. (sse-starlette noticed the shutdown only by polling the
    signal handler, which a server in a thread has not got: it was cut at the grace timeout.)"""
    url, srv, _src, bg = served()
    s = open_raw(url, "threshold=1&heartbeat_s=30")
    buf = bytearray()
    try:
        read_until(s, buf, lambda b: b'"type":"connected"' in b)
        bg.stop()
        read_until(s, buf, lambda b: False)  # to the end: the server closes
        assert bytes(buf).endswith(b"\r\n0\r\n\r\n")
        assert not srv.hub.subscribers and srv.status()["connections"] == 0
    finally:
        s.close()
