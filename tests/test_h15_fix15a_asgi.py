"""Connections our uvicorn runner accepts send without Nagle (helper fix15a, L-1 from helper sinks).

uvicorn re-wraps the socket of ``asgi.bind()`` with ``socket.fromfd`` (protocol 0), so asyncio
never set TCP_NODELAY on the sockets it accepted: each response written as headers then body
waited for the client's delayed ACK (~40 ms). Invariant (no timing): every connection a real
:class:`BackgroundServer` accepted, plain HTTP or a stream, has TCP_NODELAY set.
"""

from __future__ import annotations

import socket

import httpx

from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ManualSource


def _nodelay(bg: BackgroundServer) -> list[int]:
    protocols = list(bg._server.server_state.connections)
    socks = [p.transport.get_extra_info("socket") for p in protocols]
    return [s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in socks]


def test_accepted_connections_have_tcp_nodelay() -> None:
    bg = BackgroundServer(DropServer(ManualSource(), ServeConfig()).app)
    url = bg.start()
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            assert http.get("/healthz").status_code in (200, 503)  # kept alive: still a connection
            with http.stream("GET", "/v1/odds-drop/all", headers={"X-API-Key": "k"}) as stream:
                assert stream.status_code == 200
                flags = _nodelay(bg)
    finally:
        bg.stop()
    assert len(flags) >= 1 and all(flags), flags
