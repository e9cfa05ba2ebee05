"""review25 (session 18): a signal at ``serve``'s hand-over is not lost (R25-2; fixed by fix18's 3190146).

1dd609a..0e1c123's policy put off a signal handled in any installed package's frame (marked pending, sent
again 10 ms later, only while a guard's handler is still set: ``_again``). ``serve``'s start guard hands over
to ``run_foreground``'s handlers right after uvicorn's ``Config`` is built (package code): a Ctrl-C there was
put off, its re-send met run_foreground's handler and was dropped, and nothing read the mark: the server
served on (7c16d19: exit 130, "while starting: nothing served"). Since 3190146 only polars', numba's and
llvmlite's frames (and the import machinery's) put a signal off. Invariant (the policy's, as for every
command's start): a signal before serve's own handlers ends the start, 130/143 with one line; never ignored.

Forced here as review24's R24-12 test forces its case: the child's wrapper of ``uvicorn.Config.__init__`` is
compiled under uvicorn's own file name and sends the signal once the guard's handler is set, so the handler
runs in a frame of uvicorn's code, the last before the hand-over.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

_ROOT = Path(__file__).resolve().parents[1]
_DEMO = _ROOT / "fixtures" / "demo_nba_frames.ndjson"

_CHILD = '''
import os, signal, sys
import uvicorn.config as c

sig = getattr(signal, sys.argv[1])
orig = c.Config.__init__
sent = []
WRAPPER = """
def init(self, *args, **kw):
    orig(self, *args, **kw)
    guard = getattr(signal.getsignal(sig), "__self__", None)
    if not sent and type(guard).__name__ == "CtrlC":
        sent.append(1)
        sys.stderr.write("SENT IN UVICORN'S CONFIG\\\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), sig)
"""
exec(compile(WRAPPER, c.__file__, "exec"), globals())
c.Config.__init__ = init
sys.argv = ["dropengine", *sys.argv[2:]]
from dropengine.cli import run
run()
'''

_SERVING_S = 10  # (how long a child that ignored the signal is left serving before the test stops it)


@pytest.mark.parametrize(
    ("signame", "status", "said"),
    [("SIGINT", 130, "interrupted (Ctrl-C)"), ("SIGTERM", 143, "terminated (SIGTERM)")],
)
def test_a_signal_in_uvicorns_config_ends_the_start(signame: str, status: int, said: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, signame, "serve", "--source", f"replay:{_DEMO}", "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=_ROOT,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=_SERVING_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # (serving: the signal was lost; stop it, a clean stop)
        _, err = proc.communicate(timeout=60)
        err += f"\n(still serving {_SERVING_S} s after the signal)"
    assert "SENT IN UVICORN'S CONFIG" in err.splitlines(), err[-2000:]  # (the case itself)
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode == status, (proc.returncode, err[-2000:])
    assert err.strip().splitlines()[-1] == f"{said} while starting: nothing served", err[-2000:]
