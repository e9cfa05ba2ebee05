"""Issue 10: a damaged ``--state`` file never keeps ``serve`` from starting.

A real state (the demo recording served to its end, saved at shutdown) is damaged at many
offsets covering every region (header, engine snapshot, alert ring, cursors, the end),
truncated, replaced by foreign bytes or made unreadable: the server starts empty with one
clear message and serves. A state either restores exactly or not at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dropengine.core.keys import KeyTable
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ManualSource, ReplaySource
from dropengine.server.state import ids_path

from .conftest import FIXTURES

KEY = "state-test-key"
KEYS = KeyTable.parse(f"{KEY} business 5\n")
DEMO = FIXTURES / "demo_nba_frames.ndjson"


def _wait(cond: Callable[[], Any], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The bytes of a real state and of its id reservation: the demo replayed to its end,
    saved at shutdown."""
    path = tmp_path_factory.mktemp("state") / "serve.state"
    srv = DropServer(ReplaySource([DEMO], speed=None), ServeConfig(keys=KEYS, state_path=path))
    with BackgroundServer(srv.app):
        _wait(lambda: srv.source.status()["finished"])
    assert srv.hub.counters.produced > 0 and srv.engine.keys_held > 0
    return path.read_bytes(), ids_path(path).read_bytes()


@pytest.fixture
def saved_state(saved: tuple[bytes, bytes]) -> bytes:
    return saved[0]


def _restore(tmp_path: Path, data: bytes | None, ids: bytes | None = None) -> tuple[DropServer, str]:
    path = tmp_path / "serve.state"
    if data is not None:
        path.write_bytes(data)
    if ids is not None:
        ids_path(path).write_bytes(ids)
    srv = DropServer(ReplaySource([DEMO], speed=None), ServeConfig(keys=KEYS, state_path=path))
    return srv, srv.restore(int(time.time() * 1000))


def test_the_intact_state_restores(tmp_path: Path, saved: tuple[bytes, bytes]) -> None:
    srv, message = _restore(tmp_path, *saved)
    assert message.startswith("restored") and ";" not in message, message
    assert srv.engine.keys_held > 0 and len(srv.hub.buffer) > 0


