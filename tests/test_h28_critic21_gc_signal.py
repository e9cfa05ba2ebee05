"""critic21's C21-3: a Ctrl-C (or SIGTERM) that lands while ``replay``'s collector callback runs.

``cli.replay._long_lived_frozen`` freezes what survives a collection from a ``gc.callbacks`` entry
(``survivors``). A signal handled in that callback's frame was raised there by :class:`CtrlC`'s
handler: CPython reports an exception leaving a collector callback as "Exception ignored in ..."
with a traceback on stderr, and drops it, so the run was not interrupted (it went on to its end).
The interrupt policy (``cli/interrupt.py``): one line and exit 130/143, never a traceback, and the
run interrupted.

The signal is made to land in the callback deterministically: ``gc.freeze`` (which the callback
calls) is replaced by a C callable that raises SIGINT in the process, so the handler runs at the
callback's next bytecode, in its frame. Run in a child process: the guard installs process-wide signal handlers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent(
    """
    import functools, gc, signal, sys, time
    from dropengine.cli.interrupt import CtrlC
    from dropengine.cli.replay import _long_lived_frozen

    # (a C callable: the handler runs at the next bytecode, which is the callback's own)
    gc.freeze = functools.partial(signal.raise_signal, signal.SIGINT)
    with CtrlC():
        try:
            with _long_lived_frozen():
                junk = [[i] for i in range(100)]
                gc.collect(1)
                end = time.monotonic() + 2.0  # the run goes on: an interrupt put off lands here
                while time.monotonic() < end:
                    pass
            print("RUN NOT INTERRUPTED", file=sys.stderr)
        except KeyboardInterrupt:
            print("RUN INTERRUPTED", file=sys.stderr)
    """
)


def test_a_signal_in_the_collector_callback_interrupts_the_run_without_a_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, env=env)
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "RUN INTERRUPTED" in done.stderr, done.stderr
