"""``serve --state FILE``: the engine snapshot and the alert ring saved and restored, and
the alert-id reservation beside it (``FILE.ids``).

A restart that restores both neither re-primes (the engine remembers every key's price)
nor breaks clients' cursors (same epoch, same sequence, the same buffered alerts). A state
older than ``max_age_s`` is treated as empty: its prices are too old to compare with and
its alerts too old to replay.

The state file is one checksummed unit (version 3; version 2 is read too)::

    magic "dropengine-serve-state\\n" (23 bytes) | version (u16) | body length (u64)
    | SHA-256 of everything else (32 bytes) | body (msgpack: saved_ms, engine, hub, cursors)

so a damaged, truncated, foreign or unreadable file is recognised before any of it is used,
and the server starts empty with one line saying why. Writes are atomic (a temporary file,
fsynced, renamed over the old, the directory fsynced).

The reservation file holds the highest alert id the server may have issued (one line,
checksummed). The server writes it, durably, *before* it issues ids beyond it, in blocks;
at a clean shutdown it is lowered to the last id issued. A restart that finds it above the
state's last id knows the previous run stopped without its final save (kill -9, a crash,
power loss): it continues after the reservation, so no id is ever given to two alerts.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import os
import signal
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from ..core.engine import DropEngine
from ..core.errors import DropEngineError, SnapshotError
from .hub import Hub, parse_cursor

__all__ = [
    "Reservation", "SavedState", "StateLocked", "decode_state", "encode_state", "fork_save", "ids_path", "load_state",
    "lock_state", "read_reservation", "save_state", "tmp_path", "write_reservation",
]

MAGIC: Final = b"dropengine-serve-state\n"
#: Version 3 (issue 12): the ring may hold every alert type (``line_move``, ``steam``) and the
#: engine snapshot the line series and steam state. A version 2 file (price drops only) is a
#: valid version 3 one, so it is read; a build that reads only 2 says "version 3" instead of
#: calling a newer file damaged.
VERSION: Final = 3
READS: Final = (2, 3)
_HEAD: Final = struct.Struct(">23sHQ")  # magic, version, body length
_DIGEST: Final = 32
_IDS_MAGIC: Final = "dropengine-serve-ids"
_IDS_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class SavedState:
    """What a state file holds, rebuilt: the engine, the hub (ring, epoch, sequence) and the
    source cursors."""

    saved_ms: int
    engine: DropEngine
    hub: Hub
    cursors: dict[str, int]


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    saved_ms: int
    engine: bytes
    hub: dict[str, Any]
    cursors: dict[str, int]


def encode_state(engine: DropEngine, hub_doc: dict[str, Any], cursors: dict[str, int], saved_ms: int) -> bytes:
    """The state file's bytes (``hub_doc`` is :meth:`Hub.dump` output). Pure CPU: the server
    runs it in a worker thread while ingestion waits (see :meth:`DropServer.save_async`)."""
    body = msgspec.msgpack.encode(_Body(saved_ms, engine.snapshot(), hub_doc, cursors))
    head = _HEAD.pack(MAGIC, VERSION, len(body))
    digest = hashlib.sha256(head)
    digest.update(body)
    return head + digest.digest() + body


def decode_state(data: bytes, **hub_settings: Any) -> SavedState:
    """Raises :class:`~dropengine.core.errors.SnapshotError` for anything that is not an intact
    state: the message says what (not a state, another version, truncated, damaged)."""
    n = _HEAD.size + _DIGEST
    if len(data) < n:
        if data and not MAGIC.startswith(data[: len(MAGIC)]):
            raise SnapshotError("is not a dropengine serve state file")
        raise SnapshotError(f"is damaged (truncated: {len(data)} bytes)")
    magic, version, length = _HEAD.unpack_from(data)
    if magic != MAGIC:
        if data[:1] in (b"\x85", b"\x86") and b"dropengine-serve-state" in data[:64]:  # msgpack, version 1
            raise SnapshotError(f"was written by an older dropengine (version 1; this one reads "
                                f"{', '.join(map(str, READS))})")
        raise SnapshotError("is not a dropengine serve state file (or its header is damaged)")
    if version not in READS:
        raise SnapshotError(f"has version {version} (this dropengine reads {', '.join(map(str, READS))}; "
                            f"or its header is damaged)")
    body = memoryview(data)[n:]
    digest = hashlib.sha256(memoryview(data)[: _HEAD.size])
    digest.update(body)
    if digest.digest() != data[_HEAD.size:n]:
        if length != len(body):
            raise SnapshotError(f"is damaged (truncated or cut: {len(body)} of {length} body bytes)")
        raise SnapshotError("is damaged (checksum mismatch)")
    try:  # intact, so these fail only for a file written by a broken build or crafted: still no traceback
        doc = msgspec.msgpack.decode(body, type=_Body)
        engine = DropEngine.restore(doc.engine)
        hub = Hub.load(doc.hub, **hub_settings)
    except Exception as exc:  # any decoder exception (RecursionError too): a damaged file
        raise SnapshotError(f"is damaged ({type(exc).__name__}: {str(exc)[:200]})") from None
    return SavedState(doc.saved_ms, engine, hub, dict(doc.cursors))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return  # a platform without directory fds: the rename is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path(path: Path, pid: int | None = None) -> Path:
    """The temporary file a process writes before renaming (one per process: a saving child
    and its parent never share one)."""
    return path.with_name(f"{path.name}.{pid if pid is not None else os.getpid()}.tmp")


def _write_atomic(path: Path, data: bytes, before_rename: Callable[[], bool] | None = None) -> None:
    """Temporary file, fsync, rename, directory fsync. A write that fails (disk full, I/O
    error) removes its temporary file: repeated failures must not fill the disk with them."""
    tmp = tmp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if before_rename is not None and not before_rename():
            os.unlink(tmp)
            return
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path)


def save_state(path: Path, data: bytes) -> None:
    """Write ``data`` atomically and durably (blocking I/O: the server calls it in a thread)."""
    _write_atomic(path, data)


def _death_signal() -> Callable[[], object] | None:
    """Linux: a call that makes the calling (child) process get SIGKILL when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``), bound before the fork (the child imports nothing)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def fork_save(path: Path, encode: Callable[[], bytes], report: int | None = None) -> int | None:
    """Save from a forked child: the child holds a copy-on-write image of this process as of
    this instant, so ``encode()`` sees one consistent moment while the parent goes on at once
    (no pause, no lock held against the event loop). Returns the child's pid (wait for it;
    exit status 0 means saved), or ``None`` where ``fork`` does not exist.

    The child closes every inherited descriptor but stdio (a socket the parent closes really
    closes), does no logging and no imports (locks other threads held at the fork are never
    touched), renames only while its parent is alive (an orphan of a killed server must not
    overwrite a newer state), and leaves with ``os._exit``. Pages the parent changes while it
    runs are copied: memory grows by what changes during a save, at most the engine's size.

    ``report``: a descriptor (a pipe's write end) the child writes why it failed to, in one
    short line, instead of stderr (the parent logs it once, with its own context).
    """
    if not hasattr(os, "fork"):
        return None
    parent = os.getpid()
    die_with_parent = _death_signal()
    with warnings.catch_warnings():  # 3.12+ warns about fork with threads; see the docstring
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        return pid
    code = 0  # the child from here on
    try:
        # Ctrl-C reaches the whole process group, systemd's SIGTERM the whole cgroup: the
        # child neither dies half-way (its parent, stopping, kills it with SIGKILL and saves
        # itself) nor runs the parent's Python handlers (uvicorn's, asyncio's) nor writes into
        # the parent's signal wakeup fd (an event loop's self-pipe, shared until closed below).
        # a server killed (-9) mid-save takes its child along: its copy-on-write memory is freed
        # at once, and a child stuck on a stalled disk does not outlive it (it would not rename)
        if die_with_parent is not None:
            die_with_parent()
        if os.getppid() != parent:  # it died before that
            os._exit(1)
        with contextlib.suppress(ValueError):  # (only the main thread may; after fork this one is)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.set_wakeup_fd(-1)
        gc.disable()  # a collection would touch (and copy) every page of the heap
        out = 2
        if report is not None and report > 2:
            os.closerange(3, report)
            os.closerange(report + 1, 1 << 20)
            out = report
        else:
            os.closerange(3, 1 << 20)
        _write_atomic(path, encode(), before_rename=lambda: os.getppid() == parent)
    except BaseException as exc:  # reported on `out`; the parent sees the exit status
        code = 1
        why = f"{type(exc).__name__}: {exc}"[:400]
        with contextlib.suppress(OSError):
            os.write(out, (why if out != 2 else f"dropengine serve: saving {path} failed: {why}\n").encode())
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers


