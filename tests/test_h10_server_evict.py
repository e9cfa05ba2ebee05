"""Issue 10: ``serve`` bounds its memory: keys not updated for ``evict_idle_s`` or whose
event started ``evict_started_s`` ago are forgotten, judged in data time (the newest
``last_update`` ingested), so a replay at any speed evicts what a live run would.
Keys held and evicted are in ``/metrics`` and ``/healthz``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest

from dropengine import Quote
from dropengine.core.errors import ConfigError
from dropengine.server.app import DropServer, ServeConfig

from .test_serve import ManualSource, _wait, server  # noqa: F401  (the fixture)

SPORT = "basketball_nba"
H = 3_600_000
T0 = 1_778_600_000_000  # 2026-05-12T15:33:20Z


def q(event: str, lu: int, price: int = -110, commence: str | None = None) -> Quote:
    return Quote(SPORT, event, "pinnacle", "h2h_home", price, lu, commence_time=commence)


def _run(srv: DropServer, batches: list[tuple[list[Quote], int]]) -> None:
    async def go() -> None:
        for quotes, now_ms in batches:
            srv.ingest(quotes, now_ms)
            if srv._evicting is not None:
                await srv._evicting

    asyncio.run(go())


@pytest.mark.parametrize("wall", [T0 + 7 * H, T0 + 1000 * H])  # live, or a replay of old data: the same
def test_idle_keys_are_evicted_by_data_time(wall: int) -> None:
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=6 * 3600, evict_started_s=0))
    _run(srv, [([q("old", T0), q("busy", T0)], wall)]
         + [([q("busy", T0 + k * H // 2, -110 - 5 * (k % 2))], wall) for k in range(1, 15)])  # 7 h of data
    assert srv.engine.price_of("old", "pinnacle", "h2h_home") is None
    assert srv.engine.price_of("busy", "pinnacle", "h2h_home") is not None
    assert srv.metrics.keys_evicted == 1 and srv.engine.keys_held == 1


def test_keys_of_events_that_started_long_ago_are_evicted() -> None:
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=0, evict_started_s=12 * 3600))
    started = "2026-05-12T10:00:00Z"  # T0 - 5.5 h
    later = "2026-05-13T10:00:00Z"
    wall = T0 + 8 * H
    batches = [([q("ended", T0, commence=started), q("tomorrow", T0, commence=later)], wall)]
    batches += [([q("tomorrow", T0 + k * H, -110 - 5 * (k % 2), commence=later)], wall) for k in range(1, 8)]
    _run(srv, batches)  # data time T0 + 7 h: "ended" started 12.5 h before it
    assert srv.engine.price_of("ended", "pinnacle", "h2h_home") is None
    assert srv.engine.price_of("tomorrow", "pinnacle", "h2h_home") is not None


def test_zero_disables_and_bad_values_are_refused() -> None:
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=0, evict_started_s=0))
    _run(srv, [([q("old", T0, commence="2020-01-01T00:00:00Z")], T0), ([q("new", T0 + 100 * H)], T0 + 100 * H)])
    assert srv.engine.keys_held == 2 and srv.metrics.keys_evicted == 0
    for bad in (-1, float("nan"), "6h"):
        with pytest.raises(ConfigError, match="evict_idle_s"):
            ServeConfig(evict_idle_s=bad)  # type: ignore[arg-type]


def test_a_row_dated_in_the_future_does_not_evict_everything() -> None:
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0))
    _run(srv, [([q("a", T0), q("b", T0)], T0), ([q("c", T0 + 1000 * H)], T0)])  # c: 1000 h ahead of the wall
    assert srv.engine.keys_held == 3


def _stale_then_due(srv: DropServer, n: int) -> None:
    """``n`` keys at T0, then a confirmed data-time jump past the idle limit: eviction due."""
    srv.ingest([Quote(SPORT, f"e{i}", "b", "h2h_home", -110, T0) for i in range(n)], T0)
    srv.ingest([q("x", T0 + 2 * H)], T0 + 2 * H)  # a jump past the idle limit: pending...
    srv.ingest([q("x", T0 + 2 * H)], T0 + 2 * H)  # ...confirmed by the next batch: eviction due


async def _steps(srv: DropServer, n: int) -> None:
    """Let the loop run ``n`` times (each time at most one eviction step runs)."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_ingestion_goes_on_between_eviction_steps() -> None:
    """Eviction runs in steps of ``evict_chunk`` keys on the event loop: between steps quotes
    are ingested and detected at once (no lock, no held queue, no thread), and a key refreshed
    before its step comes is kept."""
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0))
    srv.evict_chunk = 10

    async def go() -> None:
        srv.ingest([Quote(SPORT, f"e{i}", "b", "h2h_home", -110, T0) for i in range(1000)], T0)
        if srv._evicting is not None:
            await srv._evicting
        srv.ingest([q("x", T0 + 2 * H)], T0 + 2 * H)
        srv.ingest([q("x", T0 + 2 * H)], T0 + 2 * H)  # a jump past the idle limit, confirmed: due
        task = srv._evicting
        assert task is not None
        await _steps(srv, 3)
        assert not task.done() and srv._held is None  # in progress, ingestion not held
        assert 0 < srv.metrics.keys_evicted < 1000  # the steps done are counted as they go
        # a quote mid-eviction is detected and alerted at once...
        srv.ingest([q("x", T0 + 2 * H + 1, -130)], T0 + 2 * H)
        assert srv.hub.counters.produced == 1
        # ...and an idle key refreshed before its step is kept
        srv.ingest([Quote(SPORT, "e999", "b", "h2h_home", -110, T0 + 2 * H + 2)], T0 + 2 * H)
        assert not task.done()
        await task

    asyncio.run(go())
    assert srv.metrics.keys_evicted == 999
    assert srv.engine.keys_held == 2  # x and the refreshed e999
    assert srv.engine.price_of("e999", "b", "h2h_home") == -110


