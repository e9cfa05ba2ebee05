"""``replay`` stopped by SIGTERM (a service manager's stop: break22's B22-3) keeps what was found
and writes it whole, as Ctrl-C does, and exits 143 saying so; and an interrupt a few causes down
a compiled call's SystemError comes out as itself (fast.interruptible)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote
from dropengine.fast import interruptible

from .parquet_util import write_quotes


def test_an_interrupt_under_two_system_errors_is_raised_as_itself() -> None:
    def compiled() -> None:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as ki:
                raise SystemError("_numba_unpickle returned a result with an exception set") from ki
        except SystemError as inner:
            raise SystemError("CPUDispatcher returned a result with an exception set") from inner

    with pytest.raises(KeyboardInterrupt):
        interruptible(compiled)()

    def other() -> None:
        raise SystemError("not an interrupt")

    with pytest.raises(SystemError):
        interruptible(other)()


def _reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux: /proc)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


def test_sigterm_during_a_stream_replay_writes_the_alerts_found_whole(tmp_path: Path) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see when the replay reads its input")
    # many keys' moves, enough for the replay to be running when the signal comes
    quotes = [
        Quote("nba", f"e{k % 5000}", "pin", "h2h_home", (-110, -130, 120, -105)[i % 4], 1_700_000_000_000 + i)
        for i, k in enumerate(range(400_000))
    ]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    out = tmp_path / "alerts.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropengine", "replay", "--engine", "stream", "-o", str(out), str(src)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # (a bound, not a timing assertion)
    while proc.poll() is None and not _reading(proc.pid, src) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the replay reads its input: its signal handlers are in place by then
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # (finished before the signal: nothing to check on this machine)
        pytest.skip("the replay ended before SIGTERM")
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM):" in err
    written = int(err.split("terminated (SIGTERM):")[1].split("alerts written")[0].replace(",", ""))
    assert pl.read_parquet(out).height == written  # a whole file (B22-3: unreadable), every alert counted in it
