"""Issue 10, second pass ("server-breaker"): the server's state and id machinery attacked as a
hostile tester and an operator would, each regression test written to fail before its fix.

- a state whose checksum is valid but whose body is nested thousands of levels deep (the
  hub part or the engine snapshot inside) starts empty with one line, no RecursionError;
- an id reservation that cannot be written (disk full) never lets a later restart reuse an id;
- a failed or killed save leaves no temporary file behind;
- the forked saving child ignores a terminal's Ctrl-C and has no signal wakeup fd;
- two servers on one ``--state`` file: the second refuses to start (one line, exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import signal
import struct
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.server import persistence as app_mod  # saves moved out of server.app
from dropengine.server import state as state_mod
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.sources import ManualSource
from dropengine.server.state import MAGIC, VERSION, ids_path, load_state


def _quotes(n: int, price: int, lu: int, prefix: str = "e") -> list[Quote]:
    return [Quote("basketball_nba", f"{prefix}{i}", "pinnacle", "h2h_home", price, lu) for i in range(n)]


def _seal(body: bytes) -> bytes:
    """A state file around ``body`` with a valid header and checksum."""
    head = struct.pack(">23sHQ", MAGIC, VERSION, len(body))
    return head + hashlib.sha256(head + body).digest() + body


def _deep_msgpack(depth: int) -> bytes:
    return b"\x91" * depth + b"\x01"  # [[[...[1]...]]]


# ---- a valid checksum around a hostile body --------------------------------------------------------

@pytest.mark.parametrize("where", ["hub", "cursors", "engine"])
def test_a_deeply_nested_body_with_a_valid_checksum_starts_empty(tmp_path: Path, where: str) -> None:
    deep = _deep_msgpack(100_000)
    enc = msgspec.msgpack.encode
    parts = {"saved_ms": enc(int(time.time() * 1000)), "engine": enc(b""), "hub": enc({}), "cursors": enc({})}
    if where == "engine":  # an engine snapshot that is itself sealed, with a deep payload
        from dropengine.core import engine as engine_mod

        snap = bytes(DropServer(ManualSource()).engine.snapshot())
        head = engine_mod._HEADER
        magic, version, _ = head.unpack_from(snap)
        parts["engine"] = enc(head.pack(magic, version, hashlib.sha256(deep).digest()) + deep)
    else:
        parts[where] = b"\x81\xa1k" + deep  # {"k": [[[...]]]}
    body = b"\x84" + b"".join(enc(k) + v for k, v in parts.items())
    path = tmp_path / "s.state"
    path.write_bytes(_seal(body))
    state, message = load_state(path, int(time.time() * 1000), 600)
    assert state is None and message.endswith("starting empty") and "damaged" in message, message


# ---- the id reservation cannot be written ----------------------------------------------------------

def test_a_reservation_that_cannot_be_written_never_lets_a_restart_reuse_an_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full when a new block of ids is due: the server keeps sending alerts, so the file
    on disk must not claim a reservation the run went past (a restart would reuse those ids)."""
    path = tmp_path / "s.state"
    now = int(time.time() * 1000)
    first = DropServer(ManualSource(), ServeConfig(state_path=path))
    first.restore(now)
    first.hub.reserve_block = 5
    first.ingest(_quotes(3, -110, 1), now)
    first.ingest(_quotes(3, -130, 2), now)  # ids 1..3, reserved up to 5
    first.save()  # the last periodic save: id 3
    issued = {f"{first.hub.epoch}-{s}" for s in range(1, first.hub.next_seq)}
    real = state_mod.write_reservation

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(app_mod, "write_reservation", full)
    for k in range(4):  # 12 more alerts: ids 4..15, past the reservation of 5
        first.ingest(_quotes(3, -150 if k % 2 == 0 else -110, 3 + k), now)
    issued |= {f"{first.hub.epoch}-{s}" for s in range(1, first.hub.next_seq)}
    assert len(issued) == 15
    monkeypatch.setattr(app_mod, "write_reservation", real)
    # kill -9 now (no final save), the disk is freed, the server restarts
    again = DropServer(ManualSource(), ServeConfig(state_path=path))
    again.restore(now)
    again.ingest(_quotes(3, -170, 20), now)
    new = {f"{again.hub.epoch}-{s}" for s in range(again.hub.next_seq - 3, again.hub.next_seq)}
    assert not new & issued, f"ids reused: {sorted(new & issued)} ({again.restore_message})"


