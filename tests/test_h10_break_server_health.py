"""Issue 10, second pass ("server-breaker"): ``/healthz`` with several upstream sports, one of
them down. Decision: the server is degraded (503) only when NO upstream stream has been open
for two heartbeat intervals (it still serves the other sports; a 503 would take it out of a
load balancer), but a sport down that long is listed under ``source.streams_down`` (it was
visible nowhere). A flapping stream restarts its clock each time it opens."""

from __future__ import annotations

from dropengine.core.keys import Secret
from dropengine.live import UpstreamConfig
from dropengine.server.sources import UpstreamSource


def test_one_sport_down_is_listed_while_the_server_stays_ok() -> None:
    now = [100.0]
    cfg = UpstreamConfig("http://127.0.0.1:9", Secret("k-canary-health-2"), "sse", heartbeat_s=2.0)
    src = UpstreamSource(cfg, ["nba", "nfl", "nhl"], clock=lambda: now[0])
    for sport in ("nba", "nfl", "nhl"):
        src.stats.stream(sport).state = "open"
    assert src.status()["streams_down"] == {}
    src.stats.stream("nhl").state = "waiting"
    src.status()  # first seen down now
    now[0] += 4.0
    assert src.status()["streams_down"] == {} and src.problem() is None  # two heartbeats, not more
    now[0] += 1.0
    assert src.status()["streams_down"] == {"nhl": 5.0}
    assert src.problem() is None  # the others are open: not degraded
    src.stats.stream("nhl").state = "open"  # flapping: open for a moment...
    assert src.status()["streams_down"] == {}
    src.stats.stream("nhl").state = "waiting"  # ...down again: its clock restarts
    now[0] += 1.0
    assert src.status()["streams_down"] == {}
    for sport in ("nba", "nfl"):
        src.stats.stream(sport).state = "waiting"
    src.status()  # (the disconnect events track it; here a look does)
    now[0] += 4.5
    assert src.problem() is not None  # all down for more than two heartbeats: degraded
    assert set(src.status()["streams_down"]) == {"nba", "nfl", "nhl"}
    assert "k-canary-health-2" not in str(src.status()) + (src.problem() or "")
