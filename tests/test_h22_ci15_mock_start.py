"""ci15: the mock upstream's replay clock can wait for several sports' streams
(``MockUpstream(start_sports=n)``), so a client opening several sports' streams gets every
sport's releases from the first whatever the order and delay of its connections.

test_cli_live's watch test failed once at load 8: its nba stream opened after the clock,
started by the nhl stream, had passed nba's first frames, so their alerts were folded into
the nba stream's initial_state (10 alerts missing). The vendor does the same to a late
client: the product is right; the mock now lets a test say when its clock starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import httpx
import pytest

from dropengine.core.errors import ConfigError
from dropengine.mock import MockUpstream, load_timeline
from dropengine.mock.clock import ReplayClock
from dropengine.sim.simfile import write_simulation
from dropengine.sim.simulate import SimConfig

from .test_cli_live import CANARY, DEMO, invoke, lines, run, serve_mock

NBA, NHL = "basketball_nba", "icehockey_nhl"


@pytest.fixture(scope="module")
def nhl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("ci15") / "nhl.ndjson"
    write_simulation(SimConfig(events=2, books=3, hours=1.0, seed=5, sport_key=NHL), p, None)
    return p


def test_the_clock_starts_when_the_nth_sport_connects_not_before(nhl: Path) -> None:
    """Streams of one sport, however many, do not start a clock waiting for two sports; a
    stream of the second sport does, and every release then comes out."""
    timeline = load_timeline([DEMO, nhl])

    async def go() -> tuple[int, int, int]:
        clock = ReplayClock(timeline, None, 0.0, chunk_rows=1)  # yields to the loop after every row
        clock.connected(NHL, 2)
        clock.connected(NHL, 2)
        for _ in range(100):  # a started clock would put out a release per step
            await asyncio.sleep(0)
        waiting = clock.released_count
        clock.connected(NBA, 2)
        while not clock.finished:
            await asyncio.sleep(0)
        clock.stop()
        return waiting, clock.released_count, len(timeline.releases)

    waiting, out, total = asyncio.run(asyncio.wait_for(go(), 30))
    assert waiting == 0 and out == total > 0


BAD = [("on-connect", 0), ("on-connect", -1), ("on-connect", 1.5), ("on-connect", True), ("now", 2)]


@pytest.mark.parametrize(("start", "n"), BAD)
def test_a_bad_start_sports_is_refused_naming_it(start: str, n: object) -> None:
    with pytest.raises(ConfigError, match="start_sports") as err:
        MockUpstream(load_timeline([DEMO]), start=start, start_sports=n)  # type: ignore[arg-type]
    assert repr(n) in str(err.value)


def _hold_stream(url: str, sport: str, got_initial: threading.Event, stop: threading.Event) -> None:
    """An SSE stream of ``sport`` read until ``stop`` (or until the mock cuts it: its fault)."""
    with (
        contextlib.suppress(httpx.HTTPError),
        httpx.stream("GET", f"{url}/v1/sse/odds/{sport}", params={"apiKey": CANARY}, timeout=30) as r,
    ):
        for line in r.iter_lines():
            if "initial_state" in line:
                got_initial.set()
            if stop.is_set():
                return


@pytest.mark.timeout(90)
def test_watch_gets_every_alert_though_one_sport_connects_first_and_the_other_late(nhl: Path) -> None:
    """The watch test's flake made certain: an nhl stream is open (its initial_state taken)
    before watch even starts, so watch's streams come a process start later; with the clock
    waiting for two sports watch still prints exactly the replay's alerts, each sport in order."""
    expected = lines(invoke(["replay", str(DEMO), str(nhl)]).stdout)
    got_initial, stop = threading.Event(), threading.Event()
    with contextlib.contextmanager(serve_mock)(nhl, start_sports=2) as (url, mock):
        th = threading.Thread(target=_hold_stream, args=(url, NHL, got_initial, stop), daemon=True)
        th.start()
        try:
            assert got_initial.wait(30)
            assert mock.released == 0  # one sport's stream: the clock waits
            args = ["--multi", f"{NBA},{NHL}", "--base-url", url, "--stamp", "data", "--heartbeat-s", "1"]
            watch = run(
                ["watch", *args, "--retry-scale", "0.02", "--max-alerts", str(len(expected)), "--duration", "45"]
            )
        finally:
            stop.set()
    assert watch.returncode == 0, watch.stderr
    got = lines(watch.stdout)
    assert sorted(got) == sorted(expected)
    for sport in (NBA, NHL):
        assert [ln for ln in got if sport in ln] == [ln for ln in expected if sport in ln]


def test_more_start_sports_than_served_is_refused_naming_the_sports() -> None:
    """review22 R22-11: a clock waiting for more sports than the mock serves would never start."""
    timeline = load_timeline([DEMO])
    served = len(dict.fromkeys(timeline.sports))
    MockUpstream(timeline, start_sports=served)  # as many as served: fine
    with pytest.raises(ConfigError, match="start_sports") as err:
        MockUpstream(timeline, start_sports=served + 1)
    assert f"more than the {served} sports served" in str(err.value)
    MockUpstream(timeline, start_sports=served + 1, sports_extra=["tennis_atp"])  # one more served
