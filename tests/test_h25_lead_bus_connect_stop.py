"""A stop while ``ingest`` / ``detect`` wait for their first connect to the bus (session 18).

The server here accepts the TCP connection and never speaks (nats-py then waits for the server's
INFO line until ``--connect-timeout``): a signal during that wait ends the command at once with the
start's policy (130 / 143 and one line: nothing published), not after the timeout, and ``--duration``
ending during it is a clean stop (exit 0). Before session 18 the stop waited for the connect (nats-py
drops a cancel that lands as its TCP connect completes: bus/connect.py now closes the client).
``serve --bus`` probes the log before it serves (a fixed 5 s first connect): a stop while that
connect waits is the clean stop it documents (exit 0), not its end as a bus that does not answer
(exit 2, 5 s later). All through ``bus.connect.connect_unless``, the one way a first connect
watches a stop. Needs the bus extra (nats-py); no nats-server: nothing here may answer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bus, pytest.mark.timeout(120)]
pytest.importorskip("nats")

_FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "demo_nba_frames.ndjson"
_TIMEOUT = "60"  # --connect-timeout: far longer than any wait the test allows


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A loopback TCP listener that accepts and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dropengine", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _accepted(server: socket.socket, proc: subprocess.Popen[str], within_s: float = 60) -> socket.socket:
    """The command's connection, once it is made: the command is then inside its first connect."""
    server.settimeout(0.5)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
            return conn
        except TimeoutError:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the command ended before it connected: {proc.returncode} {err[-2000:]!r}")
    proc.kill()
    pytest.fail("the command never connected")


def _commands(url: str) -> list[list[str]]:
    base = ["--bus", url, "--bus-prefix", "lead18", "--connect-timeout", _TIMEOUT]
    return [
        ["detect", *base, "--partition", "0/1"],
        ["ingest", *base, "--partitions", "1", "--source", f"replay:{_FRAMES}"],
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["detect", "ingest"])
@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_a_signal_during_the_first_connect_ends_the_start_at_once(
    silent_server: socket.socket, which: int, signum: int, status: int, said: str
) -> None:
    port = silent_server.getsockname()[1]
    url = f"nats://127.0.0.1:{port}"
    proc = _start(_commands(url)[which])
    conn = _accepted(silent_server, proc)
    with conn:
        time.sleep(0.3)  # (inside the wait for INFO)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
        waited = time.monotonic() - sent
    assert proc.returncode == status, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == f"{said} while connecting to the bus at {url}: nothing published", err
    # (not a timing assertion on speed: the connect's own timeout is 60 s, so an ignored stop cannot end under 30)
    assert waited < 30, waited


def test_duration_ending_during_the_first_connect_is_a_clean_stop(silent_server: socket.socket) -> None:
    port = silent_server.getsockname()[1]
    proc = _start([*_commands(f"nats://127.0.0.1:{port}")[0], "--duration", "2"])
    with _accepted(silent_server, proc):
        _, err = proc.communicate(timeout=50)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_bus_stopped_during_its_probes_first_connect_is_a_clean_stop(
    silent_server: socket.socket, signum: int
) -> None:
    pytest.importorskip("uvicorn")
    port = silent_server.getsockname()[1]
    proc = _start(["serve", "--bus", f"nats://127.0.0.1:{port}", "--port", "0"])
    with _accepted(silent_server, proc):
        time.sleep(0.3)  # (inside the wait for INFO)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    # (before session 18: the stop waited for the 5 s connect, then exit 2, "does not answer")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "cannot connect" not in err, err
