"""Issue 10: ``serve --evict-idle/--evict-started`` reach the server (the real CLI as a
subprocess replaying a simulated recording at full speed; /healthz over loopback)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.sim.simfile import write_simulation
from dropengine.sim.simulate import SimConfig


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("serveflags") / "nhl.ndjson"
    write_simulation(SimConfig(events=6, books=3, hours=4.0, seed=11, sport_key="icehockey_nhl"), p, None)
    return p


def healthz_after_replays(sim: Path, *runs: tuple[str, ...]) -> list[dict[str, Any]]:
    """/healthz of a ``serve`` per set of flags once its replay finished; the servers run side
    by side (their start-ups overlap), each bounded by a deadline, all stopped at the end."""
    procs = [subprocess.Popen([sys.executable, "-m", "dropengine", "serve", "--source", f"replay:{sim}", "--speed",
                               "max", "--port", "0", "--log-level", "warning", *flags],
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}) for flags in runs]
    try:
        return [_healthz_when_finished(proc) for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _healthz_when_finished(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stderr is not None
    url = None
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, "serve exited before it was ready"
        m = re.search(r" at (http://\S+) ", line)
        url = m.group(1) if m else None
    assert url is not None
    while time.monotonic() < deadline:
        health = httpx.get(f"{url}/healthz", timeout=5).json()
        if health["source"].get("finished"):
            return dict(health)
        time.sleep(0.1)
    raise AssertionError("the replay did not finish")


def test_serve_passes_the_eviction_flags_to_the_server(sim: Path) -> None:
    kept, idle, started = healthz_after_replays(
        sim,
        ("--evict-idle", "0", "--evict-started", "0"),
        ("--evict-idle", "1800", "--evict-started", "0"),
        ("--evict-idle", "0", "--evict-started", "600"),
    )
    assert kept["keys_evicted"] == 0 and kept["keys_held"] > 0
    assert idle["keys_evicted"] > 0 and idle["keys_held"] < kept["keys_held"]
    assert started["keys_evicted"] > 0 and started["keys_held"] < kept["keys_held"]


@pytest.mark.parametrize("flag", ["--evict-idle", "--evict-started"])
def test_a_negative_age_is_a_usage_error_naming_the_flag(flag: str, sim: Path) -> None:
    # in-process (click's runner): the option's range check, before anything starts
    r = CliRunner().invoke(main, ["serve", "--source", f"replay:{sim}", "--port", "0", flag, "-1"],
                           prog_name="dropengine")
    assert r.exit_code == 2 and flag in r.stderr and "range" in r.stderr, r.output
