"""review24 (session 17): a Ctrl-C or SIGTERM handled in Python code that polars' Rust calls back (R24-12).

cli/interrupt.py's policy (replay, backtest): after a signal, exit 130 (143 after SIGTERM) with one
line, never a traceback. Reading a Parquet file's schema with dictionary-encoded (Categorical)
columns, polars' Rust calls back into its Python (``Categories._from_py_categories``); a signal
handled there raises the guard's KeyboardInterrupt into Rust, which unwraps it: a panic,
``pyo3_runtime.PanicException`` (a BaseException, not a KeyboardInterrupt), its traceback and exit 1
(replay's "no usable input"). Seen unforced once in 40 batch replays signalled at random times
(/tmp/review24/hang.py seed 41, 0.63 s: ``load_table``'s ``plain_parquet_schema``); the same at
053d02d. Forced here: the child's wrapper of that callback sends the signal once the guard's handler
is set (``os.kill`` to its own process runs the handler at once, in the frame Rust called).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .test_h24_review24_numba_ctrlc import _quotes as plain

_ROOT = Path(__file__).resolve().parents[1]

# (the wrapper is compiled under polars' own file name: the handler runs in a frame of polars' code
# that Rust called, as in the unforced case, where the signal landed in _from_py_categories itself)
_CHILD = '''
import os, signal, sys
import polars.datatypes.classes as c

sig = getattr(signal, sys.argv[1])
orig = c.Categories._from_py_categories
sent = []
WRAPPER = """
def from_py(py_categories):
    guard = getattr(signal.getsignal(sig), "__self__", None)
    if not sent and type(guard).__name__ == "CtrlC":
        sent.append(1)
        sys.stderr.write("SENT IN THE CALLBACK\\\\n")
        os.kill(os.getpid(), sig)
    return orig(py_categories)
"""
exec(compile(WRAPPER, c.__file__, "exec"), globals())
c.Categories._from_py_categories = staticmethod(from_py)
sys.argv = ["dropengine", *sys.argv[2:]]
from dropengine.cli import run
run()
'''


def _quotes(path: Path) -> Path:
    """The quotes of the numba test, their key columns dictionary-encoded (Categorical when read)."""
    plain(path)
    key = pl.col("event_id", "bookmaker", "side").cast(pl.Categorical)
    pl.read_parquet(path).with_columns(key).write_parquet(path)
    return path


@pytest.mark.parametrize(("command", "signame"), [("replay", "SIGINT"), ("replay", "SIGTERM"), ("backtest", "SIGINT")])
def test_a_signal_in_a_polars_callback_ends_the_run_by_the_policy(tmp_path: Path, command: str, signame: str) -> None:
    quotes = _quotes(tmp_path / "q.parquet")
    argv = (
        ["replay", "--engine", "batch", str(quotes), "-q", "-o", str(tmp_path / "a.ndjson")]
        if command == "replay"
        else ["backtest", "-q", str(quotes)]
    )
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, signame, *argv], capture_output=True, text=True, timeout=120, cwd=_ROOT
    )
    assert "SENT IN THE CALLBACK" in proc.stderr.splitlines(), proc.stderr[-2000:]  # (the case itself)
    assert "PanicException" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == (143 if signame == "SIGTERM" else 130), (proc.returncode, proc.stderr[-2000:])
    said = "terminated (SIGTERM)" if signame == "SIGTERM" else "interrupted (Ctrl-C)"
    assert proc.stderr.strip().splitlines()[-1].startswith(said), proc.stderr
