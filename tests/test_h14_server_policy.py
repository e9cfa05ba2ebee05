"""Issue 14: the lean SSE response keeps the connection policy of the sse-starlette one. A
client that leaves frees its slot and its subscription; a client that stops reading is cut
once, by its queue overflowing or by a send blocked for the send timeout, its slot and socket
freed at once. Each test runs both responses (``StreamServer.sse_response``) and expects the
same counters. Real uvicorn on 127.0.0.1, raw sockets."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dropengine import Quote
from dropengine.core.keys import KeyTable
from dropengine.server.app import ServeConfig

from . import test_h10_server_slow as slow
from .test_h10_server_slow import _open_never_reading, _push_until, _wait, server_sockets

served = slow.served  # the fixture: a DropServer on a BackgroundServer per call, stopped after the test

KEYS = KeyTable.parse("slow-key business 5\nother-key business 5\none-key business 1\n")
RESPONSES = ("lean", "sse-starlette")


@pytest.fixture
def no_server_errors() -> Iterator[Callable[[], None]]:
    """``listen()`` (once the server runs: uvicorn's logging set-up replaces the handlers of its
    loggers) collects what uvicorn logs as errors, e.g. "ASGI callable returned without
    completing response": a stream that ends, however it ends, ends its response: none."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    yield lambda: logger.addHandler(handler)
    time.sleep(0.2)  # (what the last cut logs, it logs once its loop turn ran)
    logger.removeHandler(handler)
    assert not [r.getMessage() for r in records]


def _stream(host: str, port: int, key: str) -> socket.socket:
    """A stream opened and read up to its ``connected`` frame."""
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(f"GET /v1/odds-drop/all?apiKey={key}&threshold=1&heartbeat_s=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while b'"type":"connected"' not in got:
        part = s.recv(65536)
        assert part, got
        got += part
    assert got.startswith(b"HTTP/1.1 200"), got[:100]
    return s


@pytest.mark.parametrize("response", RESPONSES)
def test_a_client_that_leaves_frees_its_slot_and_subscription(served: Any, response: str,
                                                              no_server_errors: Any) -> None:
    """Idle (the lean stream parked, no send to fail) and after alerts: the server notices the
    disconnect by itself, the cap-1 key can stream again, nothing is left subscribed."""
    url, srv, src = served(ServeConfig(keys=KEYS))
    srv.sse_response = response
    no_server_errors()
    host, port = url.removeprefix("http://").split(":")
    for with_alerts in (False, True):
        s = _stream(host, int(port), "one-key")
        if with_alerts:
            _push_until(src, lambda: srv.hub.counters.delivered >= 3, "three deliveries")
        s.close()
        _wait(lambda: srv.status()["connections"] == 0 and not srv.hub.subscribers, what="the slot freed")
        _wait(lambda: server_sockets(int(port)) == 0, what="the server's socket closed")
    _push_until(src, lambda: True, "one more batch")  # a publish after they left: nobody to write to
    _stream(host, int(port), "one-key").close()  # the cap (1) is free again
    assert srv.status()["slow_clients_cut"] == 0 and srv.metrics.send_timeouts == 0


@pytest.mark.parametrize("response", RESPONSES)
def test_a_client_whose_queue_overflows_is_cut_once(served: Any, response: str, no_server_errors: Any) -> None:
    url, srv, src = served(ServeConfig(keys=KEYS, max_pending=20, send_timeout_s=60))
    srv.sse_response = response
    no_server_errors()
    host, port = url.removeprefix("http://").split(":")
    held = _open_never_reading(host, int(port), 2)
    try:
        _wait(lambda: len(srv.hub.subscribers) == 2, what="two slow streams")
        _push_until(src, lambda: srv.hub.counters.overflowed >= 2, "two overflows")
        _wait(lambda: srv.status()["connections"] == 0, what="both slots freed")  # not after 60 s
        _wait(lambda: server_sockets(int(port)) == 0, what="the server's sockets closed")
        _push_until(src, lambda: True, "one more batch")
        assert srv.status()["slow_clients_cut"] == 2 and srv.metrics.send_timeouts == 0
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("response", RESPONSES)
def test_a_send_blocked_past_the_timeout_cuts_once(served: Any, response: str, no_server_errors: Any) -> None:
    """A queue too large to overflow: the send blocked on the full socket times out."""
    url, srv, src = served(ServeConfig(keys=KEYS, max_pending=100_000, send_timeout_s=0.5))
    srv.sse_response = response
    if response == "lean":  # (the sse-starlette response logged "ASGI callable returned without completing
        no_server_errors()  # response" for each client it cut on a send timeout; the lean one ends it)
    host, port = url.removeprefix("http://").split(":")
    held = _open_never_reading(host, int(port), 1, key="other-key")
    try:
        _wait(lambda: len(srv.hub.subscribers) == 1, what="one slow stream")
        _push_until(src, lambda: srv.status()["slow_clients_cut"] >= 1, "a cut")
        _wait(lambda: srv.status()["connections"] == 0, what="the slot freed")
        _wait(lambda: server_sockets(int(port)) == 0, what="the server's socket closed")
        _push_until(src, lambda: True, "one more batch")
        assert srv.status()["slow_clients_cut"] == 1 and srv.metrics.send_timeouts == 1
        assert srv.hub.counters.overflowed == 0
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("response", RESPONSES)
def test_a_burst_past_the_queue_cuts_a_reading_client_once(served: Any, response: str,
                                                           no_server_errors: Any) -> None:
    """More alerts in one publish than the queue holds: the client (reading, its stream idle)
    is cut at once, counted once, its slot and socket freed, its response ended."""
    url, srv, src = served(ServeConfig(keys=KEYS, max_pending=5, send_timeout_s=60))
    srv.sse_response = response
    no_server_errors()
    host, port = url.removeprefix("http://").split(":")
    s = _stream(host, int(port), "one-key")
    try:
        src.push([Quote("basketball_nba", f"e{i}", "book", "h2h_home", -110, 1_000 + i) for i in range(10)])
        src.push([Quote("basketball_nba", f"e{i}", "book", "h2h_home", -130, 2_000 + i) for i in range(10)])
        _wait(lambda: srv.status()["connections"] == 0, what="the slot freed")
        _wait(lambda: server_sockets(int(port)) == 0, what="the server's socket closed")
        assert srv.status()["slow_clients_cut"] == 1 and srv.hub.counters.overflowed == 1
        assert srv.metrics.send_timeouts == 0
    finally:
        s.close()
