"""Issue 10, second pass ("server-breaker"): real ``dropengine serve`` processes used as an
operator would misuse them. Bounded: each process is stopped by the test, every wait has a
deadline; no timing assertions.

- two servers on one ``--state`` file: the second refuses to start (one line, exit 2), a kill -9
  of the first releases the file, and the next start removes the temporary files it left;
- a ``--state`` whose directory does not exist fails at start (one line, exit 2);
- Ctrl-C in a terminal (SIGINT to the whole process group, saving child included) while
  periodic saves run: a clean stop, the final save written, no reset at the restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dropengine.server.hub import parse_cursor
from dropengine.server.state import ids_path, load_state, read_reservation

from .test_h10_server_crash import _recording, _wait


def _serve(recording: Path, state: Path, *extra: str, session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dropengine", "serve", "--source", f"replay:{recording}", "--speed", "1", "--port", "0",
         "--state", str(state), "--log-level", "warning", *extra],
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=session,
    )


def _url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert " at http://" in line, line
    return line.split(" at ")[1].split()[0]


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Its stderr once it exits (killed if it has not within ``timeout``: the test fails)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_a_second_server_on_the_same_state_refuses_to_start(tmp_path: Path) -> None:
    rec = tmp_path / "rec.ndjson"
    _recording(rec, 500)
    state = tmp_path / "serve.state"
    first = _serve(rec, state)
    try:
        _url(first)
        second = _serve(rec, state)
        err = _finish(second)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert second.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert f"--state {state}" in lines[0] and "in use by another dropengine serve" in lines[0], lines[0]
        assert f"pid {first.pid}" in lines[0]
        (tmp_path / f"serve.state.{first.pid}.tmp").write_bytes(b"half a save")  # as if killed mid-save
        (tmp_path / f"serve.state.ids.{first.pid}.tmp").write_bytes(b"half")
    finally:
        _stop(first)  # kill -9: the kernel releases the lock
    third = _serve(rec, state)
    try:
        _url(third)
        assert not list(tmp_path.glob("*.tmp"))
    finally:
        _stop(third)


def test_a_state_in_a_missing_directory_fails_at_start(tmp_path: Path) -> None:
    rec = tmp_path / "rec.ndjson"
    _recording(rec, 50)
    proc = _serve(rec, tmp_path / "nope" / "serve.state")
    err = _finish(proc)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "--state" in lines[0] and "No such file or directory" in lines[0], lines[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_during_saves_is_a_clean_stop(tmp_path: Path, sig: int) -> None:
    """SIGINT as a terminal's Ctrl-C sends it, SIGTERM as systemd stops a service (the whole
    cgroup): exit 0 (was 1 with "Aborted!" for Ctrl-C, 143 for SIGTERM), the final save written."""
    rec = tmp_path / "rec.ndjson"
    _recording(rec, 4000)
    state = tmp_path / "serve.state"
    proc = _serve(rec, state, "--state-every", "0.1", session=True)
    try:
        url = _url(proc)

        def saves() -> int:
            text = httpx.get(url + "/metrics", timeout=5).text
            return int(float(next(ln.split()[1] for ln in text.splitlines()
                                  if ln.startswith("dropengine_state_saves_total"))))

        _wait(lambda: saves() >= 5, 60, "five periodic saves")
        high = parse_cursor(httpx.get(url + "/healthz", timeout=5).json()["high_water"])
        assert high is not None and high.seq > 0
        os.killpg(proc.pid, sig)  # the saving child gets it too
        err = _finish(proc)
    finally:
        _stop(proc)
    assert proc.returncode == 0 and "Traceback" not in err and "Aborted" not in err, (proc.returncode, err)
    assert "could not save" not in err and "exited with status" not in err, err
    saved, message = load_state(state, int(time.time() * 1000), 600)
    assert saved is not None, message
    r, why = read_reservation(ids_path(state))
    assert r is not None and r.epoch == saved.hub.epoch, why
    assert r.reserved == saved.hub.next_seq - 1 >= high.seq  # the final save ran: no reset at the restart
    assert not list(tmp_path.glob("*.tmp"))


def test_a_second_ctrl_c_still_saves_the_state(tmp_path: Path) -> None:
    """Ctrl-C twice: uvicorn forces its way out and skips the application's shutdown, where the
    final save was. It must still be written (the next start would take it for a crash)."""
    rec = tmp_path / "rec.ndjson"
    _recording(rec, 4000)
    state = tmp_path / "serve.state"
    proc = _serve(rec, state, "--state-every", "3600")
    try:
        url = _url(proc)
        _wait(lambda: int(httpx.get(url + "/healthz", timeout=5).json()["high_water"].split("-")[1]) >= 5,
              60, "five alerts")
        high = parse_cursor(httpx.get(url + "/healthz", timeout=5).json()["high_water"])
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        err = _finish(proc)
    finally:
        _stop(proc)
    assert "Traceback" not in err, err
    saved, message = load_state(state, int(time.time() * 1000), 600)
    assert saved is not None, message
    assert high is not None and saved.hub.epoch == high.epoch and saved.hub.next_seq - 1 >= high.seq
    r, why = read_reservation(ids_path(state))
    assert r is not None and r.reserved == saved.hub.next_seq - 1, why  # a clean stop: no reset at the restart


def test_serve_saves_when_uvicorn_returns_without_the_applications_shutdown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a second Ctrl-C does (uvicorn's force exit skips the lifespan shutdown, where the
    final save is), made deterministic: ``run_foreground`` returns without running the app."""
    from click.testing import CliRunner

    from dropengine.cli.serve import serve_cmd
    from dropengine.server import asgi as webserver

    rec = tmp_path / "rec.ndjson"
    _recording(rec, 50)
    state = tmp_path / "serve.state"
    monkeypatch.setattr(webserver, "run_foreground", lambda *a, **k: None)
    result = CliRunner().invoke(serve_cmd, ["--source", f"replay:{rec}", "--port", "0", "--state", str(state)])
    assert result.exit_code == 0, (result.output, repr(result.exception))
    saved, message = load_state(state, int(time.time() * 1000), 600)
    assert saved is not None, (message, result.output)
    r, why = read_reservation(ids_path(state))
    assert r is not None and r.epoch == saved.hub.epoch and r.reserved == saved.hub.next_seq - 1, why


