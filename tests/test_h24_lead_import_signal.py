"""cli.interrupt.CtrlC never raises inside the import machinery's own code (review24's R24-2): a
KeyboardInterrupt raised in a module lock's weakref callback is swallowed with the import lock held,
and a process whose main thread and numba warm-up thread both import then hangs for ever. The
signal is sent again shortly instead; raised in any other frame (a module's own code included) as
before."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace
from typing import Any

import pytest

from dropengine.cli.interrupt import CtrlC


def _frame(filename: str) -> Any:
    return SimpleNamespace(f_code=SimpleNamespace(co_filename=filename, co_name="f"))


def test_a_signal_in_the_import_machinery_is_sent_again_not_raised_there() -> None:
    guard = CtrlC()
    with guard:
        guard._handler(signal.SIGINT, _frame("<frozen importlib._bootstrap>"))  # (no raise here)
        with pytest.raises(KeyboardInterrupt):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the signal comes back, now outside the machinery
                time.sleep(0.005)
    assert guard.signum == signal.SIGINT


def test_a_signal_elsewhere_is_raised_at_once() -> None:
    guard = CtrlC()
    with guard, pytest.raises(KeyboardInterrupt):
        guard._handler(signal.SIGTERM, _frame("/somewhere/module.py"))
    with guard, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
