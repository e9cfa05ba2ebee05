"""``/metrics`` through prometheus-client and CORS (issue 15, "Deployable"), against real
servers (uvicorn on 127.0.0.1, httpx clients).

- ``/metrics`` is prometheus-client's text format, parsed here by prometheus-client's own
  parser; every metric name an earlier test reads (grep tests for /metrics) is still there with
  the value the server's status gives; each server has its own registry (two in one process
  count apart, nothing lands in the global registry).
- ``--cors-origin``: the headers really appear on the lean SSE stream (whose body bypasses ASGI
  ``send``), on the JSON endpoints and on the JSON errors; a preflight is answered for an
  allowed origin and refused for another; a server without it sends no CORS header at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dropengine import Quote
from dropengine.core.errors import ConfigError
from dropengine.core.keys import KeyTable
from dropengine.server import sources
from dropengine.server.app import DropServer, ServeConfig, cors_origins
from dropengine.server.asgi import BackgroundServer
from dropengine.server.metrics import exposition

KEY = "deploy-key-1"
KEYS = KeyTable.parse(f"{KEY} business 5\n")
SPORT = "basketball_nba"
ORIGIN = "https://odds.example.com"

#: Every metric name (sample name, labels) that tests outside this file read from /metrics of
#: ``serve --source`` (tests/test_serve.py, test_h10_*, test_h12_server_signals.py).
NAMES_READ_ELSEWHERE = (
    "dropengine_connections", "dropengine_alerts_produced_total", "dropengine_alert_deliveries_total",
    "dropengine_queue_depth", "dropengine_slow_clients_cut_total", "dropengine_upstream_reconnects_total",
    "dropengine_keys_held", "dropengine_keys_evicted_total", "dropengine_state_saves_total",
    "dropengine_state_save_failures_total",
)
#: ... and of ``serve --bus`` (test_h13_frontend_bus.py, test_h13_frontfix_bus.py, test_h13_e2e_faults.py).
BUS_NAMES_READ_ELSEWHERE = ("dropengine_backfills_total", "dropengine_log_lag", "dropengine_log_holes_total")


class Source(sources.ManualSource):
    def __init__(self) -> None:
        super().__init__()
        self.clock = 1_000

    def move(self, event: str, prices: list[int]) -> None:
        for p in prices:
            self.clock += 1_000
            self.push([Quote(SPORT, event, "pinnacle", "h2h_home", p, self.clock)])


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[str, DropServer, Source]]]:
    running: list[BackgroundServer] = []

    def go(origins: tuple[str, ...] = (), sse_response: str = "lean") -> tuple[str, DropServer, Source]:
        source = Source()
        srv = DropServer(source, ServeConfig(keys=KEYS))
        srv.sse_response = sse_response
        srv.allow_origins(origins)
        bg = BackgroundServer(srv.app, secrets=[KEY])
        running.append(bg)
        return bg.start(), srv, source

    yield go
    for bg in running:
        bg.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics text, parsed by prometheus-client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def first_frames(url: str, path: str, n: int, headers: dict[str, str] | None = None,
                 **params: str) -> tuple[httpx.Headers, list[dict[str, Any]]]:
    """The response headers and the first ``n`` data frames of a stream."""
    frames: list[dict[str, Any]] = []
    with httpx.Client(timeout=5) as c, c.stream("GET", url + path, params={"apiKey": KEY, **params},
                                                headers=headers or {}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data:"):
                frames.append(json.loads(line[5:]))
                if len(frames) >= n:
                    break
        return r.headers, frames


# ---- /metrics -------------------------------------------------------------------------------------

def test_metrics_is_prometheus_text_with_the_names_other_tests_read(start: Any) -> None:
    url, _srv, src = start()
    src.move("g1", [-110, -125, -140])  # two drops
    first_frames(url, "/v1/odds-drop/all", 1)  # a connection accepted (and closed)
    with httpx.Client(timeout=5) as c:
        assert c.get(url + "/v1/odds-drop/all", params={"apiKey": KEY, "threshold": "0"}).status_code == 400
        assert c.get(url + "/v1/odds-drop/all").status_code == 401
        r = c.get(url + "/metrics")
        health = c.get(url + "/healthz").json()
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(r.text)
    for name in NAMES_READ_ELSEWHERE:
        assert (name, ()) in got, name
    assert got[("dropengine_alerts_produced_total", ())] == health["alerts_produced"] == 2
    assert got[("dropengine_alerts_total", (("type", "odds_drop"),))] == 2
    assert got[("dropengine_alerts_total", (("type", "steam"),))] == 0
    assert got[("dropengine_connections_total", ())] == 1
    assert got[("dropengine_rejected_total", (("status", "400"),))] == 1
    assert got[("dropengine_rejected_total", (("status", "401"),))] == 1
    assert got[("dropengine_keys_held", ())] == health["keys_held"] == 1
    # the substring checks earlier tests make still hold
    assert "dropengine_alerts_produced_total 2" in r.text and 'dropengine_alerts_total{type="odds_drop"} 2' in r.text


def test_each_server_has_its_own_registry_and_none_is_global(start: Any) -> None:
    url_a, _, src_a = start()
    url_b, _, _ = start()
    src_a.move("g1", [-110, -125])
    a = samples(httpx.get(url_a + "/metrics", timeout=5).text)
    b = samples(httpx.get(url_b + "/metrics", timeout=5).text)
    assert a[("dropengine_alerts_produced_total", ())] == 1 and b[("dropengine_alerts_produced_total", ())] == 0
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("dropengine")]


def test_the_bus_frontend_metrics_are_prometheus_text_too() -> None:
    """``serve --bus``'s own lines (BusServer._metric_lines) go through the same collector (a
    frontend not yet connected: no bus needed to read its registry)."""
    from dropengine.bus.config import BusConfig
    from dropengine.server.busfeed import BusServer

    srv = BusServer(BusConfig.parse("nats://127.0.0.1:1"))
    got = samples(exposition(srv.registry).decode())
    for name in (*BUS_NAMES_READ_ELSEWHERE, "dropengine_connections", "dropengine_bus_connected"):
        assert (name, ()) in got, name
    assert got[("dropengine_bus_connected", ())] == 0


# ---- CORS -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sse_response", ["lean", "sse-starlette"])
def test_cors_headers_appear_on_the_sse_stream(start: Any, sse_response: str) -> None:
    url, _, src = start((ORIGIN,), sse_response)
    src.move("g1", [-110, -125])
    headers, frames = first_frames(url, f"/v1/odds-drop/{SPORT}", 2, headers={"Origin": ORIGIN}, since="0")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in headers.get("vary", "")
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert [f["type"] for f in frames] == ["connected", "odds_drop"]  # the stream itself unchanged
    # another origin gets no permission (the browser then refuses to hand the stream over)
    headers, _ = first_frames(url, "/v1/odds-drop/all", 1, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers


def test_cors_on_json_endpoints_and_errors_and_a_wildcard(start: Any) -> None:
    url, _, _ = start(("*",))
    with httpx.Client(timeout=5, headers={"Origin": ORIGIN}) as c:
        for path, status in (("/healthz", 200), ("/metrics", 200), ("/v1/odds-drop/all", 401)):
            r = c.get(url + path)
            assert r.status_code == status and r.headers["access-control-allow-origin"] == "*", path
        r = c.get(url + "/v1/odds-drop/all", params={"apiKey": KEY, "threshold": "x"})
        assert r.status_code == 400 and r.json()["parameter"] == "threshold"
        assert r.headers["access-control-allow-origin"] == "*"


def test_preflight_is_answered_for_an_allowed_origin_and_refused_for_others(start: Any) -> None:
    url, _, _ = start((ORIGIN, "http://127.0.0.1:5173"))
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "x-api-key, last-event-id"}
    with httpx.Client(timeout=5) as c:
        r = c.options(url + "/v1/odds-drop/multi", headers=ask)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert {"GET", "OPTIONS"} <= {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"x-api-key", "last-event-id"} <= allowed
        assert r.headers["access-control-max-age"] == "600"
        r = c.options(url + "/v1/odds-drop/multi", headers={**ask, "Origin": "https://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = c.options(url + "/v1/odds-drop/multi", headers={**ask, "Access-Control-Request-Headers": "x-other"})
        assert r.status_code == 400  # a header the server does not take


def test_no_cors_headers_when_not_configured(start: Any) -> None:
    url, _, src = start()
    src.move("g1", [-110, -125])
    headers, _ = first_frames(url, "/v1/odds-drop/all", 2, headers={"Origin": ORIGIN}, since="0")
    assert not [h for h in headers if h.lower().startswith("access-control-")]
    with httpx.Client(timeout=5) as c:
        r = c.options(url + "/v1/odds-drop/all", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert r.status_code == 405 and not [h for h in r.headers if h.lower().startswith("access-control-")]
        r = c.get(url + "/healthz", headers={"Origin": ORIGIN})
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("bad", ["https://odds.example.com/", "odds.example.com", "ftp://x.example",
                                 "https://x.example/path", ""])
def test_an_origin_no_browser_would_send_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"cors_origin: .* is not \* or an origin"):
        cors_origins([bad])


def test_origins_checked_and_deduplicated() -> None:
    assert cors_origins(["https://a.example", "http://[::1]:8080", "https://a.example"]) == \
        ("https://a.example", "http://[::1]:8080")
    assert cors_origins(["https://a.example", "*"]) == ("*",)
    assert cors_origins([]) == ()


def test_origins_are_given_once() -> None:
    srv = DropServer(Source(), ServeConfig(keys=KEYS))
    srv.allow_origins([])  # nothing to allow: CORS stays off
    assert srv.cors == ()
    srv.allow_origins([ORIGIN])
    with pytest.raises(ConfigError, match=r"cors_origin: already allowed https://odds\.example\.com"):
        srv.allow_origins(["https://other.example"])
