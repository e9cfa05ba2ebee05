"""Breaker (issue 13): ``--scheduler`` addresses that must fail fast and cleanly.

``open_client(scheduler=...)`` promises to give up after ``connect_timeout_s`` and to name a
bad address with a :class:`ConfigError` (the CLI's exit 2). Each case runs in a child process
(killed at its bound, so a hang cannot outlive the test) and was a strict xfail until fixed
(a hang; a traceback for tls://; Parquet files of a mixed directory ignored).
"""

from __future__ import annotations

import re
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


def test_a_scheduler_that_accepts_but_never_answers_is_given_up_within_the_timeout(silent_listener: int) -> None:
    got = _open(f"tcp://127.0.0.1:{silent_listener}", 8.0)
    # (an address that cannot be reached is a ClusterError, the cluster's runtime failure, since ClusterError exists)
    assert got.startswith("RAISED ClusterError") and str(silent_listener) in got, got


def test_a_tls_scheduler_address_without_tls_settings_is_a_config_error() -> None:
    got = _open("tls://127.0.0.1:1", 8.0)
    assert got.startswith("RAISED ConfigError") and "tls://127.0.0.1:1" in got, got


def test_a_parquet_file_in_a_mixed_directory_is_read_or_named(tmp_path: Path) -> None:
    import polars as pl
    from click.testing import CliRunner

    from dropengine.cli.group import main

    d = tmp_path / "mixed"
    d.mkdir()
    n = 6
    table = {"sport_key": ["s"] * n, "event_id": ["e1"] * n, "bookmaker": ["b"] * n, "side": ["h2h_home"] * n,
             "price": [-110 - 20 * i for i in range(n)], "last_update": list(range(n))}
    pl.DataFrame(table).write_parquet(d / "a.parquet")  # five drops
    demo = (ROOT / "fixtures" / "demo_nba_frames.ndjson").read_text().splitlines(keepends=True)[:3]
    (d / "x.ndjson").write_text("".join(demo))
    alone = CliRunner().invoke(main, ["replay", "--engine", "batch", str(d / "x.ndjson")])
    mixed = CliRunner().invoke(main, ["replay", "--engine", "batch", str(d)])
    assert alone.exit_code == 0, alone.output
    # the Parquet file's five drops are in the run, or the run names the file it did not read
    assert "a.parquet" in mixed.output or mixed.exit_code != 0 or \
        _detected(mixed.output) == _detected(alone.output) + 5, mixed.output


def _detected(summary: str) -> int:
    m = re.search(r"^detected\s+([0-9,]+)", summary, re.M)
    assert m is not None, summary
    return int(m.group(1).replace(",", ""))