def _offsets(n: int) -> list[int]:
    """Offsets in every region: the first 128 bytes one by one (the header), then spread
    evenly over the rest, and the last 16 bytes."""
    head = list(range(min(n, 128)))
    spread = [128 + (n - 144) * i // 200 for i in range(200)] if n > 300 else []
    tail = list(range(max(0, n - 16), n))
    return sorted(set(head + spread + tail))


def test_a_flipped_byte_anywhere_starts_empty_with_one_message(tmp_path: Path, saved_state: bytes) -> None:
    offsets = _offsets(len(saved_state))
    assert len(offsets) > 300
    for off in offsets:
        for mask in (0x01, 0xFF):
            damaged = bytearray(saved_state)
            damaged[off] ^= mask
            try:
                srv, message = _restore(tmp_path, bytes(damaged))
            except Exception as exc:  # the defect: a traceback instead of a start
                raise AssertionError(f"offset {off} mask {mask:#x}: {type(exc).__name__}: {exc}") from None
            assert srv.engine.keys_held == 0 and len(srv.hub.buffer) == 0, f"offset {off}: damaged data restored"
            assert "starting empty" in message and "\n" not in message, (off, message)


@pytest.mark.parametrize("case", ["truncated-half", "truncated-1", "empty", "foreign", "json", "directory"])
def test_truncated_foreign_or_unreadable_starts_empty(tmp_path: Path, saved_state: bytes, case: str) -> None:
    data: bytes | None = {
        "truncated-half": saved_state[: len(saved_state) // 2], "truncated-1": saved_state[:-1], "empty": b"",
        "foreign": os.urandom(4096), "json": b'{"magic": "dropengine-serve-state", "version": 2}',
        "directory": None,
    }[case]
    if data is None:
        (tmp_path / "serve.state").mkdir()
    srv, message = _restore(tmp_path, data)
    assert srv.engine.keys_held == 0 and "starting empty" in message


def test_serve_starts_and_serves_on_a_damaged_state(tmp_path: Path, saved_state: bytes) -> None:
    """The real command: a state damaged in the alert ring part; one line says so, no traceback."""
    state = tmp_path / "serve.state"
    damaged = bytearray(saved_state)
    damaged[len(damaged) * 3 // 4] ^= 0x20
    state.write_bytes(bytes(damaged))
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY} business\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropengine", "serve", "--source", f"replay:{DEMO}", "--speed", "max", "--port", "0",
         "--keys", str(keys), "--state", str(state)],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert " at http://" in line, line
        url = line.split(" at ")[1].split()[0]
        with httpx.Client(timeout=5) as c:
            _wait(lambda: c.get(url + "/healthz").json()["source"]["finished"])
            assert c.get(url + "/healthz").status_code == 200
            with c.stream("GET", url + "/v1/odds-drop/all", params={"apiKey": KEY, "since": 0}) as r:
                assert r.status_code == 200
                text = ""
                for chunk in r.iter_text():
                    text += chunk
                    if "odds_drop" in text:
                        break
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    out = line + err
    assert "Traceback" not in out
    state_lines = [ln for ln in out.splitlines() if "starting empty" in ln]
    assert len(state_lines) == 1 and "damaged" in state_lines[0], out[:2000]


# ---- saves that do not stall the streams ----------------------------------------------------------



def _quotes(n: int, price: int, lu: int) -> list[Any]:
    from dropengine import Quote

    return [Quote("basketball_nba", f"e{i}", "pinnacle", "h2h_home", price, lu) for i in range(n)]


@pytest.mark.parametrize("fork", [True, False])
def test_save_async_saves_one_consistent_moment_while_ingestion_goes_on(tmp_path: Path, fork: bool) -> None:
    """The file holds the engine and the ring as they were when the save began; quotes that
    arrive meanwhile are detected (at once with fork; after the snapshot without)."""
    import asyncio

    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))
    srv.fork_saves = fork

    now = int(time.time() * 1000)

    async def go() -> None:
        srv.ingest(_quotes(500, -110, 1), now)
        srv.ingest(_quotes(500, -130, 2), now)  # 500 alerts
        save = asyncio.create_task(srv.save_async())
        await asyncio.sleep(0)  # the save has begun
        srv.ingest(_quotes(300, -150, 3), now)  # 300 more alerts, after the moment saved
        srv.ingest(_quotes(800, -110, 4), now)  # 300 keys more; 500 alerts
        await save

    asyncio.run(go())
    assert srv.hub.next_seq == 1_301 and srv.engine.keys_held == 800  # nothing was lost meanwhile
    again = DropServer(ManualSource(), ServeConfig(state_path=path))
    again.restore(int(time.time() * 1000))
    assert again.engine.keys_held == 500 and len(again.hub.buffer) == 500
    assert again.engine.price_of("e0", "pinnacle", "h2h_home") == -130
    assert not list(tmp_path.glob("*.tmp"))


def test_a_save_cancelled_at_shutdown_leaves_no_temporary_file(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))

    async def go() -> None:
        srv.ingest(_quotes(2000, -110, 1), 1_000)
        save = asyncio.create_task(srv.save_async())
        await asyncio.sleep(0)
        save.cancel()
        await asyncio.gather(save, return_exceptions=True)

    asyncio.run(go())
    assert srv._saving_pid is None and not list(tmp_path.glob("*.tmp"))


def test_a_version_1_state_says_it_is_from_an_older_dropengine(tmp_path: Path) -> None:
    import msgspec

    old = msgspec.msgpack.encode({"magic": "dropengine-serve-state", "version": 1, "saved_ms": 1, "engine": b"",
                                  "hub": {}, "cursors": {}})
    srv, message = _restore(tmp_path, old)
    assert srv.engine.keys_held == 0 and "older dropengine" in message and "starting empty" in message
