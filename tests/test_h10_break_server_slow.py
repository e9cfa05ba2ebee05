"""Issue 10, second pass ("server-breaker"): connections that never finish a request.

"Slowloris": raw sockets that send part of a request line and headers and then nothing. They
come before any key is checked, so no per-key cap bounds them; uvicorn has no header timeout
and held each one open for ever. Now a connection that has not sent a whole request within
the header timeout (on a new connection, and between requests of a kept-alive one) is closed;
a stream in progress is never affected. Real server on 127.0.0.1, server-side sockets counted
from /proc; bounded waits, no timing assertions.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer

from .test_h10_server_slow import KEYS, _wait, server_sockets
from .test_serve import ManualSource


@pytest.fixture
def served() -> Iterator[tuple[str, int]]:
    srv = DropServer(ManualSource(), ServeConfig(keys=KEYS))
    with BackgroundServer(srv.app, header_timeout_s=1.0) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _connect(host: str, port: int, data: bytes) -> socket.socket:
    s = socket.socket()
    s.settimeout(10)
    s.connect((host, port))
    s.sendall(data)
    return s


def _read_until(s: socket.socket, marker: bytes, limit: int = 1 << 16) -> bytes:
    got = b""
    while marker not in got and len(got) < limit:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def test_unfinished_requests_are_closed_and_a_stream_is_not(served: tuple[str, int]) -> None:
    host, port = served
    partial = [_connect(host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(20)]
    stream = _connect(host, port, b"GET /v1/odds-drop/all?apiKey=slow-key&heartbeat_s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert b"connected" in _read_until(stream, b"connected")
        _wait(lambda: server_sockets(port) == 1, timeout=20, what="only the stream's socket left")
        for s in partial:  # the server closed them: the client sees the end
            assert s.recv(1024) == b""
        deadline = time.monotonic() + 10
        seen = b""
        while seen.count(b"heartbeat") < 3 and time.monotonic() < deadline:  # outlives the header timeout
            seen += stream.recv(4096)
        assert seen.count(b"heartbeat") >= 3
    finally:
        for s in [*partial, stream]:
            s.close()


def test_a_kept_alive_connection_that_starts_a_request_and_stalls_is_closed(served: tuple[str, int]) -> None:
    host, port = served
    s = _connect(host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert b"200 OK" in _read_until(s, b"}")
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # cancels uvicorn's keep-alive timer, and stalls
        _wait(lambda: server_sockets(port) == 0, timeout=20, what="the stalled connection closed")
    finally:
        s.close()


def test_never_reading_clients_over_two_keys_some_reading_first_are_cut_once_each() -> None:
    """Ten streams over two keys (cap 5 each), half of them reading a little before they stop:
    every one is cut exactly once, every slot comes back, no server-side socket stays."""
    from dropengine.server.app import ServeConfig as Cfg

    from .test_h10_server_slow import _open_never_reading, _push_until

    src = ManualSource()
    srv = DropServer(src, Cfg(keys=KEYS, max_pending=20, send_timeout_s=60))
    with BackgroundServer(srv.app) as url:
        host, port_text = url.removeprefix("http://").split(":")
        port = int(port_text)
        held = _open_never_reading(host, port, 5, "slow-key") + _open_never_reading(host, port, 5, "other-key")
        try:
            _wait(lambda: len(srv.hub.subscribers) == 10, what="ten streams")
            for s in held[::2]:  # these read their first bytes, then stop like the others
                s.settimeout(10)
                assert s.recv(256)
            _push_until(src, lambda: srv.metrics.slow_clients_cut >= 10, "ten cuts")
            _wait(lambda: srv.status()["connections"] == 0 and not srv._open, timeout=10, what="slots freed")
            _wait(lambda: server_sockets(port) == 0, timeout=10, what="server-side sockets closed")
            assert srv.metrics.slow_clients_cut == 10 and srv.hub.counters.overflowed == 10
        finally:
            for s in held:
                s.close()