def test_a_reservation_failure_is_logged_once_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.state"
    now = int(time.time() * 1000)
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))
    srv.restore(now)
    srv.hub.reserve_block = 2
    real = state_mod.write_reservation

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(app_mod, "write_reservation", full)
    for k in range(10):
        srv.ingest(_quotes(3, -150 if k % 2 else -110, 1 + k), now)
    errors = [r for r in caplog.records if "reserve" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    monkeypatch.setattr(app_mod, "write_reservation", real)
    srv.ingest(_quotes(3, -190, 50), now)
    r, _ = state_mod.read_reservation(ids_path(path))
    assert r is not None and r.reserved >= srv.hub.next_seq - 1  # covered again


# ---- temporary files ---------------------------------------------------------------------------------

def test_a_save_that_fails_midway_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))
    srv.ingest(_quotes(50, -110, 1), 1_000)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state_mod.os, "fsync", full)
    with pytest.raises(OSError):
        srv.save()
    monkeypatch.undo()
    assert not list(tmp_path.glob("*.tmp")) and not path.exists()


def test_a_saving_child_killed_midway_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OOM killer takes the child after it wrote part of the file: the parent removes it
    (one per pid: repeated kills would otherwise fill the disk)."""
    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))
    srv.ingest(_quotes(50, -110, 1), 1_000)
    real = os.fsync

    def killed(fd: int) -> None:
        real(fd)
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    parent = os.getpid()
    monkeypatch.setattr(state_mod.os, "fsync", killed)
    with pytest.raises(OSError, match="saving"):
        asyncio.run(srv.save_async())
    monkeypatch.undo()
    assert not list(tmp_path.glob("*.tmp")) and not path.exists()
    assert srv._saving_pid is None


# ---- the forked child and signals ----------------------------------------------------------------------

def test_the_saving_child_ignores_ctrl_c_and_sigterm_and_has_no_wakeup_fd(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group (systemd's SIGTERM the whole cgroup): the child must
    neither die half-way nor run the parent's handlers (uvicorn's, asyncio's) or write into the
    parent's signal wakeup fd."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    old = signal.set_wakeup_fd(w)
    try:
        def encode() -> bytes:
            wake = signal.set_wakeup_fd(-1)
            return f"{signal.getsignal(signal.SIGINT)!r} {signal.getsignal(signal.SIGTERM)!r} {wake}".encode()

        pid = state_mod.fork_save(tmp_path / "s.state", encode)
        assert pid is not None
        _, status = os.waitpid(pid, 0)
    finally:
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "s.state").read_text() == f"{signal.SIG_IGN!r} {signal.SIG_IGN!r} -1"


def test_a_hung_saving_child_is_killed_reaped_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled disk: the child never finishes. Before, the server waited for it for ever and
    never saved again, silently."""
    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))
    srv.ingest(_quotes(50, -110, 1), 1_000)
    srv.save_timeout_s = 0.5
    parent = os.getpid()
    real = state_mod._write_atomic

    def stalled(*args: Any, **kwargs: Any) -> None:
        if os.getpid() != parent:
            time.sleep(3600)
        real(*args, **kwargs)

    monkeypatch.setattr(state_mod, "_write_atomic", stalled)
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(state_mod.os, "fork", fork)

    async def go() -> None:
        await asyncio.wait_for(srv.save_async(), 30)

    with pytest.raises(OSError, match=r"did not finish within 0\.5 s"):
        asyncio.run(go())
    assert srv._saving_pid is None
    assert len(forked) == 1
    # reaped: no zombie left. (That child only: a test runner's worker may have children of its own.)
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)


