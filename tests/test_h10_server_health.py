"""Issue 10: ``/healthz`` reports degraded (503, with a reason) when the upstream has been
down for more than two heartbeat intervals, and ``serve`` logs every disconnect and
reconnect without the key.

A real mock upstream (``dropengine.mock``) serves the demo; its first connection is cut and
the next ones are refused (503) until the test lifts the fault. Every wait is bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dropengine.core.keys import KeyTable, Secret
from dropengine.core.retry import RetryPolicy
from dropengine.live import UpstreamConfig
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import UpstreamSource

from .conftest import FIXTURES

UPSTREAM_KEY = "CANARY-UPSTREAM-KEY-77aa"
KEYS = KeyTable.parse("client-key business 5\n")
SPORT = "basketball_nba"


def _wait(cond: Callable[[], Any], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.05)


def test_healthz_degraded_while_the_upstream_is_down_and_disconnects_are_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dropengine")
    mock = MockUpstream(load_timeline([FIXTURES / "demo_nba_frames.ndjson"]),
                        keys=KeyTable.parse(f"{UPSTREAM_KEY} business 5\n"), speed=None, retry_after=0.2,
                        faults=["cut,after=4,conn=1", "http=503,conn=2-,retry_after=0.2"], sse_heartbeat_s=1)
    with BackgroundServer(mock.app, secrets=mock.secrets()) as upstream_url:
        cfg = UpstreamConfig(upstream_url, Secret(UPSTREAM_KEY), "sse", heartbeat_s=1.0,
                             policy=RetryPolicy(base_s=0.05, cap_s=0.3, healthy_s=0.2, restart_wait_s=0.1))
        srv = DropServer(UpstreamSource(cfg, [SPORT]), ServeConfig(keys=KEYS))
        with BackgroundServer(srv.app, secrets=[UPSTREAM_KEY]) as url, httpx.Client(timeout=5) as c:
            # cut after 4 frames, then refused: down; degraded once two heartbeats (2 s) have passed
            _wait(lambda: c.get(url + "/healthz").status_code == 503, what="degraded")
            h = c.get(url + "/healthz")
            body = h.json()
            assert body["status"] == "degraded" and "no upstream stream open" in body["reason"]
            assert body["source"]["streams_open"] == 0
            mock.set_faults([])  # the upstream comes back
            _wait(lambda: c.get(url + "/healthz").status_code == 200, what="ok again")
            assert c.get(url + "/healthz").json()["status"] == "ok"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("dropengine.serve")]
    assert all(UPSTREAM_KEY not in ln for ln in lines)
    disconnects = [ln for ln in lines if "retry" in ln and SPORT in ln]
    opens = [ln for ln in lines if ln.endswith(": open") and SPORT in ln]
    assert any("retry 1 " in ln for ln in disconnects), lines  # the attempt is named
    assert any("503" in ln for ln in disconnects), lines  # and the reason
    assert len(opens) >= 2, lines  # the first connection and the reconnect


def test_a_replay_source_is_never_degraded_by_the_upstream_rule() -> None:
    from dropengine.server.sources import ReplaySource

    src = ReplaySource([FIXTURES / "demo_nba_frames.ndjson"], speed=None)
    assert src.problem() is None


def test_the_down_clock_counts_from_the_start_and_stops_when_a_stream_opens() -> None:
    now = [100.0]
    cfg = UpstreamConfig("http://127.0.0.1:9", Secret(UPSTREAM_KEY), "sse", heartbeat_s=2.0)
    src = UpstreamSource(cfg, [SPORT], clock=lambda: now[0])
    now[0] += 4.0
    assert src.problem() is None  # two heartbeats, not more
    now[0] += 0.5
    assert src.problem() is not None and "4.5 s" in (src.problem() or "")
    src.stats.stream(SPORT).state = "open"
    assert src.problem() is None
    src.stats.stream(SPORT).state = "waiting"
    now[0] += 4.5
    assert src.problem() is None  # down for 0 s when first seen down: the clock restarts
    now[0] += 4.1
    assert src.problem() is not None
