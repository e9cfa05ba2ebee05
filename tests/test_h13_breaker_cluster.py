"""Breaker (issue 13): ``--scheduler`` addresses that must fail fast and cleanly.

``open_client(scheduler=...)`` promises to give up after ``connect_timeout_s`` and to name a
bad address with a :class:`ConfigError` (the CLI's exit 2). Each case runs in a child process
(killed at its bound, so a hang cannot outlive the test) and is a strict xfail naming what is
wrong today.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]
pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent

#: What the child runs: open a client on the address with a 1 s connect timeout; print what
#: happened. A fixed open_client answers within ~1 s after its imports.
_CHILD = """
import sys
from dropengine.cluster.shard import open_client
try:
    with open_client(scheduler=sys.argv[1], connect_timeout_s=1.0):
        print("CONNECTED")
except Exception as exc:
    print("RAISED", type(exc).__name__, exc)
"""


def _open(address: str, bound_s: float) -> str:
    """The child's report; 'HUNG' when it is still running after ``bound_s`` (then killed)."""
    try:
        p = subprocess.run([sys.executable, "-c", _CHILD, address], cwd=ROOT, capture_output=True, text=True,
                           timeout=bound_s)
    except subprocess.TimeoutExpired:  # subprocess.run kills the child
        return "HUNG"
    return p.stdout.strip()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the kernel's backlog) and never says a
    word: a wrong service, a load balancer with no backend, a half-dead host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.mark.xfail(strict=True, reason="cluster/shard.py open_client: Client(address, timeout=connect_timeout_s) "
                   "bounds only the TCP connect; against a peer that accepts and never answers the dask handshake "
                   "it waits forever (seen > 90 s through `replay --engine batch --scheduler`): not bounded")
def test_a_scheduler_that_accepts_but_never_answers_is_given_up_within_the_timeout(silent_listener: int) -> None:
    got = _open(f"tcp://127.0.0.1:{silent_listener}", 8.0)
    assert got.startswith("RAISED ConfigError") and str(silent_listener) in got, got


@pytest.mark.xfail(strict=True, reason="cluster/shard.py open_client catches OSError/TimeoutError/ValueError only: a "
                   "tls:// address without TLS settings raises distributed's TypeError ('TLS expects a "
                   "ssl_context'), so `replay --scheduler tls://...` ends with a traceback, exit 1, after ~20 s "
                   "(Client.__del__ waiting), instead of exit 2 naming the address")
def test_a_tls_scheduler_address_without_tls_settings_is_a_config_error() -> None:
    got = _open("tls://127.0.0.1:1", 8.0)
    assert got.startswith("RAISED ConfigError") and "tls://127.0.0.1:1" in got, got
