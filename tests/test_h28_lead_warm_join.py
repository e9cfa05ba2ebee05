"""critic21's C21-4, replay's part: the batch path waits for its numba warm-up thread before the
command ends, also after a Ctrl-C, and a second signal during that wait does not cut it short.

CPython 3.11's ``Thread.join`` interrupted while the thread runs marks it stopped: the join returns
at once and the interpreter's exit no longer waits for it, so a cold-cache compile ran into the
teardown (1 of 5 SIGTERMs ended in SIGSEGV). ``replay`` joins the warm-up with the signals held.
Here the warm-up is a stand-in thread (2 s), detection is interrupted at once (a Ctrl-C), and a
SIGTERM lands 0.2 s into the join (not a second SIGINT: a background job starts with SIGINT
ignored, and the guard leaves an ignored signal so): the stand-in must have finished before the
exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent(
    """
    import atexit, os, signal, sys, threading, time
    import dropengine.cli.replay as r
    import dropengine.fast as fast

    finished = []

    def work():
        time.sleep(2.0)
        finished.append(1)

    def warm_up(signals=True):
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        return thread

    def replay_batch(*args, **kwargs):
        # a Ctrl-C during detection, then a SIGTERM while the command waits for the warm-up
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        raise KeyboardInterrupt

    fast.warm_up = warm_up  # (replay imports it from dropengine.fast when the batch engine runs)
    r.replay_batch = replay_batch
    atexit.register(lambda: print("WARM-UP FINISHED" if finished else "WARM-UP CUT SHORT", file=sys.stderr))
    sys.argv = ["dropengine", *sys.argv[1:]]
    from dropengine.cli import run
    run()
    """
)


def test_the_batch_replay_waits_for_its_warm_up_through_a_second_signal(tmp_path: Path) -> None:
    src = tmp_path / "q.ndjson"
    src.write_text("")
    argv = ["replay", "--engine", "batch", "-q", str(src), "--output", str(tmp_path / "a.parquet")]
    done = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, timeout=60, cwd=_ROOT)
    assert done.returncode in (130, 143), done.stderr
    assert "WARM-UP FINISHED" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


# C21-7: the Ctrl-C that ends detection can come twice (polars' own hook raises it in a read, and the
# guard's put-off copy is raised 10 ms later at the next call): the second raise lands at the first
# call of replay's ``finally``. Here a profile hook raises it there (at the first Python call after
# detection's raise), deterministically; the join must still wait for the warm-up.
_TWICE = _CHILD.replace(
    "    raise KeyboardInterrupt\n",
    """    def again(frame, event, arg):
        if event == "call":
            sys.setprofile(None)
            raise KeyboardInterrupt  # (the second raise, at the finally's first call)
    sys.setprofile(again)
    raise KeyboardInterrupt
""",
)


def test_a_second_interrupt_at_the_finally_s_first_call_does_not_skip_the_join(tmp_path: Path) -> None:
    assert _TWICE != _CHILD
    src = tmp_path / "q.ndjson"
    src.write_text("")
    argv = ["replay", "--engine", "batch", "-q", str(src), "--output", str(tmp_path / "a.parquet")]
    done = subprocess.run([sys.executable, "-c", _TWICE, *argv], capture_output=True, text=True, timeout=60, cwd=_ROOT)
    assert done.returncode in (130, 143), done.stderr
    assert "WARM-UP FINISHED" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
