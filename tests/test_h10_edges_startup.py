"""Issue 10: start-up failures of ``serve`` are one clear line and exit 2 (a busy port, a
replay file that is missing, unreadable or of no known format), and a missing optional
extra is one line naming the ``pip install`` to run. The real CLI runs as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropengine.core.keys import KeyTable
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.asgi import BackgroundServer

from .conftest import FIXTURES

DEMO = FIXTURES / "demo_nba_frames.ndjson"
README = Path(__file__).resolve().parent.parent / "README.md"
KEY = "CANARY-H10-STARTUP-1c9d"

#: Runs the CLI with some top-level modules made unimportable, as on an install without an extra.
BLOCKING_MAIN = """
import sys
BLOCKED = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from dropengine.cli.group import main
main(sys.argv[2:], prog_name="dropengine")
"""


def run(args: list[str], blocked: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dropengine", *args] if blocked is None else \
        [sys.executable, "-c", BLOCKING_MAIN, blocked, *args]
    env = {**os.environ, "DROPENGINE_API_KEY": KEY}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


# ---- serve start-up failures ------------------------------------------------------------------

def test_serve_on_a_busy_port_is_one_line_naming_it_and_exit_2(busy_port: int) -> None:
    r = run(["serve", "--source", f"replay:{DEMO}", "--port", str(busy_port)], timeout=30)
    assert r.returncode == 2, r.stderr
    line = one_line(r)
    assert f"127.0.0.1:{busy_port}" in line and "in use" in line


def test_serve_replay_of_a_file_of_unknown_format_fails_at_start(tmp_path: Path) -> None:
    r = run(["serve", "--source", f"replay:{README}", "--port", "0"], timeout=30)
    assert r.returncode == 2, r.stderr
    line = one_line(r)
    assert "README.md" in line and "cannot tell the format" in line


def test_serve_replay_of_a_missing_file_fails_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ndjson"
    r = run(["serve", "--source", f"replay:{DEMO},{missing}", "--port", "0"], timeout=30)
    assert r.returncode == 2, r.stderr
    assert "nope.ndjson" in one_line(r)


def test_serve_replay_of_an_empty_file_fails_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    r = run(["serve", "--source", f"replay:{empty}", "--port", "0"], timeout=30)
    assert r.returncode == 2, r.stderr
    line = one_line(r)
    assert "empty.ndjson" in line and "empty" in line


def test_serve_replay_of_an_unreadable_file_fails_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ndjson.gz"
    bad.write_bytes(b"this is not gzip at all\n")
    r = run(["serve", "--source", f"replay:{bad}", "--port", "0"], timeout=30)
    assert r.returncode == 2, r.stderr
    line = one_line(r)
    assert "broken.ndjson.gz" in line and "cannot read" in line


# ---- missing extras ---------------------------------------------------------------------------

@pytest.mark.parametrize(("module", "cors"), [("starlette", False), ("uvicorn", False), ("sse_starlette", False),
                                             ("prometheus_client", False), ("starlette", True)])
def test_serve_without_the_server_extra_names_the_pip_install(module: str, cors: bool) -> None:
    """Also with --cors-origin, whose check is made while the flags are read (it once imported
    the server's module there: a traceback without starlette)."""
    extra = ["--cors-origin", "https://odds.example.com"] if cors else []
    r = run(["serve", "--source", f"replay:{DEMO}", "--port", "0", *extra], blocked=module, timeout=30)
    assert r.returncode == 2, r.stderr
    assert one_line(r) == (f"Error: dropengine serve needs the server extra ({module} is not installed): "
                           "pip install 'dropengine[server]'")


@pytest.mark.parametrize("command", ["watch", "record"])
def test_ws_transport_without_the_live_extra_names_the_pip_install(command: str, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "x.ndjson")] if command == "record" else []
    r = run([command, "--sport", "basketball_nba", "--base-url", "http://127.0.0.1:9", "--transport", "ws",
             "--duration", "5", *out], blocked="websockets", timeout=30)
    assert r.returncode == 2, r.stderr
    assert one_line(r) == (f"Error: dropengine {command} --transport ws needs the live extra "
                           "(websockets is not installed): pip install 'dropengine[live]'")


def test_sse_transport_needs_no_extra() -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=3000.0, max_gap=0.003, keys=KeyTable.single(KEY))
    with BackgroundServer(mock.app, secrets=mock.secrets()) as url:
        r = run(["watch", "--sport", "basketball_nba", "--base-url", url, "--max-alerts", "1", "--duration", "30",
                 "--quiet"], blocked="websockets,starlette,uvicorn,sse_starlette", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") >= 1 and "odds_drop" in r.stdout
