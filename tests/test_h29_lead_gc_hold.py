"""reread21's RR21-6: a second signal while ``replay``'s collector block ends.

``cli.replay._long_lived_frozen`` registers a ``gc.callbacks`` entry (``_survivors``) for the run and
removes it when the block ends, however it ends. A first Ctrl-C ends the block; a second one landing
in the removal raised there and left the callback registered: in an in-process caller (``cli.main``
called from a program or a notebook) every later collection then froze what survived it. With the
command's guard the block's end holds the signals first (before any call): the second signal is
marked for the command's end, and the callback goes.

The signal is made to land in the removal deterministically: ``gc.callbacks`` is replaced by a list
whose ``remove`` raises SIGINT in the process before removing (the handler runs at its next bytecode,
in that frame). Run in a child process: the guard installs process-wide signal handlers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent(
    """
    import gc, signal, sys
    from dropengine.cli.interrupt import CtrlC
    from dropengine.cli.replay import _long_lived_frozen, _survivors

    class Landing(list):
        def remove(self, item):
            signal.raise_signal(signal.SIGINT)  # (a C call: the handler runs at the next bytecode, here)
            super().remove(item)

    gc.callbacks = Landing(gc.callbacks)
    guard = CtrlC()
    with guard:
        try:
            with _long_lived_frozen(guard):
                raise KeyboardInterrupt  # the first signal ends the block
        except KeyboardInterrupt:
            pass
    print("REGISTERED" if _survivors in gc.callbacks else "REMOVED", "pending" if guard.pending else "no mark",
          "frozen" if gc.get_freeze_count() else "unfrozen", file=sys.stderr)
    """
)


def test_a_second_signal_at_the_blocks_end_leaves_no_callback_registered() -> None:
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    # the callback gone, the collector unfrozen, and the second signal marked for the command's end
    assert "REMOVED pending unfrozen" in done.stderr, done.stderr
