"""The command line's interrupt policy: Ctrl-C (SIGINT) and SIGTERM (a service manager's stop).

One policy for every command that reads input and writes a result (``replay``, ``backtest``), for
the start of the long-running ones (``serve`` until uvicorn's handlers, ``ingest`` and ``detect``
until their event loop's) and for the executable's own start (:func:`launching`): the run ends
with exit 130 (143 after SIGTERM) and one line on stderr saying what was interrupted and what was
(not) written; never click's "Aborted!" with exit 1, a traceback, or half an output file.
:class:`CtrlC` is the guard a command sets at its first line; :func:`launching` covers what comes
before the command's module is loaded (click's parsing of the group's options, the module's
import: ~0.35 s for ``backtest``) in :func:`dropengine.cli.group.run` only, so a caller running
:func:`dropengine.cli.main` in its own process keeps its signal handlers. Not covered:
``import dropengine`` before ``run`` (~0.1-0.2 s: a KeyboardInterrupt traceback), and click's
parsing of the command's own options between the module's load and the command's first line
(~0.3-2 ms: "Aborted!").
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, Final, NoReturn

import click

__all__ = ["CtrlC", "exit_status", "launched", "launching", "said"]


def said(signum: int | None) -> str:
    """How a run's end by ``signum`` is named in its line (a Ctrl-C unless it was SIGTERM)."""
    return "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"


def exit_status(signum: int | None) -> int:
    """The exit status after ``signum``: 143 after SIGTERM, else 130 (the shell's 128 + signal)."""
    return 143 if signum == signal.SIGTERM else 130


#: The line's end after a signal while a command starts (what was not done).
_STARTING: Final = " while starting: no input read, no output written"


class CtrlC:
    """SIGINT (Ctrl-C) and SIGTERM raise ``raises`` (KeyboardInterrupt), except while alerts or a
    report are being written: then the signal is held until the write is done, so that it never
    leaves half a JSON line, half a file (or the same alerts twice) in the output. ``signum``: the
    last one received."""

    def __init__(self, raises: type[BaseException] = KeyboardInterrupt) -> None:
        self.defer = False
        self.pending = False
        self.signum: int | None = None
        self._raises = raises
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.signum = signum
        if self.defer:
            self.pending = True
            return
        if frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
            # Never raised inside the import machinery's own code: in a module lock's callback the
            # exception is swallowed ("Exception ignored") with the import lock held, and the
            # main thread and the numba warm-up thread then wait for each other for ever
            # (review24's R24-2). Sent again shortly, when the import has moved on; an import's
            # module code itself is interrupted as anywhere else.
            again = threading.Timer(0.01, _again, (signum,))
            again.daemon = True
            again.start()
            return
        # (also marked pending: where the interpreter drops what a handler raises, in a collector,
        # weakref or ctypes callback, the run still ends by the policy at its next deferred write or
        # its end, which check it: review24's R24-11. Every command ends its run where it catches
        # the raise, so the mark never raises twice.)
        self.pending = True
        raise self._raises

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.defer = True
        try:
            yield
        finally:
            self.defer = False
        if self.pending:
            raise self._raises

    @contextlib.contextmanager
    def starting(self, what: str = _STARTING) -> Iterator[None]:
        """The command's start-up, before any output exists (its imports: the cluster extra's; the
        inputs' sizes, the progress bar): the handlers are set on entry (two calls: a start that is
        not interrupted pays nothing more) and stay for the run (``with guard``). A signal here ends
        the command at once: one line on stderr (the signal's name, then ``what``: a command that
        writes no output file says what it did not do, e.g. ``serve``'s "nothing served"), exit 130
        (143 after SIGTERM), a previous output file as it was. An import it cut short is never used
        again: the process exits."""
        self.__enter__()
        try:
            yield
        except self._raises:
            self.end(what)
        except BaseException:
            self.__exit__()
            raise

    def end(self, what: str) -> NoReturn:
        """End the run after the signal received: its one line on stderr (``what`` follows the
        signal's name: what was interrupted and what was, or was not, written), exit 130 or 143."""
        self.defer = True  # (a second Ctrl-C while the line is written: held, the exit is under way)
        click.echo(f"{said(self.signum)}{what}", err=True)
        self.__exit__()
        sys.exit(exit_status(self.signum))

    def __enter__(self) -> CtrlC:
        if self._old:  # (set by starting(): the run keeps them)
            return self
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread (an embedding caller): leave signals alone
            self._old = {}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def _again(signum: int) -> None:
    """A signal :meth:`CtrlC._handler` put off (it landed in the import machinery) sent again, only
    while a guard's handler is still set for it: a guard let go meanwhile (a run ending, the start
    guard handing over) would have it kill the process or raise a traceback (break24's B24-7)."""
    if isinstance(getattr(signal.getsignal(signum), "__self__", None), CtrlC):
        os.kill(os.getpid(), signum)


class _Launching(BaseException):
    """A signal before the command's module is loaded. Not a KeyboardInterrupt: click would turn
    that into "Aborted!" and exit 1; this passes through click to :func:`launching`."""


#: The executable's start guard while it is on (:func:`launching`), until :func:`launched`.
_LAUNCH: list[CtrlC] = []


@contextlib.contextmanager
def launching() -> Iterator[None]:
    """The executable's start (:func:`dropengine.cli.group.run`): a Ctrl-C or SIGTERM before the
    command's module is loaded (its import, ~0.35 s for ``backtest``) ends the process as one during
    a command's own start does: one line, 130/143, nothing touched. When the module is loaded
    (:func:`launched`), the signals go back to what they were: the command's own policy decides
    from there (its :class:`CtrlC`, a server's handlers, Python's defaults). The ~0.1-0.2 s of
    ``import dropengine`` before this runs are not covered (a KeyboardInterrupt traceback)."""
    guard = CtrlC(_Launching)
    with guard, guard.starting():
        _LAUNCH.append(guard)
        try:
            yield
        finally:
            _LAUNCH.remove(guard)


def launched() -> None:
    """The command's module is loaded (:func:`dropengine.cli.group.main`, called by click before the
    command runs): the executable's start
    guard, if on, sets the signal handlers back as they were; a signal it received whose raise the
    interpreter dropped (in a callback: review24's R24-11) ends the process here, as during the start.
    A no-op in-process (no :func:`launching`)."""
    for guard in _LAUNCH:
        if guard.pending:
            guard.end(_STARTING)
        guard.__exit__()
