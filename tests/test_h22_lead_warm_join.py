"""``replay --engine batch`` warms the compiled path for what it detects and waits for it
(cli/replay.py, review22 R22-5/R22-12): a price-drops-only run never loads the signals pass, and
no warm-up thread outlives the command (a compile of a cold numba cache running into the
interpreter's teardown crashed in LLVM). In a child process: the checks read the process's own
modules and threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dropengine import Quote

from .conftest import require_fast
from .parquet_util import write_quotes

_CHILD = """
import sys, threading
import dropengine.cli as cli
from dropengine.fast import signals
cli.main(["replay", "--engine", "batch", "-q", "--types", sys.argv[2], sys.argv[1]], standalone_mode=False)
print(len(signals._JIT), any(t.name == "dropengine-fast-warm-up" and t.is_alive() for t in threading.enumerate()))
"""


def _run(src: Path, types: str) -> str:
    got = subprocess.run([sys.executable, "-c", _CHILD, str(src), types], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr
    return got.stdout.splitlines()[-1]


def test_a_price_drop_run_loads_no_signals_pass_and_leaves_no_warm_up_thread(tmp_path: Path) -> None:
    require_fast()
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, 120))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    assert _run(src, "odds_drop") == "0 False"
    loaded, alive = _run(src, "odds_drop,steam").split()
    assert int(loaded) > 0 and alive == "False"  # asked for: loaded, and waited for


def test_compiled_code_waits_for_the_warm_up_the_caller_started() -> None:
    """break22's B22-8: the batch engine waits for a started warm-up before its first compiled
    call, so a cold cache compiles in the warm-up thread, never in the caller's (a Ctrl-C there
    left numba's compiler lock held and the exit hung). fast.warmed drains what warm_up started."""
    require_fast()
    import dropengine.fast as fast

    thread = fast.warm_up(signals=False)
    assert thread is not None and thread in fast._WARMING
    fast.warmed()
    assert not thread.is_alive() and not fast._WARMING
    fast.warmed()  # nothing started: returns at once
    src = Path(fast.__file__).parent.parent / "analysis" / "batch.py"
    text = src.read_text()
    assert text.index("warmed()") < text.index("  # numba is loaded here")


def test_two_callers_may_wait_for_the_warm_up_at_once() -> None:
    """review22's R22-13: warmed() from two threads at once (each joins; neither fails)."""
    require_fast()
    import threading

    import dropengine.fast as fast

    fast.warm_up(signals=False)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            fast.warmed()
        except BaseException as exc:  # (handed to the test's thread)
            errors.append(exc)

    waiters = [threading.Thread(target=wait) for _ in range(4)]
    for t in waiters:
        t.start()
    for t in waiters:
        t.join(timeout=120)
    assert errors == [] and not fast._WARMING


_FAILING_CHILD = """
import sys, threading
import dropengine.cli as cli
import dropengine.cli.replay as command

def failing(*args, **kwargs):  # a replay that raises at once (a fault put in on purpose)
    raise OSError("the disk went away")

command.replay_batch = failing
try:
    cli.main(["replay", "--engine", "batch", "-q", sys.argv[1]], standalone_mode=False)
    code = "none"
except OSError as exc:
    code = type(exc).__name__
print(code, any(t.name == "dropengine-fast-warm-up" and t.is_alive() for t in threading.enumerate()))
"""


def test_a_replay_that_raises_still_waits_for_the_warm_up(tmp_path: Path) -> None:
    """The join is in a ``finally``: a replay that raises (an I/O error, a Ctrl-C) does not leave
    the warm-up compiling into the interpreter's teardown (review22's R22-5, the rest). The fault
    is raised at once, while the warm-up (a fresh process: numba is still importing) runs."""
    require_fast()
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    got = subprocess.run([sys.executable, "-c", _FAILING_CHILD, str(src)], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[-1] == "OSError False", got.stdout
