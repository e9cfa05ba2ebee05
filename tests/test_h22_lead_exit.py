"""The ``dropengine`` executable freezes the collector when its command is done (cli.group.run):
the shutdown's collections then skip the heap polars and numba leave (~0.27 s CPU a process).
What must hold: the process's exit code, output and atexit handlers are the command's as before,
and an in-process caller of ``main`` (tests, notebooks) keeps its collector as it was."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli import main, run

# Runs the executable's entry in a child, with an atexit handler that reports whether the
# collector was frozen by then (atexit runs after run()'s finally block, before shutdown).
_CHILD = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0, flush=True))
sys.argv = ["dropengine", *sys.argv[1:]]
from dropengine.cli import run
run()
"""


def _child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--version",), 0),  # a command that returns
        (("replay", "/nonexistent/quotes.ndjson"), 2),  # a usage error (click's exit code)
        (("no-such-command",), 2),
    ],
)
def test_the_executable_freezes_after_the_command_and_keeps_its_exit(args: tuple[str, ...], code: int) -> None:
    got = _child(*args)
    assert got.returncode == code, got.stderr
    assert got.stdout.splitlines()[-1] == "frozen True"  # atexit still ran, after the freeze


def test_python_dash_m_is_the_executable(tmp_path: Path) -> None:
    """``python -m dropengine`` goes through run() too (the benchmarks spawn it that way)."""
    src = Path(__file__).resolve().parent.parent / "dropengine" / "__main__.py"
    assert "run()" in src.read_text()
    got = subprocess.run([sys.executable, "-m", "dropengine", "--version"], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0 and "dropengine" in got.stdout


def test_main_in_process_leaves_the_collector_alone() -> None:
    before = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert gc.get_freeze_count() == before
    assert callable(run)