def _small_files() -> None:  # in the child before exec: files of at most 4 KB ("disk full" for the state)
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_full_disk_keeps_serve_serving_with_one_line(tmp_path: Path) -> None:
    """Every state save fails (the state outgrows the 4 KB the process may write; Python ignores
    SIGXFSZ, so writes fail with EFBIG): serve goes on detecting and answering, says so once,
    counts every failure, and still stops cleanly (exit 0) when told to."""
    rec = tmp_path / "rec.ndjson"
    _recording(rec, 4000)
    state = tmp_path / "serve.state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropengine", "serve", "--source", f"replay:{rec}", "--speed", "1", "--port", "0",
         "--state", str(state), "--state-every", "0.1", "--log-level", "warning"],
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, preexec_fn=_small_files,
    )
    try:
        url = _url(proc)

        def metric(name: str) -> int:
            text = httpx.get(url + "/metrics", timeout=5).text
            return int(float(next(ln.split()[1] for ln in text.splitlines() if ln.startswith(name + " "))))

        _wait(lambda: metric("dropengine_state_save_failures_total") >= 5, 60, "five failed saves")
        produced = metric("dropengine_alerts_produced_total")
        _wait(lambda: metric("dropengine_alerts_produced_total") > produced, 30, "alerts still detected")
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        proc.terminate()
        err = _finish(proc)
    finally:
        _stop(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "save" in ln]
    periodic = [ln for ln in lines if "could not save the state to" in ln]
    assert len(periodic) == 1 and "File too large" in periodic[0], lines
    assert len(lines) <= 2, lines  # plus, at most, the final save's own line
    assert not list(tmp_path.glob("*.tmp"))
