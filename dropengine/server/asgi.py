"""Run an ASGI app on uvicorn: in the foreground for the CLI, or in a thread for tests.

Both bind the socket themselves, so ``port=0`` picks a free port and the URL is known
before the first request. Access and error logs of uvicorn go through a
:class:`~dropengine.live.redaction.RedactingFilter`, since uvicorn prints request lines with their
query string (``?apiKey=...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from ..core.errors import ConfigError
from ..live.redaction import install_redaction
from .stream import SHUTDOWN_KEY

__all__ = ["HEADER_TIMEOUT_S", "BackgroundServer", "bind", "run_foreground"]

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


#: Seconds a connection may take to send a request's headers (on a new connection, and
#: between two requests of a kept-alive one) before it is closed.
HEADER_TIMEOUT_S = 10.0


def _header_timeout_protocol(timeout_s: float) -> type[Any]:
    """uvicorn's h11 protocol, plus a request-header timeout, which uvicorn lacks (and the
    shutdown signal of the lean SSE stream, :data:`~dropengine.server.stream.SHUTDOWN_KEY`): a client
    that opens connections and never finishes a request line ("slowloris") held each one
    open for ever, before any key is checked, so no per-key cap bounded the descriptors.
    A connection streaming a response, or upgraded to a WebSocket, is never affected."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _armed_cycle: object = None

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._armed_cycle = self.cycle
            self._header_timer = self.loop.call_later(timeout_s, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            cycle = self.cycle
            if cycle is self._armed_cycle and (cycle is None or cycle.response_complete) \
                    and not self.transport.is_closing():
                self.transport.close()  # no request began since the timer was armed

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport: Any) -> None:
            # No Nagle: uvicorn re-wraps the socket of bind() with socket.fromfd (protocol 0),
            # so asyncio does not set TCP_NODELAY on what it accepts; a response written as
            # headers then body (and SSE frames back to back) then waited for the peer's
            # delayed ACK, ~40 ms each.
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._disarm()
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def shutdown(self) -> None:
            super().shutdown()
            # A graceful shutdown began: a lean SSE stream (:mod:`.stream`) on this connection
            # sends what is pending and ends its body properly, at once.
            cycle, scope = self.cycle, self.scope
            stop: Callable[[], None] | None = None
            if scope is not None and cycle is not None and not cycle.response_complete:
                stop = scope.get(SHUTDOWN_KEY)  # type: ignore[assignment]
            if stop is not None:
                stop()

    return HeaderTimeoutH11Protocol


def _config(app: Any, log_level: str, access_log: bool, graceful_s: float,
            header_timeout_s: float = HEADER_TIMEOUT_S) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        http=_header_timeout_protocol(header_timeout_s),
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=max(1, round(graceful_s)),
        # the apps send their own heartbeats; transport pings would only add noise
        ws_ping_interval=None,
        ws_ping_timeout=None,
    )


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_foreground(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    secrets: Iterable[str] = (),
    log_level: str = "info",
    access_log: bool = True,
    on_ready: Any = None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (uvicorn's own signal handling drains connections).

    ``sock`` is a socket from :func:`bind` (a caller that binds first fails fast on a busy
    port, before any slow start-up work); without it ``host:port`` is bound here.
    """
    import uvicorn

    install_redaction(UVICORN_LOGGERS, secrets)
    if sock is None:
        sock = bind(host, port)
    if on_ready is not None:
        on_ready(_url(sock))
    server = uvicorn.Server(_config(app, log_level, access_log, graceful_s=5.0))
    # uvicorn handles SIGINT/SIGTERM (a graceful stop), then raises the signal again against
    # the handlers it found: Python's default turned Ctrl-C into KeyboardInterrupt (click:
    # "Aborted!", exit 1) and SIGTERM into death by signal (143). A stop asked for by a
    # signal is a clean stop: exit 0, as the commands document.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(sig: int, frame: Any) -> None:
    """The handler uvicorn re-raises a handled SIGINT/SIGTERM against: the stop is done."""


class BackgroundServer:
    """uvicorn serving ``app`` from a daemon thread on a loopback port (tests, benchmarks).

    ``with BackgroundServer(app) as url: ...`` starts it, waits until it accepts
    connections, and stops it on exit (open streams are cut after ``graceful_s``).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secrets: Iterable[str] = (),
        log_level: str = "warning",
        access_log: bool = False,
        graceful_s: float = 1.0,
        header_timeout_s: float = HEADER_TIMEOUT_S,
    ) -> None:
        import uvicorn

        install_redaction(UVICORN_LOGGERS, secrets)
        self._sock = bind(host, port)
        self.url = _url(self._sock)
        self._server = uvicorn.Server(_config(app, log_level, access_log, graceful_s, header_timeout_s))
        self._thread = threading.Thread(target=self._run, name=f"uvicorn {self.url}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start()/stop() in the caller's thread
            self._error = exc

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {timeout} s")
            time.sleep(0.01)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout / 2)
        self._sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
