"""critic21's C21-4 and C21-7 (pre-existing), the commands' part: ``replay --engine batch`` and
``backtest`` wait for their numba warm-up thread before the command ends, also after a Ctrl-C, and
a second signal during that wait, or landing at its first call, does not cut it short.

CPython 3.11's ``Thread.join`` interrupted while the thread runs marks it stopped: the join returns
at once and the interpreter's exit no longer waits for it, so a cold-cache compile ran into the
teardown (1 of 5 SIGTERMs ended in SIGSEGV). And a Ctrl-C in the read comes twice (polars' own
hook raises it, the guard's put-off copy is raised 10 ms later at the next call: the ``finally``'s
first). The commands set the hold as their ``finally``'s first statement, then wait with
``fast.warmed`` (``CtrlC.wait_held``). Here the warm-up is a stand-in thread (2 s) registered as
``fast.warm_up`` registers its own, the input's read is interrupted at once (a Ctrl-C), and a SIGTERM
lands 0.2 s into the wait, or at the ``finally``'s first call (a profile hook sends it there). Not a
second SIGINT: a background job starts with SIGINT ignored, and the guard leaves an ignored signal so.
The stand-in must have finished before the exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import require_fast

_ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent(
    """
    import atexit, os, signal, sys, threading, time
    import dropengine.cli.backtest as b
    import dropengine.cli.replay as r
    import dropengine.fast as fast

    finished = []

    def work():
        try:
            time.sleep(2.0)
            finished.append(1)
        finally:
            done.set()

    done = threading.Event()

    def warm_up(signals=True):  # (registered as fast.warm_up registers its thread: warmed() waits for it)
        thread = threading.Thread(target=work, daemon=True)
        fast._WARMING[thread] = done
        thread.start()
        return thread

    def read(*args, **kwargs):
        # the read interrupted by a Ctrl-C, then a SIGTERM while the command waits for the warm-up
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        raise KeyboardInterrupt

    fast.warm_up = warm_up  # (the commands import it from dropengine.fast when they use it)
    r.replay_batch = b.load_table = read
    atexit.register(lambda: print("WARM-UP FINISHED" if finished else "WARM-UP CUT SHORT", file=sys.stderr))
    sys.argv = ["dropengine", *sys.argv[1:]]
    from dropengine.cli import run
    run()
    """
)

# the SIGTERM at the finally's first Python call instead (a profile hook armed by the read's raise)
_AT_FIRST_CALL = _CHILD.replace(
    "    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()\n    raise KeyboardInterrupt\n",
    """    def again(frame, event, arg):
        if event == "call":
            sys.setprofile(None)
            os.kill(os.getpid(), signal.SIGTERM)  # (handled at once: in the call that begins)
    sys.setprofile(again)
    raise KeyboardInterrupt
""",
)

_COMMANDS = {
    "replay": ["replay", "--engine", "batch", "-q", "{src}", "--output", "{out}"],
    "backtest": ["backtest", "-q", "--close", "last", "{src}"],
}


@pytest.mark.parametrize("when", ["during the wait", "at the finally's first call"])
@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_the_command_waits_for_its_warm_up_through_a_second_signal(tmp_path: Path, command: str, when: str) -> None:
    child = _CHILD if when == "during the wait" else _AT_FIRST_CALL
    assert "setprofile" in child or when == "during the wait"
    src = tmp_path / "q.ndjson"
    src.write_text("")
    argv = [a.format(src=src, out=tmp_path / "a.parquet") for a in _COMMANDS[command]]
    done = subprocess.run([sys.executable, "-c", child, *argv], capture_output=True, text=True, timeout=60, cwd=_ROOT)
    assert done.returncode in (130, 143), done.stderr
    assert "WARM-UP FINISHED" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_signal_in_an_own_finalizer_or_a_marked_callback_is_put_off_and_elsewhere_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dropengine's own finalizers (``__del__``, e.g. fast.kernel's ArrowText: reread21's RR21-7) and
    a function marked :func:`~dropengine.cli.interrupt.callback` (replay's collector callback: C21-3)
    are run by the interpreter, which prints and drops a raise there: a signal landing in one is put
    off (sent again later). Another package's finalizer is not (RR21-11: a put-off signal can meet a
    hand-over to another owner's handlers and be lost, review25's R25-2), nor any other own frame."""
    import os
    import sys
    from types import SimpleNamespace

    import dropengine
    from dropengine.cli import interrupt

    sent: list[int] = []
    monkeypatch.setattr(interrupt, "_put_off", sent.append)
    guard = interrupt.CtrlC()
    # (a finalizer whose code is dropengine's: compiled under a file name in the package)
    own = os.path.join(os.path.dirname(dropengine.__file__), "finalized.py")
    space: dict[str, object] = {"guard": guard, "sys": sys}
    source = "class Finalized:\n    def __del__(self):\n        guard._handler(15, sys._getframe())\n"
    exec(compile(source, own, "exec"), space)

    def collected() -> None:
        guard._handler(15, sys._getframe())

    def plain() -> None:
        guard._handler(15, sys._getframe())

    space["Finalized"]()  # type: ignore[operator]  # (dropped at once: the interpreter runs its finalizer)
    assert sent == [15]
    monkeypatch.setattr(interrupt, "_CALLBACKS", [])
    interrupt.callback(collected)
    collected()
    assert sent == [15, 15]
    with pytest.raises(KeyboardInterrupt):
        plain()
    elsewhere = SimpleNamespace(f_code=SimpleNamespace(co_filename=os.path.abspath(__file__), co_name="__del__"))
    with pytest.raises(KeyboardInterrupt):
        guard._handler(15, elsewhere)
    assert sent == [15, 15]


_MARKED = textwrap.dedent(
    """
    import os, signal, sys, time
    import dropengine.cli.replay as r

    real = r.replay_batch

    def replay_batch(*args, **kwargs):
        result = real(*args, **kwargs)
        try:  # a signal whose raise is dropped (as in a collector callback): the mark alone is left
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return result

    r.replay_batch = replay_batch
    sys.argv = ["dropengine", *sys.argv[1:]]
    from dropengine.cli import run
    run()
    """
)


def test_a_signal_marked_during_a_detection_that_returned_ends_the_run_after_its_alerts_are_written(
    tmp_path: Path,
) -> None:
    """reread21's RR21-10: the wait for the warm-up after a detection that returned raised a signal
    marked meanwhile, before the alerts were written ("0 alerts written"); the run writes them
    whole, then ends by the signal (130/143), as before session 21."""
    out = tmp_path / "a.parquet"
    argv = [
        "replay",
        "--engine",
        "batch",
        "-q",
        str(_ROOT / "fixtures" / "demo_nba_frames.ndjson"),
        "--output",
        str(out),
    ]
    done = subprocess.run(
        [sys.executable, "-c", _MARKED, *argv], capture_output=True, text=True, timeout=120, cwd=_ROOT
    )
    assert done.returncode == 143, done.stderr
    import polars as pl

    rows = pl.read_parquet(out).height
    assert rows > 0
    assert f"terminated (SIGTERM): {rows} alerts written" in done.stderr, done.stderr


def test_a_warm_up_that_gets_no_thread_is_none_and_leaves_nothing_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """reread21's RR21-3: ``Thread.start`` failing (RuntimeError: can't start new thread) escaped
    ``warm_up`` as a traceback and left its event registered; now it is as if no warm-up ran."""
    import threading

    from dropengine import fast

    require_fast()  # (the warm-up starts only with numba)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    before = dict(fast._WARMING)
    assert fast.warm_up() is None
    assert before == fast._WARMING
