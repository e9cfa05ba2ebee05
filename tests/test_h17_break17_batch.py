"""break17 (issue 14, session 10): the compiled batch path after signals14's threads.

signals14 moved polars work of ``batch.detect`` (the steams' books in a8c738e, the drops' table
in f63a1c7) into threads of its own (``analysis.batch._in_thread``) that the calling thread joins.
Polars runs its work on one process-wide thread pool; a caller that is itself running on that
pool (a polars UDF: ``map_batches`` in a ``group_by().agg``) blocks a pool
worker in ``join`` while the thread's polars work waits for a free worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import require_fast

_UDF = textwrap.dedent("""
    import polars as pl
    from dropengine.analysis.batch import detect_counted

    T = 1_747_000_000_000

    def q(book, side, price, t, line=None):
        return dict(sport_key="americanfootball_nfl", event_id="ev4", bookmaker=book, side=side, price=price,
                    last_update=T + t, market_key="spreads", line=line, home_team="Chiefs", away_team="Broncos")

    rows = [q(b, "spread_home@-3", -110, j) for j, b in enumerate(("pinnacle", "draftkings", "fanduel"))]
    for j, b in enumerate(("pinnacle", "draftkings", "fanduel")):
        rows.append(q(b, "spread_home@-3", -125, 100 + j))  # a price drop at three books: a steam
        rows.append(q(b, "spread_home@-4", -110, 200 + j, -4.0))  # and a line move at each
    frame = pl.DataFrame(rows, schema_overrides={"line": pl.Float64})
    TYPES = frozenset(("odds_drop", "line_move", "steam"))
    want = detect_counted(frame, accel="fast", types=TYPES, steam_books=2).alerts.height

    def per_group(x):
        got = detect_counted(frame, accel="fast", types=TYPES, steam_books=2)
        return pl.Series([got.alerts.height])

    # detection per group in an aggregation: the function runs on a worker of polars' pool
    # (in a thread of this process's own, waited for 5 s: the numba kernel is warm by now, the
    # call takes milliseconds; a deadlocked pool cannot be stopped, so the process exits)
    import os, threading
    result = []
    work = threading.Thread(target=lambda: result.append(pl.DataFrame({"g": [1], "x": [0]}).group_by("g").agg(
        pl.col("x").map_batches(per_group, return_dtype=pl.Int64, returns_scalar=True).alias("alerts"))),
        daemon=True)
    work.start()
    work.join(5)
    if not result:
        print("deadlock", flush=True)
        os._exit(3)
    out = result[0]
    assert out.get_column("alerts").to_list() == [want], (out, want)
    print("done", want)
""")


def test_detect_inside_a_polars_udf_does_not_deadlock() -> None:
    """B17-1 (fixed in e12aee4: _in_thread runs inline on a thread Python did not start)."""
    require_fast()
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}  # the pool's one worker runs the UDF
    done = subprocess.run([sys.executable, "-c", _UDF], env=env, capture_output=True, text=True, timeout=60)
    assert "deadlock" not in done.stdout, "detect inside group_by().agg(map_batches) did not return in 5 s"
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("done 7"), done.stdout


def test_ctrl_c_during_the_kernel_is_a_keyboard_interrupt() -> None:
    require_fast()
    import signal
    import threading

    import numpy as np

    from dropengine.fast import kernel

    kernel.compile_all()
    # key ids of 6M rows: a call of ~120 ms on a quiet machine (2M took 46 ms on a fast host: the signal
    # came after it), the signal sent 30 ms into it
    n = 6_000_000
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 1000, n), rng.integers(0, 10, n), rng.integers(0, 20, n)

    def attempt() -> bool:
        """One call with a SIGINT sent 30 ms into it: whether it came out as a KeyboardInterrupt
        (a SystemError, the regression guarded, propagates and fails the test)."""
        started = threading.Event()
        sent = threading.Event()

        def interrupt() -> None:
            started.wait()
            threading.Event().wait(0.03)
            os.kill(os.getpid(), signal.SIGINT)
            sent.set()

        sender = threading.Thread(target=interrupt)
        sender.start()
        try:
            started.set()
            kernel.ids(a, b, c, 1000, 10, 20)
            # a signal that came after the call lands here: waited for, not timed (CI's load delayed the
            # sender past a fixed 1 s wait once)
            sent.wait(60)
            threading.Event().wait(1)
        except KeyboardInterrupt:
            return True
        finally:
            sender.join()
        return False

    # Python's own SIGINT handler for the test (another one, e.g. an embedding host's, would turn the
    # signal into something else). Up to three tries: once in ~5 CI runs the signal was not seen at all
    # (DID NOT RAISE; no handler was left by another test: checked at every test's end over a whole run),
    # so a signal landing in some window of the call's return may be lost; a lost Ctrl-C is pressed again.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert any(attempt() for _ in range(3)), "a SIGINT during the kernel never came out as KeyboardInterrupt"
    finally:
        signal.signal(signal.SIGINT, previous)


def _signal_frame() -> tuple[object, frozenset[str]]:
    """Three books' price drops on one side (a steam at 2 books) and a line move at each."""
    import polars as pl

    t = 1_747_000_000_000

    def q(book: str, side: str, price: int, dt: int, line: float | None = None) -> dict[str, object]:
        return dict(sport_key="americanfootball_nfl", event_id="ev4", bookmaker=book, side=side, price=price,
                    last_update=t + dt, market_key="spreads", line=line, home_team="Chiefs", away_team="Broncos")

    books = ("pinnacle", "draftkings", "fanduel")
    rows = [q(b, "spread_home@-3", -110, j) for j, b in enumerate(books)]
    for j, b in enumerate(books):
        rows += [q(b, "spread_home@-3", -125, 100 + j), q(b, "spread_home@-4", -110, 200 + j, -4.0)]
    return pl.DataFrame(rows, schema_overrides={"line": pl.Float64}), frozenset(("odds_drop", "line_move", "steam"))


def test_detect_without_threads_runs_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """B17-3 (fixed in e12aee4: _in_thread runs inline when no thread can be started)."""
    require_fast()
    import threading

    from dropengine.analysis.batch import detect_counted

    frame, types = _signal_frame()
    want = detect_counted(frame, accel="fast", types=types, steam_books=2)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    got = detect_counted(frame, accel="fast", types=types, steam_books=2)
    assert got.alerts.equals(want.alerts) and got.counters == want.counters
