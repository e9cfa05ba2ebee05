"""The executable's start guard ends the process by the interrupt policy when the interpreter dropped
its raise (review24's R24-11: a signal handled inside a collector, weakref or ctypes callback is
"ignored"; the guard marks it pending, and the hand-over to the command did not look: the command
ran to its end, exit 0). Forced in a child: a collector callback of its own sends the signal while
the start guard is set, so the handler runs in that callback and its raise is dropped. (backtest's
own end checks its guard's pending mark too; a collection inside the command ran its handler
outside the callback here, so that path is not forced by this test.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import gc, os, signal, sys

sig = getattr(signal, sys.argv[1])
raises = sys.argv[2]  # (which guard's handler: the start guard's or the command's)
sent = []

def send(phase, info):
    guard = getattr(signal.getsignal(sig), "__self__", None)
    # the executable's start guard raises _Launching, the command's KeyboardInterrupt
    if phase == "stop" and not sent and type(guard).__name__ == "CtrlC" and guard._raises.__name__ == raises:
        sent.append(1)
        os.kill(os.getpid(), sig)
        for _ in range(1000):  # (bytecodes in this callback: the handler runs here, its raise dropped)
            pass

gc.callbacks.append(send)
sys.argv = ["dropengine", *sys.argv[3:]]
from dropengine.cli import run
run()
"""


@pytest.mark.parametrize(("signame", "guard", "line"), [
    ("SIGINT", "_Launching", " while starting: no input read, no output written"),
    ("SIGTERM", "_Launching", " while starting: no input read, no output written"),
])  # fmt: skip
def test_a_dropped_signal_in_the_start_still_ends_the_process_by_the_policy(
    tmp_path: Path, signame: str, guard: str, line: str
) -> None:
    recording = tmp_path / "r.parquet"
    made = subprocess.run(
        [sys.executable, "-m", "dropengine", "simulate", "--events", "2", "--books", "3", "--hours", "2",
         "--seed", "7", "-o", str(recording)],
        capture_output=True, text=True, timeout=120, cwd=_ROOT,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, signame, guard, "backtest", str(recording), "-q"],
        capture_output=True, text=True, timeout=180, cwd=_ROOT,
    )  # fmt: skip
    assert "Exception ignored" in proc.stderr  # (the raise was dropped: the case itself)
    assert proc.returncode == (143 if signame == "SIGTERM" else 130), (proc.returncode, proc.stderr[-2000:])
    said = "terminated (SIGTERM)" if signame == "SIGTERM" else "interrupted (Ctrl-C)"
    assert proc.stderr.strip().splitlines()[-1] == said + line, proc.stderr
