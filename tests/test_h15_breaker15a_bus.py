"""CORS on ``serve --bus`` (a real NATS JetStream node, a real BusServer on uvicorn): the
frontend's own path, which ``serve --source`` does not have, carries the CORS headers too: a
resume older than the ring (read from the alert log before subscribing); and its 400s and
preflight (helper breaker15a, issue 15 "Deployable"; checked, no defect). Findings: /tmp/notes/breaker15a.md.
"""

from __future__ import annotations

import json

import httpx

from dropengine.server.asgi import BackgroundServer
from dropengine.server.busfeed import BusServer
from dropengine.server.ingest import ServeConfig

from .natsutil import NatsServer, nats_server_module
from .test_h13_frontend_bus import KEY, PATH, new_log, publish, wait

__all__ = ["nats_server_module"]

ORIGIN = "https://odds.example.com"


def test_cors_on_the_bus_frontend_log_backfill_and_its_refusals(nats_server_module: NatsServer) -> None:
    cfg = new_log(nats_server_module)
    publish(cfg, 0, 6)
    srv = BusServer(cfg, ServeConfig(buffer_size=2), info_every_s=0.2)  # a ring of 2: older cursors read the log
    srv.allow_origins([ORIGIN])
    with BackgroundServer(srv.app) as url, httpx.Client(timeout=httpx.Timeout(5, read=5)) as c:
        wait(lambda: c.get(url + "/healthz").json()["buffered"] == 2, "the frontend following the log")
        epoch = c.get(url + "/healthz").json()["epoch"]
        frames = []
        with c.stream("GET", url + PATH, params={"apiKey": KEY, "threshold": 1, "heartbeat_s": 1},
                      headers={"Origin": ORIGIN, "Last-Event-ID": f"{epoch}-1"}) as r:
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == ORIGIN
            for line in r.iter_lines():
                if line.startswith("data:"):
                    frames.append(json.loads(line[5:]))
                    if len(frames) == 6:  # connected + the 5 alerts after seq 1 (3 of them from the log)
                        break
        assert [f["type"] for f in frames] == ["connected"] + ["odds_drop"] * 5
        r = c.get(url + PATH, params={"apiKey": KEY, "threshold": "0"}, headers={"Origin": ORIGIN})
        assert r.status_code == 400 and r.json()["parameter"] == "threshold"  # refused, readable cross-origin
        assert r.headers["access-control-allow-origin"] == ORIGIN
        r = c.options(url + PATH, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                           "Access-Control-Request-Headers": "last-event-id, x-api-key"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
