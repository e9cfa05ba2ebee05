"""Breaker 15c: ``watch --sink`` stopped while it drains, or writing to a full disk: a real
``watch`` subprocess against the real ``mock-upstream`` (tests/test_h15_sinks_wiring.py's
fixtures), delivering to a real receiver on 127.0.0.1 that never answers; a Ctrl-C (SIGINT)
during the drain (B15C-4, fixed in 049c21b), an ndjson sink on a full disk (B15C-14, fixed in
b8f54dc): regression tests of /tmp/notes/breaker15c.md's findings."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from . import test_h15_sinks_wiring as wiring
from .test_h12_cli_replay import ALL
from .test_h15_breaker15c_http import RawReceiver, raw_receiver
from .test_h15_sinks_webhook import SECRET

recording = wiring.recording
upstream = wiring.upstream


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
    if await rx.read_request(reader) is None:
        return
    while not rx.stopping:
        await asyncio.sleep(0.02)


def test_a_ctrl_c_during_the_drain_still_dead_letters_every_alert(upstream: str, tmp_path: Path) -> None:
    dead = tmp_path / "dead.ndjson"
    env = {**os.environ, "DROPENGINE_API_KEY": wiring.KEY, "DROPENGINE_WEBHOOK_SECRET": SECRET}
    with raw_receiver(_hang) as rx:
        proc = subprocess.Popen(
            [*wiring.CLI, "watch", "--sport", "americanfootball_nfl", "--base-url", upstream, "--stamp", "data",
             "--heartbeat-s", "1", "--retry-scale", "0.02", "--status-every", "0", "--duration", "30", "-q",
             "--types", ALL, "--max-alerts", "10", "--sink", f"webhook:{rx.url}/hook",
             "--dead-letter", str(dead), "--sink-timeout", "30", "--sink-drain", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            printed = [proc.stdout.readline() for _ in range(10)]  # the run is over: the drain has begun
            deadline = time.monotonic() + 10
            while not rx.got and time.monotonic() < deadline:  # the first alert is in flight, held
                time.sleep(0.02)
            assert rx.got, "the receiver never got the first alert"
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)  # the operator does not want to wait 5 s
            _, stderr = proc.communicate(timeout=30)  # (a fix may also finish the drain)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert len([x for x in printed if x.strip()]) == 10
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert len(lines) == 10, stderr
    assert "delivered 0 of 10 (failed 10, dropped 0" in stderr, stderr


def test_an_ndjson_sink_on_a_full_disk_does_not_stop_detection(upstream: str, tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    full = tmp_path / "full.ndjson"
    full.symlink_to("/dev/full")  # every write: ENOSPC
    env = {**os.environ, "DROPENGINE_API_KEY": wiring.KEY}
    watch = subprocess.run(
        [*wiring.CLI, "watch", "--sport", "americanfootball_nfl", "--base-url", upstream, "--stamp", "data",
         "--heartbeat-s", "1", "--retry-scale", "0.02", "--status-every", "0", "--duration", "30", "-q",
         "--types", ALL, "--max-alerts", "10", "--sink", f"ndjson:{full}"],
        capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in watch.stderr, watch.stderr[-800:]
    assert len(watch.stdout.splitlines()) == 10  # stdout (detection) went on
    assert "ndjson" in watch.stderr  # the sink's failure is reported
