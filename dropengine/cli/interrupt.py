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
(~0.3-2 ms: "Aborted!"). From the end of a command's run to the process's exit (its output whole
by then; the interpreter's shutdown, ~50-90 ms) a signal is held by a tail guard: after a run that
succeeded it ends the process as one, after one that failed or was interrupted that run's status
and line stand (:meth:`CtrlC.running`, :func:`tail_end`; break26's B26-2 was click's "Aborted!").
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator
from typing import Any, Final, NoReturn, TypeVar

import click

__all__ = ["CtrlC", "callback", "exit_status", "launched", "launching", "said", "tail_end"]


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
        # Marked pending first, whatever follows: where the raise below cannot end the run at once
        # (put off, or dropped by the interpreter in a collector, weakref or ctypes callback:
        # review24's R24-11), the run still ends by the policy at its next deferred write or its end,
        # which check the mark. Every command ends its run where it catches the raise, so the mark
        # never raises twice.
        self.pending = True
        if self.defer:
            return
        # (a signal that lands in this handler itself, a second one while the first is put off,
        # is put off too: raised here, it would leave through the frame the first one interrupted)
        # (dropengine's own finalizers, ``__del__``, are the interpreter's calls, as a marked :func:`callback`
        # is: a raise there is printed as "Exception ignored" and dropped, e.g. fast.kernel's ArrowText:
        # RR21-7; only its own: another package's put off could meet a hand-over, R25-2 and RR21-11)
        if frame is not None and (
            frame.f_code in _HANDLING
            or frame.f_code in _CALLBACKS
            or (frame.f_code.co_name == "__del__" and frame.f_code.co_filename.startswith(_OWN))
            or _called_back(frame.f_code.co_filename)
        ):
            _put_off(signum)
            return
        raise self._raises

    def wait_held(self, wait: Callable[[], object], held: bool, *, raise_pending: bool = True) -> None:
        """``wait()`` (for work that must end before the process does: the numba warm-up, whose
        compile cut short by the exit can crash it, review22's R22-5) with the signals held, then the
        hold as it was (``held``); a signal received meanwhile (or marked before) is raised then, as
        :meth:`deferred` raises it, unless the hold was on before or ``raise_pending`` is false: a
        caller whose work is done (replay's detection returned its alerts) leaves the mark to its
        run's end, which writes what was found first (reread21's RR21-10: raised here, a finished
        detection's alerts were thrown away, "0 alerts written").

        For a ``finally``, whose caller sets the hold itself as the block's first statement, before
        any call (``held, guard.defer = guard.defer, True``), then calls this: a ``finally`` entered
        by an interrupt can meet a second raise of it at its first call (polars' own hook raises a
        Ctrl-C in a read, and this guard's put-off copy of it is raised 10 ms later wherever the
        run is: critic21's C21-7), and ``with self.deferred()`` is such a call (contextlib's
        frame). ``wait`` must not be a ``Thread.join`` of a running thread: CPython 3.11's join,
        interrupted, marks the thread stopped (C21-4); :func:`dropengine.fast.warmed` waits on an
        event."""
        try:
            wait()
        finally:
            self.defer = held
        if self.pending and not held and raise_pending:
            raise self._raises

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold the signals while the block runs (a write that must be whole); one received meanwhile
        is raised when the block ends. Also when the block fails: an error that follows a signal
        (a cluster start cut short, a usage error found after it) ends the run as the signal does,
        the error chained to the raise (review24's R24-7: a ClusterError's line and exit 1 were
        printed instead)."""
        self.defer = True
        try:
            yield
        except Exception as exc:
            if self.pending:
                raise self._raises from exc
            raise
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
        if self.pending:  # (put off or dropped, not raised yet: ended here, before a hand-over can lose it)
            self.end(what)

    def end(self, what: str) -> NoReturn:
        """End the run after the signal received: its one line on stderr (``what`` follows the
        signal's name: what was interrupted and what was, or was not, written), exit 130 or 143."""
        self.defer = True  # (a second Ctrl-C while the line is written: held, the exit is under way)
        click.echo(f"{said(self.signum)}{what}", err=True)
        self._let_go()  # (a second signal while the process exits: the tail guard's, held: critic20's C20-3)
        sys.exit(exit_status(self.signum))

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The command's run after its start (``with guard``: the handlers kept), for a command whose
        block this is to its end (``replay``, ``backtest``, ``simulate``). When the block ends, however
        it ends, in the executable (inside :func:`launching`'s block), the handlers are not set back:
        the signals go to :func:`_tail`'s guard, which holds them until :func:`tail_end`, so a signal
        landing while the process finishes (its output whole by then: the interpreter's shutdown,
        ~50-90 ms) is that guard's one line and 130/143 after a run that succeeded (else the run's own
        status and line stand), not click's "Aborted!" and exit 1 or a SIGTERM's death (break26's
        B26-2). In-process (:func:`dropengine.cli.main`, tests, a notebook) they are set back as
        ``with guard`` does: the caller's own handlers rule again."""
        self.__enter__()
        try:
            yield
        finally:
            self._let_go()

    def _let_go(self) -> None:
        """The run is over (:meth:`running`'s end, :meth:`end`): a command's guard inside the executable
        hands its signals straight to the tail guard (no window between the two handlers), which holds
        them until :func:`tail_end`; anywhere else the old handlers are set back (``__exit__``)."""
        if _LAUNCH and self._old and self not in _LAUNCH:  # (run()'s command; the start guard hands over itself)
            tail = _tail()
            tail.defer = True  # (held: the run is over, nothing is left to interrupt)
            for sig in self._old:
                signal.signal(sig, tail._handler)
            tail._old, self._old = self._old, {}
        else:
            self.__exit__()

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


#: The packages whose Python code native code runs as a callback on the main thread, where a raise
#: is not an interrupt: polars (its Rust, e.g. ``Categories._from_py_categories`` while a Parquet
#: schema is read: Rust unwraps the error, a ``PanicException`` and exit 1: review24's R24-12), numba
#: (compiled code asking for its constants: nine chained SystemErrors, R24-1) and llvmlite (LLVM's
#: object cache through ctypes: dropped, or a crash, break24's B24-5). Known by where each was
#: imported from (its ``__path__``), whatever that folder is called: site-packages, a
#: ``pip install --target`` folder, a vendored one (break25's B25-4: a name test missed them).
_CALLING_BACK: Final = ("polars", "numba", "llvmlite")


def _called_back(filename: str) -> bool:
    """Whether a signal handled in a frame of ``filename`` is put off rather than raised there: in
    code that native code may be running as a callback, where a raise is not an interrupt.

    One rule for every such place: the import machinery's own code (a KeyboardInterrupt in a module
    lock's callback is swallowed with the import lock held, and the main thread and the numba
    warm-up thread then wait for each other for ever: review24's R24-2) and the Python code of the
    packages that native code calls back (:data:`_CALLING_BACK`). Which frame a native library
    called is not visible from Python, so every frame of theirs is put off: the signal is marked and
    sent again 10 ms later (:func:`_put_off`), by when the run is most likely in code that called
    them, where it is raised. Any other package's code is interrupted at once, as dropengine's, the
    standard library's and a script's are: a put-off signal that a hand-over to another owner's
    handlers meets is dropped (:func:`_again`), and every package frame put off made that window
    (uvicorn's, the last code before ``serve``'s own handlers: the signal was lost, the server served
    on: review25's R25-2)."""
    if filename.startswith("<frozen importlib"):
        return True
    for name in _CALLING_BACK:  # (a callback from one means it is imported: its frames are under its __path__)
        module = sys.modules.get(name)
        if module is not None and any(filename.startswith(p + os.sep) for p in getattr(module, "__path__", ())):
            return True
    return False


def _put_off(signum: int) -> None:
    """Send ``signum`` again 10 ms later (:func:`_again`), from a thread nobody waits for:
    ``threading.Thread.start`` waits until the thread runs, and on a loaded machine the re-sent
    signal itself was handled in that wait, a frame of the standard library, and raised there:
    inside the handler, into the native code the first signal had interrupted (a
    ``PanicException`` once in 6 runs of the R24-12 test at load 5). No thread to be had (the
    interpreter's shutdown): the mark alone ends the run, at its next check."""
    with contextlib.suppress(RuntimeError):
        _thread.start_new_thread(_again_later, (signum,))


def _again_later(signum: int) -> None:
    time.sleep(0.01)
    _again(signum)


def _again(signum: int) -> None:
    """A signal :meth:`CtrlC._handler` put off (it landed in code a native library may have
    called) sent again, only while a guard's handler is still set for it: a guard let go meanwhile
    (a run ending, the start guard handing over) would have it kill the process or raise a
    traceback (break24's B24-7)."""
    if isinstance(getattr(signal.getsignal(signum), "__self__", None), CtrlC):
        os.kill(os.getpid(), signum)


#: dropengine's own code: where its files are (a finalizer there is put off, see the handler).
_OWN: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

#: The handler's own code and what it calls: a signal landing there is put off (see the handler).
_HANDLING: Final = (CtrlC._handler.__code__, _called_back.__code__, _put_off.__code__)

#: dropengine's own functions the interpreter calls back (:func:`callback`): a signal landing in
#: one is put off as in :func:`_called_back`'s frames.
#: (A list, looked up by equality as ``_HANDLING``: a frame's ``f_code`` need not be hashable.)
_CALLBACKS: Final[list[types.CodeType]] = []

_F = TypeVar("_F", bound=Callable[..., Any])


def callback(fn: _F) -> _F:
    """Mark ``fn`` as run by the interpreter as a callback (a ``gc.callbacks`` entry): a signal the
    guard handles while it runs is put off (:func:`_put_off`) rather than raised in it, where
    CPython would print "Exception ignored ..." with a traceback and drop the interrupt (the run
    went on to its end; critic21's C21-3: replay's collector callback). Returns ``fn``."""
    if fn.__code__ not in _CALLBACKS:
        _CALLBACKS.append(fn.__code__)
    return fn


#: The guard that holds the signals from the end of a command's run to the process's exit (:meth:`CtrlC.running`).
_TAIL: list[CtrlC] = []


def _tail() -> CtrlC:
    """The process's tail guard (:meth:`CtrlC.running`), made once."""
    if not _TAIL:
        _TAIL.append(CtrlC())
    return _TAIL[0]


def tail_end() -> None:
    """The executable's last word (:func:`dropengine.cli.group.run`'s ``finally``, after the command):
    a signal the tail guard held (one that landed after the command's run ended) ends a run that
    succeeded (exit status 0) as one does: its line and exit 130 (143 after SIGTERM), its output
    whole. After a run that did not (an error's status and line, or the run's own interrupted line:
    it ended by a signal already) the held signal adds nothing: that status stands, no second line
    (critic20's C20-2, C20-3). The guard keeps holding any later one (the interpreter's shutdown):
    the process is exiting. Nothing held: a no-op."""
    if not (_TAIL and _TAIL[0].pending):
        return
    ending = sys.exc_info()[1]  # (click's standalone mode ends every run by SystemExit with its status)
    if ending is not None and not (isinstance(ending, SystemExit) and ending.code in (0, None)):
        return
    tail = _TAIL[0]
    with contextlib.suppress(OSError, ValueError):  # (stderr closed: a reader gone, ``| head``)
        click.echo(f"{said(tail.signum)} as the run ended: its output was written whole", err=True)
    sys.exit(exit_status(tail.signum))


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