def test_a_large_engine_is_evicted_in_steps_with_the_same_result() -> None:
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0))

    async def go() -> None:
        _stale_then_due(srv, 120_000)  # more than one step of the default chunk
        assert srv._evicting is not None and not srv._evicting.done()
        await srv._evicting

    asyncio.run(go())
    assert srv.metrics.keys_evicted == 120_000 and srv.engine.keys_held == 1


def test_a_fallback_save_mid_eviction_stops_it_and_it_runs_again_later(tmp_path: Any) -> None:
    """A save without fork reads the engine in a thread: an eviction in progress must not
    change it under the reader. It stops after its current step (the steps done are done)
    and runs again when data time next advances."""
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0, state_path=tmp_path / "s.state"))
    srv.fork_saves = False
    srv.evict_chunk = 10

    async def go() -> None:
        _stale_then_due(srv, 1000)
        task = srv._evicting
        assert task is not None
        await _steps(srv, 3)
        save = asyncio.create_task(srv.save_async())
        await asyncio.sleep(0)
        assert srv._held is not None  # the snapshot is being read in a thread
        held_then = srv.engine.keys_held
        await save
        assert srv.engine.keys_held == held_then > 1  # nothing evicted while the snapshot read
        await task
        srv.ingest([q("x", T0 + 2 * H + 1000)], T0 + 2 * H)  # data time advances: due again
        if srv._evicting is not None:
            await srv._evicting

    asyncio.run(go())
    assert srv.engine.keys_held == 1 and srv.metrics.keys_evicted == 1000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="saves fork where fork exists")
