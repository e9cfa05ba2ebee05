"""critic21's C21-4: a wait for a thread that a Ctrl-C interrupted makes every later wait return early.

CPython 3.11's ``Thread.join`` (``_wait_for_tstate_lock``), interrupted by a KeyboardInterrupt while
the thread runs, finds the thread's state lock held (by the running thread itself), releases it and
marks the thread stopped (bpo-45274's cleanup): from then on ``join()`` returns at once and
``is_alive()`` is false while the thread goes on, and the interpreter's exit no longer waits for
it (even a non-daemon thread). dropengine relies on those waits after an interrupt:

- ``replay --engine batch`` joins the numba warm-up thread in a ``finally`` (so that no compile of a
  cold cache runs into the interpreter's teardown: review22's R22-5, a crash in LLVM); the main
  thread usually waits for it first in :func:`dropengine.fast.warmed` (``_compiled_passes``), and a
  Ctrl-C/SIGTERM there made the ``finally``'s join return while the compile went on: with a cold
  ``NUMBA_CACHE_DIR`` and SIGTERM 6-10 s in, the process exited 0.1-0.5 s after the signal with the
  warm-up thread alive (1 of 5 exits was a SIGSEGV, rc -11);
- ``batch._in_thread``'s threads are non-daemon "so an interpreter exiting meanwhile waits for it":
  not after their ``result()`` wait was interrupted.

The thread here is a stand-in for the warm-up (an Event it waits on), interrupted by a SIGALRM whose
handler raises KeyboardInterrupt as the command's guard does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dropengine import fast

from .signalutil import interrupt_after


def test_a_wait_for_the_warm_up_after_an_interrupted_one_still_waits() -> None:
    release = threading.Event()
    finished = threading.Event()

    def warm() -> None:  # (the warm-up: compiling a cold cache for a while)
        release.wait(10)
        time.sleep(0.2)
        finished.set()

    thread = threading.Thread(target=warm, name="dropengine-fast-warm-up", daemon=True)
    thread.start()
    fast._WARMING[thread] = finished  # (as warm_up registers it: the thread and the event its work sets)
    try:
        with pytest.raises(KeyboardInterrupt), interrupt_after(0.2):
            fast.warmed()  # (_compiled_passes' wait: a Ctrl-C lands in it)
        release.set()
        thread.join()  # (replay's finally: must wait for the warm-up to end)
        assert finished.is_set(), "join() returned while the warm-up thread was still running"
    finally:
        release.set()
        finished.wait(10)
        fast._WARMING.pop(thread, None)


_IN_THREAD = textwrap.dedent(
    """
    import signal, sys, time
    from dropengine.analysis import batch

    def work():
        time.sleep(1.0)
        print("WORK DONE", flush=True)  # (the interpreter's exit must wait for this)
        return 1

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    result = batch._in_thread(work)
    try:
        result()
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
    """
)


def test_the_exit_waits_for_a_batch_thread_whose_result_wait_was_interrupted() -> None:
    """``batch._in_thread``: "the thread is not a daemon, so an interpreter exiting meanwhile waits for
    it": also when the caller's wait for its result was interrupted (a Ctrl-C in ``result()``)."""
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    done = subprocess.run([sys.executable, "-c", _IN_THREAD], capture_output=True, text=True, timeout=60, env=env)
    assert "INTERRUPTED" in done.stdout, done.stdout + done.stderr
    assert "WORK DONE" in done.stdout, "the interpreter exited while the batch thread was still working"
