"""critic21's C21-4, the warm-up's part: ``fast.warmed()`` interrupted leaves the warm-up thread waitable.

CPython 3.11's ``Thread.join``, interrupted by a KeyboardInterrupt while the thread runs, releases the
thread's own state lock and marks it stopped: later joins return at once while it still runs, and the
interpreter's exit no longer waits for it (a cold-cache compile then ran into the teardown). ``warmed()``
waits for the event the warm-up's work sets when it ends instead, and joins the thread only then: after
a Ctrl-C in ``warmed()`` a later ``join()`` (replay's ``finally``) still waits for the whole warm-up, and
a later ``warmed()`` too. (tests/test_h28_critic21_join.py holds the same for a stand-in thread
registered with its event, not ``warm_up``'s.)
"""

from __future__ import annotations

import threading
import time
from unittest import mock

import pytest

from dropengine import fast

from .conftest import require_fast
from .signalutil import interrupt_after


@pytest.mark.parametrize("then", ["join", "warmed"])
def test_an_interrupted_warmed_leaves_the_warm_up_waitable(then: str) -> None:
    require_fast()
    from dropengine.fast import kernel

    release = threading.Event()
    finished = threading.Event()

    def slow_compile() -> None:  # (a cold cache: compiling for a while)
        release.wait(10)
        time.sleep(0.2)
        finished.set()

    with mock.patch.object(kernel, "compile_all", slow_compile):
        thread = fast.warm_up(signals=False)
        assert thread is not None
        try:
            with pytest.raises(KeyboardInterrupt), interrupt_after(0.2):
                fast.warmed()  # (_compiled_passes' wait: a Ctrl-C lands in it)
            assert thread.is_alive() and not finished.is_set()
            release.set()
            if then == "join":
                thread.join()  # (replay's finally)
            else:
                fast.warmed()
            assert finished.is_set(), "the wait returned while the warm-up was still compiling"
            assert not thread.is_alive()
        finally:
            release.set()
            finished.wait(10)
            thread.join(10)
            fast._WARMING.pop(thread, None)
    assert not fast._WARMING
