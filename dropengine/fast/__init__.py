"""Compiled accelerators (optional): the batch kernel of SPEC 3 and 10 in one pass over integer
key ids, jitted by numba when the ``[fast]`` extra is installed.

This module never imports numba itself: :func:`available` only looks whether it could be
imported, and :mod:`dropengine.fast.kernel` (which does import it) is loaded by its callers on
first use, so ``import dropengine`` and ``import dropengine.analysis.batch`` stay free of it.
Without numba every caller takes its pure path, with identical results.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any, Final, Literal, TypeVar, cast

from ..core.errors import ConfigError, short_repr

__all__ = ["ACCELS", "Accel", "available", "resolve_accel", "warm_up", "warmed"]

#: How a batch call may run: ``auto`` (compiled when numba is there), ``pure`` (polars only),
#: ``fast`` (compiled, or a ConfigError when numba is missing).
Accel = Literal["auto", "pure", "fast"]
ACCELS: Final[tuple[str, ...]] = ("auto", "pure", "fast")


def available() -> bool:
    """Whether the compiled path can be used: numba importable and ``DROPENGINE_PURE`` not ``1``.

    Importable means it imports: an installed numba that fails to (e.g. built for another numpy)
    is not available, so ``auto`` runs pure. The import is tried once, at the first call (a
    caller asking is about to use it), never at ``import dropengine``."""
    if os.environ.get("DROPENGINE_PURE") == "1":
        return False
    if not _IMPORTS:
        ok = importlib.util.find_spec("numba") is not None
        if ok:
            try:
                import numba  # noqa: F401
            except Exception:  # any failure to load it: not available
                ok = False
        _IMPORTS.append(ok)
    return _IMPORTS[0]


#: whether numba imported (one entry, after the first call of :func:`available`)
_IMPORTS: list[bool] = []


def resolve_accel(accel: str) -> bool:
    """``True`` when a call with ``accel`` runs compiled. ``auto``: when :func:`available`;
    ``pure``: never; ``fast``: always, or a ConfigError when numba is missing."""
    if accel == "pure":
        return False
    if accel == "auto":
        return available()
    if accel == "fast":
        if not available():
            raise ConfigError("accel: 'fast' needs numba: pip install 'dropengine[fast]'"
                              + (" (DROPENGINE_PURE=1 is set)" if os.environ.get("DROPENGINE_PURE") == "1" else ""))
        return True
    raise ConfigError(f"accel: {short_repr(accel)} is not one of {', '.join(ACCELS)}")


def _ro(a: Any, dtype: Any) -> Any:
    """``a`` as a contiguous read-only array of ``dtype``, without a copy where it is one already.
    numba compiles a function once per argument type, and read-only (a polars buffer) and writable
    arrays are different types: every argument is made read-only, so one machine code serves all
    callers (and one cache entry, one compile). (Here, not in ``kernel``: ``signals`` uses it on
    its interpreted path too, without importing numba.)"""
    import numpy as np

    out = np.ascontiguousarray(a, dtype=dtype)
    if out.flags.writeable:
        out = out.view()
        out.flags.writeable = False
    return out


#: Rows are numbered in int32 by the compiled passes (half the memory of int64 in every per-row
#: id and move array): at most this many rows.
MAX_ROWS: Final = 2**31 - 1


def _ro32(a: Any, name: str) -> Any:
    """``a`` as a read-only int32 array (:func:`_ro`), checked to fit where it is wider (a
    ConfigError naming ``name`` and the range otherwise): ids and codes of rows are int32."""
    import numpy as np

    a = np.asarray(a)
    if a.dtype != np.int32 and a.size and (int(a.min()) < -(2**31) or int(a.max()) > MAX_ROWS):
        raise ConfigError(f"{name}: values beyond int32 ({int(a.min())} .. {int(a.max())})")
    return _ro(a, np.int32)


_F = TypeVar("_F", bound=Callable[..., Any])


def interruptible(fn: _F) -> _F:
    """``fn`` (a compiled function, as Python calls it) with Ctrl-C coming out as itself.

    A SIGINT during a numba call that released the GIL (``nogil``) makes the dispatcher return
    with the KeyboardInterrupt pending, which CPython reports as ``SystemError: ... returned a
    result with an exception set`` caused by it: a caller (``replay --engine batch``'s exit 130
    on Ctrl-C, a notebook's interrupt) would see a crash instead of an interrupt (break17 B17-2).
    Every compiled function called from Python goes through this; numba's calls between
    compiled functions do not."""

    @wraps(fn)
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except SystemError as exc:
            # the interrupt may sit several causes down: a SIGINT/SIGTERM inside numba's unpickling
            # of a constant leaves one SystemError per constant the compiled code still asks for
            # (9 seen: review24's R24-1), so the whole chain is walked (once round a cycle)
            cause: BaseException | None = exc
            seen: set[int] = set()
            while cause is not None and not isinstance(cause, KeyboardInterrupt) and id(cause) not in seen:
                seen.add(id(cause))
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, KeyboardInterrupt):
                raise cause from None
            raise

    return cast(_F, call)


def warm_up(signals: bool = True) -> threading.Thread | None:
    """Start importing numba and loading the cached kernel in a background thread (a caller that
    knows it will detect, e.g. ``replay --engine batch``, overlaps it with reading its input);
    the thread, or ``None`` when the compiled path is not available. Harmless to call twice.

    ``signals``: also the signals pass (:mod:`dropengine.fast.signals`; a run detecting price drops
    alone never calls it). With a cold numba cache (a new install or checkout) loading it means
    compiling it, seconds: a run that does not need it and exits first would kill the thread
    mid-compile (the cache never written; at 10M, 2 of 19 such processes crashed in LLVM during
    teardown, review22's R22-5). A caller that may exit before detecting should wait for it with
    :func:`warmed` (not ``Thread.join``: CPython 3.11's join, interrupted while the thread runs, marks
    it stopped and the exit no longer waits for it: critic21's C21-4); the CLI's commands do so with
    the signals held (``CtrlC.wait_held``).

    It never freezes the collector (``gc.freeze``): the caller may be a program that goes on
    working (``dropengine.cli.main`` in-process, a notebook), whose cycles must stay collectable
    (break16's B16-2, review22's R22-1: a buffered file in a frozen cycle lost its data). The
    executable freezes at its exit instead (:func:`dropengine.cli.group.run`), which is where the
    time was (a freeze here gained nothing measurable beyond it)."""
    # only the cheap checks here: the import itself (available()'s) happens in the thread
    if os.environ.get("DROPENGINE_PURE") == "1" or importlib.util.find_spec("numba") is None:
        return None

    done = threading.Event()

    def load() -> None:
        try:
            if not available():  # installed but broken: the caller's detect runs pure
                return
            from . import kernel

            kernel.compile_all()
            if signals:
                from . import signals as signals_pass

                signals_pass.compile_all()
        finally:
            done.set()  # (what warmed() waits on: no join of a running thread, C21-4)

    thread = threading.Thread(target=load, name="dropengine-fast-warm-up", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # (no thread to be had: the caller's detect loads the kernels itself, as without one)
        return None
    # (registered once started: a thread that never starts (no thread to be had, an interrupt at the start)
    # would be waited for on an event nothing sets: reread22's RR22-5)
    _WARMING[thread] = done
    return thread


#: The warm-up threads started and not yet waited for by :func:`warmed`, each with the event its work
#: sets when it ends (done or failed): one registry, so a thread is never waited for without its event.
_WARMING: dict[threading.Thread, threading.Event] = {}


def warmed() -> None:
    """Wait for the warm-up threads :func:`warm_up` started (none: return at once). A caller about
    to run compiled code calls it first, so that with a cold numba cache the compiling happens in
    the warm-up thread and never in the caller's: a Ctrl-C in the caller can then not leave numba's
    compiler lock held by an interrupted compile, which hung the process's exit on the price
    pass's thread waiting for it (break22's B22-8).

    It never waits in ``Thread.join`` for a thread still running: CPython 3.11's join, interrupted by a
    Ctrl-C while the thread runs, releases the thread's own state lock and marks it stopped, so every
    later join returns at once and the interpreter's exit no longer waits for it (critic21's C21-4:
    replay's ``finally`` join then let a cold-cache compile run into the teardown). It waits for the
    event the thread's work sets when it ends (an interrupted event wait leaves the thread as it was),
    then joins a thread whose work is over."""
    for thread, done in tuple(_WARMING.items()):  # (a copy: two callers at once both wait, neither pops another's)
        done.wait()
        thread.join()  # (its work is over: at most the return from its target is waited for)
        _WARMING.pop(thread, None)  # (the other caller may have taken it off already)