def load_state(path: Path, now_ms: int, max_age_s: float, **hub_settings: Any) -> tuple[SavedState | None, str]:
    """The saved state, or ``None`` with the reason (missing, too old, damaged, unreadable),
    as one line ending in "starting empty". ``hub_settings`` are the ring's settings."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"no state file at {path}: starting empty"
    except OSError as exc:
        return None, f"state file {path} is unreadable ({exc.strerror or exc}): starting empty"
    try:
        state = decode_state(data, **hub_settings)
    except SnapshotError as exc:
        return None, f"state file {path} {exc}: starting empty"
    age_s = (now_ms - state.saved_ms) / 1000
    if age_s > max_age_s:
        return None, f"state in {path} is {age_s:.0f} s old (> {max_age_s:g} s): starting empty"
    return state, f"restored {path}: {state.engine.keys_held} keys, {len(state.hub.buffer)} buffered alerts, " \
                  f"saved {age_s:.1f} s ago"


# -- one server per state file ---------------------------------------------------------------------
class StateLocked(DropEngineError):
    """The state file cannot be owned by this server (another one uses it, or its directory
    cannot hold the lock file); the message says which and why."""


def lock_state(path: Path) -> int:
    """Own ``path`` for this process: an exclusive ``flock`` on ``FILE.lock`` (released by
    the kernel when the process ends, even by kill -9), or :class:`StateLocked`. Two servers
    on one state would overwrite each other's saves and reservations and, both restoring
    the same epoch, give one id to two different alerts. Returns the descriptor to keep open.

    Once owned, temporary files a killed run left (``FILE.<pid>.tmp``, ``FILE.ids.<pid>.tmp``)
    are removed. Where ``flock`` does not exist, nothing is locked (returns -1).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return -1
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateLocked(f"cannot create the lock file {lock}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):  # e.g. ENOLCK on some NFS
            raise StateLocked(f"cannot lock {lock}: {exc.strerror or exc}") from None
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise StateLocked(f"is in use by another dropengine serve{who} ({lock} is locked); "
                          f"each server needs its own state file") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    for name in (path.name, ids_path(path).name):
        for stale in path.parent.glob(f"{name}.*.tmp"):
            if stale.name[len(name) + 1:-4].isdigit():
                with contextlib.suppress(OSError):
                    stale.unlink()
    return fd


# -- the id reservation ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reservation:
    """Ids ``{epoch}-1`` .. ``{epoch}-{reserved}`` may have been issued."""

    epoch: str
    reserved: int


def ids_path(state_path: Path) -> Path:
    """Where the reservation of ``state_path`` lives."""
    return state_path.with_name(state_path.name + ".ids")


def _ids_line(epoch: str, reserved: int) -> str:
    return f"{_IDS_MAGIC} {_IDS_VERSION} {epoch} {reserved}"


def write_reservation(path: Path, epoch: str, reserved: int) -> None:
    """Durably record that ids up to ``reserved`` may be issued (blocking; a few ms)."""
    line = _ids_line(epoch, reserved)
    _write_atomic(path, f"{line} {hashlib.sha256(line.encode()).hexdigest()}\n".encode())


def read_reservation(path: Path) -> tuple[Reservation | None, str]:
    """The reservation, or ``None`` and why (missing, damaged, unreadable)."""
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({getattr(exc, 'strerror', None) or exc})"
    parts = text.rstrip("\n").split(" ")
    if len(parts) != 5 or parts[0] != _IDS_MAGIC or parts[1] != str(_IDS_VERSION):
        return None, "damaged or foreign"
    _, _, epoch, reserved, digest = parts
    if not reserved.isdigit() or parse_cursor(f"{epoch}-{reserved}") is None or \
            hashlib.sha256(_ids_line(epoch, int(reserved)).encode()).hexdigest() != digest:
        return None, "damaged (checksum mismatch)"
    return Reservation(epoch, int(reserved)), "ok"
