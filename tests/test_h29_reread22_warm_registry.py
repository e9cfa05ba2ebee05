"""reread22's RR22-5: a warm-up whose thread never starts leaves nothing registered.

``fast.warm_up`` registered its thread with the event its work sets (``fast._WARMING``) before
``thread.start()`` (dff7fe2 to 386829a; since d709b45 once started). A start that does not happen -- a
KeyboardInterrupt at ``start()``'s first bytecode (``warm_up`` is public: a notebook's Ctrl-C), or another
thread's ``warmed()`` snapshot taken while a start fails -- left the unstarted thread registered: its
event is never set, and every later ``fast.warmed()`` (the first statement of each compiled detect)
waited for ever. Run in a child process: a hang must fail the test, not stall the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .conftest import require_fast

_CHILD = textwrap.dedent(
    """
    import sys, threading
    from dropengine import fast

    real_start = threading.Thread.start

    def interrupted_start(self):
        if self.name == "dropengine-fast-warm-up":
            raise KeyboardInterrupt  # (as the signal handler raises at start()'s first bytecode)
        return real_start(self)

    threading.Thread.start = interrupted_start
    try:
        fast.warm_up(signals=False)
    except KeyboardInterrupt:
        pass
    threading.Thread.start = real_start
    ended = threading.Event()
    threading.Thread(target=lambda: (fast.warmed(), ended.set()), daemon=True).start()
    print("RETURNED" if ended.wait(5) else "WAITING", len(fast._WARMING))
    """
)


def test_a_warm_up_interrupted_before_its_thread_starts_is_never_waited_for() -> None:
    require_fast()
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["RETURNED", "0"], done.stdout
