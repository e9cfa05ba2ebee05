"""Issue 10, found by trying to break the live side (helper "inputs-breaker"): a hostile
upstream's error page must not reach the terminal raw, and mock-upstream's start-up
failures are one line with exit status 2.

Real processes and real sockets on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import FIXTURES

DEMO = FIXTURES / "demo_nba_frames.ndjson"
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
ENV = {**os.environ, "DROPENGINE_API_KEY": "k-secret-1", "NO_COLOR": "1", "COLUMNS": "200"}


def dropengine(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dropengine", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, check=False)


@pytest.fixture
def hostile_upstream() -> Iterator[str]:
    """An HTTP server that rejects every request with 403 and an error page full of
    terminal escapes (clear screen, set title, a newline)."""
    body = b"\x1b[2J\x1b]0;pwned\x07bad key\r\n\x1b[31mred\x9b1m"
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        srv.close()


def test_an_upstream_error_page_reaches_the_terminal_escaped(hostile_upstream: str) -> None:
    """The 403 body was printed with its ESC sequences (the rejected-key line cleared the
    terminal and retitled the window)."""
    res = dropengine("watch", "--sport", "basketball_nba", "--base-url", hostile_upstream, "--duration", "20")
    assert res.returncode == 3, res.stderr
    assert "403" in res.stderr and "bad key" in res.stderr
    assert not CONTROL.search(res.stderr), repr(res.stderr)
    assert "k-secret-1" not in res.stderr


def test_mock_upstream_busy_port_is_one_line_exit_2() -> None:
    """It printed click's usage block (4 lines) before the error."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        res = dropengine("mock-upstream", "--replay", str(DEMO), "--port", str(port), "--log-level", "error")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Usage:" not in res.stderr, res.stderr
    assert str(port) in lines[0] and lines[0].startswith("Error:")


def test_mock_upstream_nothing_to_serve_is_one_line_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ndjson"
    junk.write_bytes(b"{not json\n" * 5)
    res = dropengine("mock-upstream", "--replay", str(junk), "--port", "0")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("  ")]
    assert "Usage:" not in res.stderr and lines[-1].startswith("Error:") and "nothing to serve" in lines[-1]


def test_a_pipe_or_fifo_is_read_once_and_whole(tmp_path: Path) -> None:
    """``zcat x.gz | dropengine replay /dev/stdin``, ``replay <(zcat x.gz)`` and a FIFO:
    detection read the pipe, then the reader found it empty ("the file has no data", exit 1),
    and a FIFO hung for ever waiting for a second writer."""
    expected = dropengine("replay", str(DEMO))
    assert expected.returncode == 0 and expected.stdout
    res = subprocess.run([sys.executable, "-m", "dropengine", "replay", "/dev/stdin"], input=DEMO.read_bytes(),
                         capture_output=True, timeout=60, env=ENV, check=False)
    assert res.returncode == 0 and res.stdout.decode() == expected.stdout, res.stderr
    fifo = tmp_path / "live.ndjson"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as fh:
            fh.write(DEMO.read_bytes())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    res2 = dropengine("replay", str(fifo), str(DEMO))
    writer.join(10)
    assert res2.returncode == 0, res2.stderr
    both = dropengine("replay", str(DEMO), str(DEMO))
    assert res2.stdout == both.stdout


def test_a_recording_path_that_cannot_be_written_is_one_line_exit_2(tmp_path: Path) -> None:
    """``record --out /no/such/dir/x.ndjson`` printed a ConfigError traceback."""
    target = str(tmp_path / "no" / "such" / "x.ndjson")
    for cmd in (["record", "--out", target], ["watch", "--record", target]):
        res = dropengine(*cmd, "--sport", "basketball_nba", "--base-url", "http://127.0.0.1:9", "--duration", "5")
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and "cannot write" in lines[0], lines


def test_a_directory_of_more_responses_than_open_files_is_read_whole(tmp_path: Path) -> None:
    """``replay odds/`` with more The Odds API files than the open-file limit (1024 on Linux,
    256 on macOS by default) reported every file past the limit as "unreadable file: Too many
    open files": each response stayed open until the merge was done with it."""
    import json
    import resource

    top = tmp_path / "odds"
    top.mkdir()
    n = 200
    for i in range(n):
        doc = [{"id": "e1", "sport_key": "nfl", "home_team": "A", "away_team": "B",
                "bookmakers": [{"key": "pin", "last_update": f"2025-01-01T{i // 60:02d}:{i % 60:02d}:00Z",
                                "markets": [{"key": "h2h", "outcomes": [{"name": "A", "price": -110 - 20 * (i % 2)},
                                                                        {"name": "B", "price": 100}]}]}]}]
        (top / f"snap{i:04d}.json").write_text(json.dumps(doc))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    res = subprocess.run([sys.executable, "-m", "dropengine", "replay", str(top)], capture_output=True, text=True,
                         timeout=120, env=ENV, check=False, preexec_fn=limit)
    assert res.returncode == 0 and "unreadable" not in res.stderr, res.stderr[-2000:]
    assert res.stdout.count("\n") == n - 1  # every snapshot after the first moves the price by 20


def test_detecting_a_pipe_then_reading_it_gets_the_whole_input() -> None:
    """A caller that checks a pipe's format first (``serve --source replay:/dev/stdin`` does,
    at start-up) consumed it: the replay that followed read nothing."""
    code = ("import sys\n"
            "from dropengine.io.recordings import detect_format\n"
            "from dropengine.io.replay import read_quotes\n"
            "fmt = detect_format('/dev/stdin')\n"
            "n = sum(len(b) for b, _ in read_quotes(['/dev/stdin']))\n"
            "print(fmt, n)\n")
    res = subprocess.run([sys.executable, "-c", code], input=DEMO.read_bytes(), capture_output=True, timeout=60,
                         env=ENV, check=False)
    assert res.returncode == 0, res.stderr
    fmt, n = res.stdout.decode().split()
    assert fmt == "frames" and int(n) > 0


def test_more_recordings_than_the_soft_open_file_limit_are_all_read(tmp_path: Path) -> None:
    """Every NDJSON/CSV recording stays open while the merge runs: past the soft open-file
    limit (256 by default on macOS) each further file was "unreadable: Too many open files".
    The command line raises the soft limit toward the hard one for the files it was given."""
    import resource

    lines = DEMO.read_bytes().splitlines(keepends=True)
    n = 120
    for i in range(n):
        (tmp_path / f"part{i:04d}.ndjson").write_bytes(b"".join(lines[: 2 + i % 5]))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 1024))

    files = sorted(str(p) for p in tmp_path.glob("*.ndjson"))
    res = subprocess.run([sys.executable, "-m", "dropengine", "replay", *files], capture_output=True, text=True,
                         timeout=120, env=ENV, check=False, preexec_fn=limit)
    assert res.returncode == 0 and "unreadable" not in res.stderr and "Too many" not in res.stderr, res.stderr[-1500:]