def test_a_forked_save_mid_eviction_sees_the_engine_between_two_steps(tmp_path: Any) -> None:
    """Steps run on the loop, so a fork (a periodic save) lands between two: the child saves a
    whole engine of that instant while the eviction goes on in this process."""
    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0, state_path=path))
    srv.evict_chunk = 10
    at_fork: list[int] = []

    async def go() -> None:
        _stale_then_due(srv, 1000)
        task = srv._evicting
        assert task is not None
        await _steps(srv, 3)

        async def save() -> None:
            at_fork.append(srv.engine.keys_held)  # the same synchronous run as the fork in save_async
            await srv.save_async()

        await asyncio.gather(save(), task)

    asyncio.run(go())
    assert srv.metrics.state_saves == 1 and srv.engine.keys_held == 1 and srv.metrics.keys_evicted == 1000
    assert 1 < at_fork[0] < 1001
    restored = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0, state_path=path))
    restored.restore(int(time.time() * 1000))
    assert restored.engine.keys_held == at_fork[0]


def test_a_shutdown_mid_eviction_does_not_wait_for_it_and_saves(tmp_path: Any) -> None:
    """Stopping the server while an eviction is in progress abandons it after the current
    step (the engine is consistent between steps) and the final save is written."""
    path = tmp_path / "s.state"
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0, state_path=path))
    srv.evict_chunk = 1

    async def go() -> None:
        async with srv._lifespan(srv.starlette):
            _stale_then_due(srv, 100_000)  # 100,000 steps: far more than the shutdown waits for
            await _steps(srv, 3)
            assert srv._evicting is not None and not srv._evicting.done()
        assert srv._evicting.done()

    asyncio.run(asyncio.wait_for(go(), 120))  # bounded: a hang fails here, not forever
    assert path.exists()
    assert 0 < srv.metrics.keys_evicted < 100_000
    assert srv.engine.keys_held == 100_001 - srv.metrics.keys_evicted
    restored = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0, state_path=path))
    restored.restore(int(time.time() * 1000))
    assert restored.engine.keys_held == srv.engine.keys_held


def test_metrics_and_healthz_show_keys_held_and_evicted(server: Any) -> None:  # noqa: F811
    url, srv, src = server(ServeConfig(evict_idle_s=60, evict_started_s=0))
    src.push([q("old", T0), q("busy", T0)])
    src.push([q("busy", T0 + 120_000, -130)])  # two minutes of data later: "old" idle for > 60 s
    src.push([q("busy", T0 + 120_000, -130)])  # (a jump past the limit needs a second batch to confirm it)
    _wait(lambda: srv.metrics.keys_evicted == 1)
    with httpx.Client(timeout=5) as c:
        h = c.get(url + "/healthz").json()
        m = c.get(url + "/metrics").text
    assert h["keys_held"] == 1 and h["keys_evicted"] == 1
    assert "dropengine_keys_held 1" in m and "dropengine_keys_evicted_total 1" in m


def test_eviction_waits_while_a_snapshot_reads_the_engine_in_a_thread(tmp_path: Any) -> None:
    """The fallback save (no fork) reads the engine in a thread: an eviction due meanwhile
    must not change it under the reader; it runs once the snapshot is done."""
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0, state_path=tmp_path / "s.state"))
    srv.fork_saves = False

    async def go() -> None:
        srv.ingest([q(f"e{i}", T0) for i in range(1000)], T0 + 2 * H)
        if srv._evicting is not None:
            await srv._evicting
        srv.ingest([q("x", T0 + 2 * H)], T0 + 2 * H)
        srv.ingest([q("x", T0 + 2 * H)], T0 + 2 * H)  # a jump past the idle limit, confirmed
        if srv._evicting is not None:
            await srv._evicting
        assert srv.engine.keys_held == 1  # the 1,000 idle keys went
        srv.ingest([q(f"f{i}", T0 + 2 * H) for i in range(1000)], T0 + 2 * H)
        save = asyncio.create_task(srv.save_async())
        await asyncio.sleep(0)
        assert srv._held is not None
        srv._data_ms = T0 + 3 * H + 1  # the f keys are idle by now
        assert await srv.evict() == 0  # but not now: the snapshot is reading them
        await save
        srv.ingest([q("x", T0 + 4 * H, -130)], T0 + 4 * H)  # due again: the f keys are idle
        if srv._evicting is not None:
            await srv._evicting

    asyncio.run(go())
    assert srv.engine.keys_held == 1 and srv.metrics.keys_evicted == 2000
