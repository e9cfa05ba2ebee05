"""Breaking ``/metrics`` (prometheus-client) and ``/healthz`` of a real ``DropServer`` (uvicorn on
127.0.0.1) (helper breaker15a, issue 15 "Deployable"). Findings: /tmp/notes/breaker15a.md.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dropengine import Quote
from dropengine.deliver.http import WebhookSink
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.delivery import ServerDelivery
from dropengine.server.metrics import exposition
from dropengine.server.sources import ManualSource

SPORT = "basketball_nba"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_webhooks_one_host() -> Iterator[tuple[str, DropServer, ManualSource]]:
    """A server delivering to two webhooks on one host (two paths): e.g. two Discord channels,
    whose URLs differ only after the host."""
    port = closed_port()
    sinks = [WebhookSink(f"http://127.0.0.1:{port}/{path}") for path in ("alerts", "steam")]
    source = ManualSource()
    srv = DropServer(source, ServeConfig())
    srv.delivery = ServerDelivery(sinks, "", drain_s=0.2)
    bg = BackgroundServer(srv.app)
    url = bg.start()
    try:
        yield url, srv, source
    finally:
        bg.stop()


def test_each_sink_is_counted_apart(two_webhooks_one_host: tuple[str, DropServer, ManualSource]) -> None:
    url, _srv, source = two_webhooks_one_host
    source.push([Quote(SPORT, "g1", "pinnacle", "h2h_home", p, 1_000 + i) for i, p in enumerate((-110, -130))])
    with httpx.Client(timeout=5) as c:
        sinks = c.get(url + "/healthz").json()["sinks"]
        text = c.get(url + "/metrics").text
    offered = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "dropengine_sink_offered_total"]
    assert len(sinks) == 2, sinks
    assert len(offered) == 2 and sum(s.value for s in offered) == 2.0, offered


def test_metrics_can_be_read_after_the_server_stopped() -> None:
    """Invariant (holds today): an embedding program may read a stopped server's registry
    (a last scrape during shutdown): the final counts, no exception."""
    source = ManualSource()
    srv = DropServer(source, ServeConfig())
    bg = BackgroundServer(srv.app)
    bg.start()
    source.push([Quote(SPORT, "g1", "pinnacle", "h2h_home", p, 1_000 + i) for i, p in enumerate((-110, -130))])
    bg.stop()
    got = {s.name: s.value for f in text_string_to_metric_families(exposition(srv.registry).decode())
           for s in f.samples if not s.labels}
    assert got["dropengine_alerts_produced_total"] == 1.0 and got["dropengine_connections"] == 0.0
