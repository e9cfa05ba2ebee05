"""review24 (session 17): Ctrl-C and SIGTERM inside a compiled call of the batch engine.

cli/interrupt.py's policy (replay, backtest): after a signal, exit 130 (143 after SIGTERM) with one
line, never a traceback. A signal that lands while numba's compiled code unpickles one of its
constants (``numba.core.serialize._numba_unpickle``, called from compiled code on the main thread:
~26 calls in one ``replay --engine batch``) leaves the KeyboardInterrupt under a chain of
``SystemError: ... returned a result with an exception set``, one for each constant the compiled
code still asked for: 9 deep in the kernel's ``detect_pass``. ``dropengine.fast.interruptible`` looks
8 causes down only, so the run ended with that traceback and exit 1 ("no usable input" for replay).
Seen unforced by sending signals at random times (1 run of 8 batch replays); forced here by the
child sending itself the signal in its K-th unpickle on the main thread.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA

_ROOT = Path(__file__).resolve().parents[1]

# argv: signal name, K, then the command line; the K-th unpickle made on the main thread sends the signal
_CHILD = """
import os, signal, sys, threading
import numba.core.serialize as ser

sig = getattr(signal, sys.argv[1])
k = int(sys.argv[2])
real = ser._numba_unpickle
calls = []

def unpickle(address, bytedata, hashed):
    if threading.current_thread() is threading.main_thread():
        calls.append(1)
        if len(calls) == k:
            os.kill(os.getpid(), sig)
    return real(address, bytedata, hashed)

ser._numba_unpickle = unpickle  # (numba's helper looks it up on its first use)
sys.argv = ["dropengine", *sys.argv[3:]]
from dropengine.cli import run
run()
"""


def _quotes(path: Path) -> Path:
    rows = [
        {
            "sport_key": "basketball_nba",
            "event_id": f"E{e}",
            "bookmaker": book,
            "side": "h2h_home",
            "price": price,
            "last_update": 1_000 * (i + 1) + e,
            "market_key": "h2h",
            "line": None,
        }
        for e in range(3)
        for book in ("pin", "dk")
        for i, price in enumerate((-110.0, -150.0, -130.0, -180.0))
    ]
    pl.DataFrame(rows, schema=QUOTE_SCHEMA).write_parquet(path)
    return path


@pytest.mark.parametrize(("command", "signame"), [("replay", "SIGINT"), ("replay", "SIGTERM"), ("backtest", "SIGINT")])
def test_a_signal_in_a_compiled_unpickle_ends_the_run_by_the_policy(tmp_path: Path, command: str, signame: str) -> None:
    require_fast()
    quotes = _quotes(tmp_path / "q.parquet")
    argv = (
        ["replay", "--engine", "batch", str(quotes), "-q", "-o", str(tmp_path / "a.ndjson")]
        if command == "replay"
        else ["backtest", "-q", str(quotes)]
    )
    want = 143 if signame == "SIGTERM" else 130
    said = "terminated (SIGTERM)" if signame == "SIGTERM" else "interrupted (Ctrl-C)"
    for k in (1, 2, 3):  # (2: the chain of 9 SystemErrors with this numba; each K ends the run by the policy)
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, signame, str(k), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=_ROOT,
        )
        assert "Traceback" not in proc.stderr and "SystemError" not in proc.stderr, (k, proc.stderr[-2000:])
        assert proc.returncode == want, (k, proc.returncode, proc.stderr[-2000:])
        assert proc.stderr.strip().splitlines()[-1].startswith(said), (k, proc.stderr)
