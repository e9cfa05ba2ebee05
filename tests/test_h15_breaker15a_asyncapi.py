"""docs/asyncapi.yaml against frames of inputs the deploy test does not replay (helper breaker15a,
issue 15 "Deployable"; checked, no defect): a real DropServer (uvicorn on 127.0.0.1) replays a
Betfair stream recording (runner sides ``{market_key}:{selection}``, prices converted from decimal
odds, written as JSON floats), and every frame of the whole backlog of every type validates
against the document's payload for its ``type``.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx

from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ReplaySource

from .conftest import require_data
from .test_h15_deploy_asyncapi import load_doc, validator


def test_every_frame_of_a_betfair_replay_matches_the_document() -> None:
    path = require_data("betfair_stream", "BASIC-1.132153978")
    doc = load_doc()
    schemas = {m["name"]: validator(doc, m["payload"]["$ref"]) for m in doc["components"]["messages"].values()}
    srv = DropServer(ReplaySource([path], None, 5.0), ServeConfig(buffer_size=100_000, buffer_age_s=1e9,
                                                                   max_pending=1_000_000))
    bg = BackgroundServer(srv.app)
    url = bg.start()
    try:
        deadline = time.monotonic() + 30
        while not (health := httpx.get(url + "/healthz", timeout=5).json())["source"].get("finished"):
            assert time.monotonic() < deadline, "the replay did not finish in 30 s"
            time.sleep(0.05)
        seen: Counter[str] = Counter()
        runners = 0
        query = {"apiKey": "k", "types": "odds_drop,line_move,steam", "threshold": "1", "line_threshold": "0.25",
                 "heartbeat_s": "1", "last_event_id": f"{health['epoch']}-0"}
        with httpx.stream("GET", url + "/v1/odds-drop/all", params=query, timeout=httpx.Timeout(5, read=10)) as r:
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                frame = json.loads(line[5:])
                kind = frame["type"]
                errors = sorted(schemas[kind].iter_errors(frame), key=str)
                assert not errors, f"{kind} frame {frame} breaks the document: {errors[0].message}"
                seen[kind] += 1
                runners += kind == "odds_drop" and frame["side"].startswith("win:")
                if kind == "heartbeat":
                    break
    finally:
        bg.stop()
    assert seen["odds_drop"] == health["alerts_produced"] > 0 and seen["connected"] == 1
    assert runners == seen["odds_drop"]  # every alert is a runner side of the WIN market
