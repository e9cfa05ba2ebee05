"""Issue 14 breaker (breaker14b): the lean SSE response (dropengine/server/stream.py) against
sse-starlette's (``StreamServer.sse_response``): same frames, delivered as promptly; a real
uvicorn on 127.0.0.1 and raw sockets. No timing is asserted: a read waits (bounded) for frames
the old response sends at once, well inside the heartbeat interval that would otherwise mask a
stuck stream."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dropengine import Quote
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer

from .test_serve import KEYS, SPORT, ManualSource

KEY = "CANARY-SERVE-KEY-4d2e"


@pytest.fixture
def served() -> Iterator[Callable[..., tuple[str, DropServer, ManualSource]]]:
    running: list[BackgroundServer] = []

    def start(response: str, config: ServeConfig | None = None) -> tuple[str, DropServer, ManualSource]:
        source = ManualSource()
        srv = DropServer(source, config or ServeConfig(keys=KEYS))
        srv.sse_response = response
        bg = BackgroundServer(srv.app, secrets=KEYS.keys())
        running.append(bg)
        return bg.start(), srv, source

    yield start
    for bg in running:
        bg.stop()


def open_raw(url: str, query: str, *, version: str = "1.1", headers: str = "") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(f"GET /v1/odds-drop/all?apiKey={KEY}&{query} HTTP/{version}\r\nHost: x\r\n{headers}\r\n".encode())
    return s


def read_until(s: socket.socket, buf: bytearray, done: Callable[[bytes], bool], timeout: float) -> bool:
    """Reads into ``buf`` until ``done(buf)``; False when it did not happen within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done(bytes(buf)):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            part = s.recv(65536)
        except TimeoutError:
            return False
        if not part:
            return done(bytes(buf))
        buf += part
    return True


def count(b: bytes) -> int:
    return b.count(b'"type":"odds_drop"')


@pytest.mark.timeout(60)
@pytest.mark.parametrize("response", ["lean", "sse-starlette"])
def test_a_publish_of_more_than_256_alerts_arrives_whole(served: Any, response: str) -> None:
    """breaker14b B4 (fixed in 73c8407): the lean response wrote one take (256) and held the rest of a
    publish until its heartbeat timer; sse-starlette sends them all at once."""
    url, _, src = served(response)
    n = 300
    src.push([Quote(SPORT, f"e{i}", "pinnacle", "h2h_home", -110, 1000) for i in range(n)])  # primes
    s = open_raw(url, "threshold=1&heartbeat_s=30")
    try:
        buf = bytearray()
        assert read_until(s, buf, lambda b: b'"type":"connected"' in b, 15)
        src.push([Quote(SPORT, f"e{i}", "pinnacle", "h2h_home", -130, 2000) for i in range(n)])  # one publish
        # sse-starlette sends them at once (milliseconds); 4 s is well inside the 30 s heartbeat interval
        assert read_until(s, buf, lambda b: count(b) >= n, 4), f"{count(bytes(buf))} of {n} alerts arrived"
    finally:
        s.close()
