"""break24 (session 17): a signal the guard re-sends must not outlive the guard (B24-7).

Since aecac13 (review24's R24-2) cli/interrupt.py's handler does not raise in the import machinery's own
code: it starts a timer that sends the signal again 10 ms later. When the guard lets go within those
10 ms (the end of a command, or the executable's start guard handing over to the command's), the
re-sent signal meets the default disposition: a SIGTERM kills the process (-15), a SIGINT raises a
KeyboardInterrupt wherever the program is (a traceback and -2, or click's "Aborted!"), where the policy
is one line and 130/143 (or, the run being over, nothing). Forced: a real child calls the handler as
the interpreter would for a signal that lands in an import (a frame of ``<frozen importlib._bootstrap>``),
then leaves the guard at once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent(
    """
    import importlib.abc, signal, sys, time

    from dropengine.cli.interrupt import CtrlC

    frames = []


    class Grab(importlib.abc.MetaPathFinder):
        # a frame of the import machinery's own code: the caller of a finder
        def find_spec(self, name, path, target=None):
            if name == "break24_no_such_module" and not frames:
                frames.append(sys._getframe(1))
            return None


    if __name__ == "__main__":
        sys.meta_path.insert(0, Grab())
        try:
            __import__("break24_no_such_module")
        except ImportError:
            pass
        assert frames[0].f_code.co_filename.startswith("<frozen importlib"), frames[0].f_code.co_filename
        guard = CtrlC()
        with guard:
            guard._handler(getattr(signal, sys.argv[1]), frames[0])  # (a signal that lands in an import)
        time.sleep(0.3)  # (the guard has let go: the command's last lines, the interpreter's exit)
        sys.exit(0)
    """
)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_re_sent_after_the_guard_let_go_does_not_kill_the_process(name: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD, name], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode >= 0, proc.stderr  # (not killed by the signal's default action)
