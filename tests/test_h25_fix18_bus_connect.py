"""bus.connect.connect's first connect ends when it is cancelled or times out, and leaves nothing
running (session 18, fix18; start17's finding in session 17).

nats-py's connect can ignore a cancel: under Python 3.11 a ``wait_for`` inside it whose awaited call
completes as the cancel arrives returns the result and drops the cancel, and its loop then
reconnects for ever. Right after the TCP accept of a server that does not answer, a cancelled
``connect()`` went on connecting (a ``detect``/``ingest`` stopped while starting waited for ever; the
connect's own ``wait_for`` timeout, which cancels the same way, never returned either). Invariants:
a cancelled or timed-out first connect ends (CancelledError / BusError) and no task is left behind,
against a port that accepts and never answers and against a real nats-server made unreachable
(stopped with SIGSTOP: the kernel still accepts, the server never says INFO).

Each case runs in its own event loop, closed after a bounded wait (2 s) for what is left, cancelled,
so that a connect that never ends fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from dropengine.bus.config import BusConfig
from dropengine.core.errors import BusError

from . import natsutil
from .natsutil import NatsServer

nats_server = natsutil.nats_server

T = TypeVar("T")

#: How long a cancelled or timed-out connect may take to end: far above the 50 ms rounds it needs.
BOUND_S = 10.0


def _run(main: Callable[[], Awaitable[T]]) -> T:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        # (not asyncio.run: it waits for every task left, for ever if one ignores its cancel. What is left
        # (e.g. a closed client's flusher, still ending as ``main`` returns) is cancelled and given a bounded
        # wait: a task left pending in a closed loop is collected later and its coroutine's cleanup raises
        # "Event loop is closed", reported as unraisable in whatever test runs then: an xdist worker's report
        # of it crashed a CI run, session 22)
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=2.0))
        loop.close()


def _left() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


@pytest.fixture
def silent_port() -> Iterator[socket.socket]:
    """A loopback port that accepts connections and never answers."""
    pytest.importorskip("nats")
    with socket.create_server(("127.0.0.1", 0)) as srv:
        srv.setblocking(False)
        yield srv


@pytest.mark.parametrize("delay", [0.0] * 8 + [0.001, 0.01, 0.1, 0.5])
def test_a_connect_cancelled_after_the_accept_ends_and_leaves_nothing_running(
    silent_port: socket.socket, delay: float
) -> None:
    from dropengine.bus.connect import connect

    cfg = BusConfig.parse(f"nats://127.0.0.1:{silent_port.getsockname()[1]}", connect_timeout_s=60)

    async def main() -> tuple[bool, bool, int]:
        connecting = asyncio.ensure_future(connect(cfg, name="fix18"))
        conn, _ = await asyncio.get_running_loop().sock_accept(silent_port)
        try:
            await asyncio.sleep(delay)  # (0: the cancel lands as the client's TCP connect completes)
            connecting.cancel()
            done, _ = await asyncio.wait({connecting}, timeout=BOUND_S)
            await asyncio.sleep(0.3)  # (a connect loop still alive would be mid-retry here)
            return bool(done), connecting.cancelled(), len(_left())
        finally:
            conn.close()

    ended, cancelled, left = _run(main)
    assert ended, f"connect() still running {BOUND_S:g} s after its cancel"
    assert cancelled and left == 0, (cancelled, left)


def test_a_connect_to_a_port_that_never_answers_times_out_and_leaves_nothing_running(
    silent_port: socket.socket,
) -> None:
    from dropengine.bus.connect import connect

    cfg = BusConfig.parse(f"nats://127.0.0.1:{silent_port.getsockname()[1]}", connect_timeout_s=1.0)

    async def main() -> tuple[str, int]:
        connecting = asyncio.ensure_future(connect(cfg, name="fix18"))
        done, _ = await asyncio.wait({connecting}, timeout=cfg.connect_timeout_s + BOUND_S)
        if not done:
            return "still connecting", len(_left())
        with pytest.raises(BusError) as failed:
            connecting.result()
        await asyncio.sleep(0.3)
        return str(failed.value), len(_left())

    said, left = _run(main)
    assert said.startswith(f"cannot connect to the bus at nats://127.0.0.1:{silent_port.getsockname()[1]} within 1 s")
    assert left == 0


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3])
def test_a_connect_to_a_stopped_nats_server_ends_on_cancel_and_on_timeout(
    nats_server: NatsServer, delay: float
) -> None:
    from dropengine.bus.connect import connect

    assert nats_server.proc is not None
    nats_server.proc.send_signal(signal.SIGSTOP)  # (unreachable: connections accepted, never answered)
    try:
        cfg = BusConfig.parse(nats_server.url, connect_timeout_s=0.8)

        async def main() -> tuple[bool, bool, bool, int]:
            cancelled = asyncio.ensure_future(connect(cfg, name="fix18-a"))
            await asyncio.sleep(delay)
            cancelled.cancel()
            timing_out = asyncio.ensure_future(connect(cfg, name="fix18-b"))
            done, _ = await asyncio.wait({cancelled, timing_out}, timeout=cfg.connect_timeout_s + BOUND_S)
            timed_out = timing_out.done() and isinstance(timing_out.exception(), BusError)
            await asyncio.sleep(0.3)
            return len(done) == 2, cancelled.cancelled(), timed_out, len(_left())

        ended, cancelled, timed_out, left = _run(main)
    finally:
        nats_server.proc.send_signal(signal.SIGCONT)
    assert ended and cancelled and timed_out and left == 0, (ended, cancelled, timed_out, left)

    async def answered() -> bool:  # (the same server, running again: the first connect is made as before)
        async with await connect(BusConfig.parse(nats_server.url, connect_timeout_s=5), name="fix18-c") as bus:
            return bus.is_connected

    assert _run(answered)
