"""A KeyboardInterrupt raised in the main thread a moment from now, as the command's guard raises it
(the warm-up and batch thread waits' tests: an interrupted wait must leave the thread waitable)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """A KeyboardInterrupt raised in the main thread ``seconds`` from now (by SIGALRM's handler, as
    the command's guard raises one); the alarm and the previous handler restored on leaving."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
