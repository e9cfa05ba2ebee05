"""Issue 10: ``watch``/``record`` at the edges, as a user runs them (subprocesses against a
real ``mock-upstream`` on loopback, each bounded by ``--duration``/``--max-alerts`` and a
subprocess timeout): a rejected key is reported once, a run that never reached the upstream
is not a success, ``record`` refuses an extension ``replay`` cannot read back, the status
line shows the keys held, and keys are evicted by age (data time)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.cli.live import RECORD_SUFFIXES, Evictor
from dropengine.core.engine import DropEngine
from dropengine.core.keys import KeyTable
from dropengine.core.quote import Quote
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.asgi import BackgroundServer
from dropengine.sim.simfile import write_simulation
from dropengine.sim.simulate import SimConfig

from .conftest import FIXTURES

DEMO = FIXTURES / "demo_nba_frames.ndjson"
KEY = "CANARY-H10-WATCH-0b7e"
CLI = [sys.executable, "-m", "dropengine"]


def run(args: list[str], key: str = KEY, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_many([args], key, timeout)[0]


def run_many(runs: list[list[str]], key: str = KEY, timeout: float = 60) -> list[subprocess.CompletedProcess[str]]:
    """The command lines side by side (each a subprocess bounded by ``timeout``), so runs that
    wait out a ``--duration`` wait it once together; results in the order given."""
    env = {**os.environ, "DROPENGINE_API_KEY": key}
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env=env)) for args in runs]
        out = []
        for args, proc in zip(runs, procs, strict=True):
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                for p in procs:
                    p.kill()
                raise
            out.append(subprocess.CompletedProcess([*CLI, *args], proc.returncode, stdout, stderr))
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # four hours of NHL: events start during it, keys go quiet and new ones appear
    p = tmp_path_factory.mktemp("watch") / "nhl.ndjson"
    write_simulation(SimConfig(events=6, books=3, hours=4.0, seed=11, sport_key="icehockey_nhl"), p, None)
    return p


@pytest.fixture(scope="module")
def upstream(sim: Path) -> Iterator[str]:
    mock = MockUpstream(load_timeline([DEMO, sim]), speed=None, keys=KeyTable.single(KEY))
    with BackgroundServer(mock.app, secrets=mock.secrets()) as url:
        yield url


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"


# ---- a rejected key is reported once ----------------------------------------------------------

@pytest.mark.parametrize("transport", ["sse", "ws"])
@pytest.mark.parametrize("quiet", [False, True])
def test_a_rejected_key_is_reported_once(upstream: str, transport: str, quiet: bool) -> None:
    wrong = "CANARY-H10-WRONG-KEY-3e11"
    r = run(["watch", "--sport", "basketball_nba", "--base-url", upstream, "--transport", transport,
             "--duration", "10", *(["--quiet"] if quiet else [])], key=wrong)
    assert r.returncode == 3, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "invalid API key" in ln]) == 1, r.stderr
    assert wrong not in r.stderr + r.stdout


# ---- never connected: not a success -----------------------------------------------------------

@pytest.mark.parametrize("mode", [["--sport", "basketball_nba"], ["--multi", "a,b"], ["--all"]])
def test_a_run_that_never_reached_the_upstream_exits_5(mode: list[str], tmp_path: Path) -> None:
    w, r = run_many([  # watch and record side by side: their --duration is waited once
        ["watch", *mode, "--base-url", dead_url(), "--duration", "1.5", "--retry-scale", "0.05"],
        ["record", *mode, "--base-url", dead_url(), "--duration", "1", "--retry-scale", "0.05", "--quiet",
         "--out", str(tmp_path / "never.ndjson")],
    ])
    assert w.returncode == 5, w.stderr
    assert "never connected" in w.stderr.splitlines()[-1]
    assert r.returncode == 5, r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.strip()] == [r.stderr.strip()]  # one line when quiet


def test_a_run_that_connected_exits_0(upstream: str) -> None:
    r = run(["watch", "--sport", "basketball_nba", "--base-url", upstream, "--duration", "2", "--quiet"])
    assert r.returncode == 0, r.stderr


# ---- record refuses what replay cannot read back ----------------------------------------------

@pytest.mark.parametrize("name", ["x.txt", "x.csv", "x", "x.gz", "x.json"])
def test_record_refuses_an_extension_replay_cannot_read(name: str, tmp_path: Path) -> None:
    # in-process (click's runner): a usage error is decided by the command's option checks
    # before any I/O; the subprocess path and its exit codes are what the other tests run
    out = tmp_path / name
    for args in (["record", "--out", str(out)], ["watch", "--record", str(out)]):
        r = CliRunner().invoke(main, [*args, "--sport", "a", "--base-url", "http://127.0.0.1:9", "--duration", "1"],
                               env={"DROPENGINE_API_KEY": KEY}, prog_name="dropengine")
        assert r.exit_code == 2, r.output
        assert ".ndjson" in r.stderr and ".jsonl.gz" in r.stderr
        assert not out.exists()


ACCEPTED = ["x.ndjson", "x.JSONL", "x.ndjson.gz", "x.jsonl.gz"]


@pytest.fixture(scope="module")
def recorded(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """A ``record`` into each accepted name, the runs side by side (their ``--duration`` is
    waited once): name -> (file, the run's stderr); every run exited 0."""
    root = tmp_path_factory.mktemp("recorded")
    runs = run_many([["record", "--sport", "basketball_nba", "--base-url", upstream, "--out", str(root / name),
                      "--duration", "2", "--quiet"] for name in ACCEPTED])
    for r in runs:
        assert r.returncode == 0, r.stderr
    return {name: (root / name, r.stderr) for name, r in zip(ACCEPTED, runs, strict=True)}


@pytest.mark.parametrize("name", ACCEPTED)
def test_record_accepts_what_replay_reads(recorded: dict[str, tuple[Path, str]], name: str) -> None:
    out, _ = recorded[name]
    replayed = run(["replay", str(out)])
    assert replayed.returncode == 0 and f"{name} (frames)" in replayed.stderr, replayed.stderr
    assert re.search(r"quotes +[1-9]", replayed.stderr), replayed.stderr
    assert name.lower().endswith(RECORD_SUFFIXES)


# ---- keys held and eviction by age ------------------------------------------------------------

def final_status(stderr: str) -> tuple[int, int]:
    lines = [ln for ln in stderr.splitlines() if "streams " in ln]
    m = re.search(r"keys ([\d,]+)(?: \(evicted ([\d,]+)\))?", lines[-1])
    assert m, lines[-1]
    return int(m.group(1).replace(",", "")), int((m.group(2) or "0").replace(",", ""))


def watch_keys_many(sim: Path, *runs: tuple[str, ...], timeout: float = 60) -> list[tuple[int, int]]:
    """``watch`` with each set of flags, the runs side by side (one upstream each), so the
    runs' fixed ``--duration`` is waited once, not once per run; each is bounded by it and by
    the subprocess timeout. The results are read after every run ended, not timed. Alerts
    (stdout) are discarded: a full pipe would stall a run while another is being read."""
    env = {**os.environ, "DROPENGINE_API_KEY": KEY}
    with contextlib.ExitStack() as stack:
        procs = []
        for flags in runs:
            # a fresh upstream each time: its replay clock starts at this run's connection; 6 s
            # is well above the time the whole recording takes at full speed
            mock = MockUpstream(load_timeline([sim]), speed=None, keys=KeyTable.single(KEY))
            url = stack.enter_context(BackgroundServer(mock.app, secrets=mock.secrets()))
            procs.append(stack.enter_context(subprocess.Popen(
                [*CLI, "watch", "--sport", "icehockey_nhl", "--base-url", url, "--stamp", "data",
                 "--duration", "6", "--status-every", "0.5", *flags],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)))
        out = []
        for proc in procs:
            try:
                _, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            assert proc.returncode == 0, stderr
            out.append(final_status(stderr))
    return out


@pytest.fixture(scope="module")
def watched(sim: Path) -> list[tuple[int, int]]:
    """(keys held, evicted) of four ``watch`` runs side by side: no eviction, idle 30 min,
    started 10 min, and the defaults (the 6 s ``--duration`` is waited once for all four)."""
    return watch_keys_many(
        sim,
        ("--evict-idle", "0", "--evict-started", "0"),
        ("--evict-idle", "1800", "--evict-started", "0"),
        ("--evict-idle", "0", "--evict-started", "600"),
        (),
    )


def test_the_status_line_shows_keys_held_and_eviction_bounds_them(sim: Path, watched: list[tuple[int, int]]) -> None:
    (held, evicted), (held_idle, evicted_idle), (held_started, evicted_started), _ = watched
    assert held > 0 and evicted == 0
    engine = DropEngine()
    from dropengine.io.replay import read_quotes

    for batch, _ in read_quotes([sim]):
        engine.observe_many(batch)
    assert held == engine.keys_held  # every key of the recording, none forgotten
    assert evicted_idle > 0 and held_idle < held
    assert evicted_started > 0 and held_started < held


def test_the_defaults_keep_a_short_recording_whole(watched: list[tuple[int, int]]) -> None:
    # 6 h idle / 12 h after the start: nothing in a 4-hour recording is old enough
    held, evicted = watched[3]
    assert evicted == 0 and held > 0
    assert held == watched[0][0]  # as many keys as the run with eviction off


def q(event: str, side: str, t: int, commence: str | None = None) -> Quote:
    return Quote("s", event, "b", side, -110, t, commence_time=commence)


def test_evictor_uses_data_time_and_both_ages() -> None:
    engine = DropEngine()
    ev = Evictor(engine, idle_s=60, started_s=3600)
    start = 1_700_000_000_000
    early = "2023-11-14T22:13:20Z"  # == start
    batch = [q("e1", "h2h_home", start, early), q("e2", "h2h_home", start)]
    engine.observe_many(batch)
    ev.observe(batch)
    assert engine.keys_held == 2 and ev.evicted == 0
    # 30 min of data later: e2's key (quiet for 30 min) is idle; e1's is kept alive. A jump past
    # the shorter age is taken once the next batch confirms it (dropengine.core.dataclock)
    batch = [q("e1", "h2h_home", start + 1_800_000, early)]
    engine.observe_many(batch)
    ev.observe(batch)
    assert engine.keys_held == 2 and ev.evicted == 0  # not yet confirmed
    batch = [q("e1", "h2h_home", start + 1_801_000, early)]
    engine.observe_many(batch)
    ev.observe(batch)
    assert engine.keys_held == 1 and ev.evicted == 1
    # 61 min after e1 started: gone, though it is not idle
    batch = [q("e1", "h2h_home", start + 3_660_000, early), q("e3", "h2h_home", start + 3_660_000)]
    engine.observe_many(batch)
    ev.observe(batch)
    batch = [q("e3", "h2h_home", start + 3_661_000)]
    engine.observe_many(batch)
    ev.observe(batch)
    assert {k[0] for k in engine._state} == {"e3"}
    assert ev.evicted == 2


def test_evictor_one_row_hours_ahead_evicts_nothing() -> None:
    # watch had its own rule (a day of slack, no confirmation): one row 20 h ahead of its
    # arrival made every key idle at once
    engine = DropEngine()
    ev = Evictor(engine, idle_s=3600, started_s=0)
    t = 1_700_000_000_000
    batch = [q(f"e{i}", "h2h_home", t) for i in range(100)]
    engine.observe_many(batch)
    ev.observe(batch, received_ms=t)
    bogus = [q("late", "h2h_home", t + 20 * 3_600_000)]
    engine.observe_many(bogus)
    ev.observe(bogus, received_ms=t + 1000)
    normal = [q("e1", "h2h_home", t + 2000)]
    engine.observe_many(normal)
    ev.observe(normal, received_ms=t + 2000)
    assert ev.evicted == 0 and engine.keys_held == 101


def test_evictor_ignores_a_last_update_from_the_far_future() -> None:
    engine = DropEngine()
    ev = Evictor(engine, idle_s=60, started_s=0)
    t = 1_700_000_000_000
    batch = [q("e1", "h2h_home", t)]
    engine.observe_many(batch)
    ev.observe(batch, received_ms=t)
    bogus = [q("e2", "h2h_home", t + 10 * 365 * 86_400_000)]
    engine.observe_many(bogus)
    ev.observe(bogus, received_ms=t + 1000)
    assert engine.keys_held == 2 and ev.evicted == 0


def test_evictor_disabled_by_zeros() -> None:
    engine = DropEngine()
    ev = Evictor(engine, idle_s=0, started_s=0)
    t = 1_700_000_000_000
    for i in range(3):
        batch = [q(f"e{i}", "h2h_home", t + i * 86_400_000)]
        engine.observe_many(batch)
        ev.observe(batch)
    assert engine.keys_held == 3 and ev.evicted == 0