def test_failing_periodic_saves_are_logged_once_with_the_reason_and_serving_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The state's directory disappears (or the disk is full): one error line with the reason,
    every failure counted, alerts still detected; one line when saving works again."""
    from dropengine.server.asgi import BackgroundServer

    path = tmp_path / "gone" / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path, state_every_s=0.1))
    caplog.set_level("INFO", logger="dropengine.serve")
    with BackgroundServer(srv.app):
        deadline = time.monotonic() + 30
        while srv.metrics.state_save_failures < 5:
            assert time.monotonic() < deadline, "no failed saves"
            time.sleep(0.05)
        path.parent.mkdir()
        while srv.metrics.state_saves < 1:
            assert time.monotonic() < deadline, "no save after the directory came back"
            time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "dropengine.serve" and "save" in r.getMessage()]
    errors = [m for m in lines if m.startswith("could not save")]
    assert len(errors) == 1 and "No such file or directory" in errors[0], lines
    assert any(m.startswith("state saved again") for m in lines), lines


# ---- the invariant: no id ever names two different alerts --------------------------------------------

_OPS = st.lists(st.one_of(
    st.tuples(st.just("alerts"), st.integers(1, 5)),
    st.tuples(st.just("save"), st.just(0)),
    st.tuples(st.just("clean_restart"), st.just(0)),
    st.tuples(st.just("crash_restart"), st.just(0)),
    st.tuples(st.just("disk_full"), st.integers(0, 1)),
    st.tuples(st.just("lose_ids"), st.just(0)),
), min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
@example(ops=[("alerts", 2), ("save", 0), ("disk_full", 1), ("alerts", 5), ("disk_full", 0), ("crash_restart", 0),
              ("alerts", 5)])
def test_no_id_ever_names_two_alerts_across_saves_crashes_and_failing_disks(tmp_path_factory: Any,
                                                                            ops: list[tuple[str, int]]) -> None:
    """Any interleaving of alerts, periodic saves, clean stops, kill -9, a disk that refuses the
    reservation (or the state) and a lost ``.ids`` file: every id is issued at most once."""
    path = tmp_path_factory.mktemp("inv") / "s.state"
    now = int(time.time() * 1000)
    real_res, real_save = app_mod.write_reservation, app_mod.save_state
    seen: set[str] = set()
    flip = [0]

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def start() -> DropServer:
        srv = DropServer(ManualSource(), ServeConfig(state_path=path))
        srv.restore(now)
        srv.hub.reserve_block = 3
        return srv

    try:
        srv = start()
        for op, n in ops:
            if op == "alerts":
                before = (srv.hub.epoch, srv.hub.next_seq)
                for _ in range(2):
                    flip[0] += 1
                    srv.ingest(_quotes(n, -110 - 10 * (flip[0] % 2), flip[0]), now)
                assert srv.hub.epoch == before[0]
                for seq in range(before[1], srv.hub.next_seq):
                    sid = f"{srv.hub.epoch}-{seq}"
                    assert sid not in seen, f"{sid} issued twice ({srv.restore_message})"
                    seen.add(sid)
            elif op == "save":
                with contextlib.suppress(OSError):
                    srv.save()
            elif op == "clean_restart":
                with contextlib.suppress(OSError):
                    srv.save(final=True)
                srv = start()
            elif op == "crash_restart":
                srv = start()
            elif op == "disk_full":
                app_mod.write_reservation = full if n else real_res  # type: ignore[assignment]
                app_mod.save_state = full if n else real_save  # type: ignore[assignment]
            elif op == "lose_ids":
                with contextlib.suppress(OSError):
                    ids_path(path).unlink()
    finally:
        app_mod.write_reservation = real_res  # type: ignore[assignment]
        app_mod.save_state = real_save  # type: ignore[assignment]


# ---- the state lock ----------------------------------------------------------------------------------

def test_a_lock_the_file_system_cannot_take_is_not_called_another_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(state_mod.StateLocked, match=r"cannot lock .*No locks available"):
        state_mod.lock_state(tmp_path / "s.state")


def test_a_second_lock_in_another_process_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    fd = state_mod.lock_state(path)
    try:
        pid = os.fork()
        if pid == 0:  # another process: refused, naming this one
            try:
                state_mod.lock_state(path)
                os._exit(1)
            except state_mod.StateLocked as exc:
                os._exit(0 if f"pid {os.getppid()}" in str(exc) else 2)
            except BaseException:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)


def test_fork_save_from_a_worker_thread_saves(tmp_path: Path) -> None:
    """BackgroundServer (tests, embedding) runs the loop in a thread: the child's signal set-up
    must not fail there."""
    import threading

    out: list[int] = []

    def run() -> None:
        pid = state_mod.fork_save(tmp_path / "s.state", lambda: b"saved")
        assert pid is not None
        out.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert out == [0] and (tmp_path / "s.state").read_bytes() == b"saved"


def test_a_server_served_twice_saves_at_each_stop(tmp_path: Path) -> None:
    """``finish()`` runs the final save once per run, not once per object."""
    from dropengine.server.asgi import BackgroundServer

    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path, state_every_s=3600))
    with BackgroundServer(srv.app):
        srv.ingest(_quotes(3, -110, 1), 1_000)
    first = srv.metrics.state_saves
    with BackgroundServer(srv.app):
        srv.ingest(_quotes(5, -110, 2), 2_000)
    assert srv.metrics.state_saves == first + 1 == 2
    saved, message = load_state(path, 2_000, 600)
    assert saved is not None and saved.engine.keys_held == 5, message


_MIDDLE = """
import os, sys, time
from pathlib import Path
from dropengine.server.state import fork_save

def encode():
    Path(sys.argv[2]).write_text(str(os.getpid()))
    time.sleep(60)  # a stalled disk
    return b"x"

fork_save(Path(sys.argv[1]), encode)
time.sleep(60)
"""


def test_a_server_killed_mid_save_takes_its_saving_child_along(tmp_path: Path) -> None:
    import subprocess
    import sys

    marker = tmp_path / "child.pid"
    server = subprocess.Popen([sys.executable, "-c", _MIDDLE, str(tmp_path / "s.state"), str(marker)])
    child = 0
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text()):
            assert time.monotonic() < deadline, "the saving child did not start"
            time.sleep(0.02)
        child = int(marker.read_text())
        server.kill()  # kill -9 of the server
        server.wait(10)

        def alive(pid: int) -> bool:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    return fh.read().split(")")[-1].split()[0] != "Z"
            except FileNotFoundError:
                return False

        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(child), "the orphaned saving child outlived its server"
    finally:
        if server.poll() is None:
            server.kill()
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
    assert not (tmp_path / "s.state").exists()
