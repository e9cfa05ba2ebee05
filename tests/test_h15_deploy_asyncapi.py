"""docs/asyncapi.yaml describes what a real ``dropengine serve`` sends (issue 15, "Deployable").

A real ``serve`` process (``python -m dropengine serve --config FILE`` plus a
``DROPENGINE_SERVE_*`` variable: the config path end to end) replays a recording built to raise
every alert type (price drops, line moves, steam; game and prop rows). Clients on all three
channels take the backlog with a resume cursor, and resume with cursors the server cannot
honour (another epoch; a malformed one), which get a ``reset``. EVERY frame received is
validated with jsonschema against the document's message payload for its ``type``; a frame
type the document lacks fails the test, and so does a message of the document that no frame
exercised. The SSE ``id:`` of each frame follows the message's ``x-sse-id``. The document is
also checked to be whole: every ``$ref`` resolves, operations reference their own channel's
messages, and the channels are exactly the server's stream routes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from .conftest import ROOT

DOC_PATH = ROOT / "docs" / "asyncapi.yaml"
SPORT = "basketball_nba"
T0 = 1_778_600_000_000
BOOKS = ("pinnacle", "draftkings", "fanduel")
ORIGIN = "http://127.0.0.1:5173"


def load_doc() -> dict[str, Any]:
    doc = yaml.safe_load(DOC_PATH.read_text())
    assert isinstance(doc, dict)
    return doc


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator(doc: dict[str, Any], ref: str) -> jsonschema.Draft7Validator:
    """A validator of the schema at ``ref`` (AsyncAPI schemas are a superset of JSON Schema
    draft 7). The document's components ride along in the root schema, so its ``#/components/...``
    references resolve in place."""
    return jsonschema.Draft7Validator({"$ref": ref, "components": {"schemas": doc["components"]["schemas"]}})


# -- the recording ----------------------------------------------------------------------------------

def game(book: str, at: int, home_ml: int, spread: float) -> dict[str, Any]:
    return {"kind": "game", "event_id": "nba-e1", "bookmaker": book, "home_team": "Los Angeles Lakers",
            "away_team": "Golden State Warriors", "commence_time": "2026-05-12T23:30:00Z", "last_update": at,
            "home_ml": home_ml, "away_ml": -home_ml - 220 if home_ml < -110 else -110, "home_spread": spread,
            "away_spread": -spread, "home_spread_price": -110, "away_spread_price": -110, "total": 220.5,
            "over_price": -110, "under_price": -110}


def prop(book: str, at: int, line: float, over: int) -> dict[str, Any]:
    return {"kind": "prop", "event_id": "nba-e1", "bookmaker": book, "player": "LeBron James",
            "market_key": "player_points", "market": "Points", "line": line, "over_price": over,
            "under_price": -110, "last_update": at}


def envelope(kind: str, at: int, rows: list[dict[str, Any]]) -> str:
    return json.dumps({"type": kind, "sport_key": SPORT, "timestamp": at + 40, "count": len(rows), "data": rows})


def recording(path: Path) -> None:
    """Three books move the moneyline and the spread one after another (drops, line moves, price
    and line steam); one book moves a prop's price and line (prop drop and line move)."""
    first = [*(game(b, T0, -110, -3.5) for b in BOOKS), prop("pinnacle", T0, 25.5, -110)]
    lines = [json.dumps({"type": "connected", "sport_key": SPORT, "timestamp": T0 // 1000}),
             envelope("initial_state", T0, first)]
    at = T0
    for b in BOOKS:
        at += 30_000
        lines.append(envelope("odds_update", at, [game(b, at, -135, -4.5)]))
    at += 30_000
    lines.append(envelope("odds_update", at, [prop("pinnacle", at, 25.5, -135)]))
    at += 30_000
    lines.append(envelope("odds_update", at, [prop("pinnacle", at, 26.5, -135)]))
    path.write_text("\n".join(lines) + "\n")


# -- a real serve -----------------------------------------------------------------------------------

@pytest.fixture
def serve(tmp_path: Path) -> Iterator[str]:
    rec = tmp_path / "rec.ndjson"
    recording(rec)
    config = tmp_path / "serve.toml"
    config.write_text(f'source = "replay:{rec}"\nspeed = "max"\nport = 0\nlog-level = "warning"\n'
                      f'cors-origin = ["{ORIGIN}"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPENGINE_SERVE_")}
    env["DROPENGINE_SERVE_BUFFER_SIZE"] = "500"
    proc = subprocess.Popen([sys.executable, "-m", "dropengine", "serve", "--config", str(config)],
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert " at http://" in line, line
        yield line.split(" at ")[1].split()[0]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def finished(url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        health = httpx.get(url + "/healthz", timeout=5).json()
        if health["source"].get("finished"):
            return dict(health)
        time.sleep(0.05)
    raise AssertionError("the replay did not finish within 20 s")


def events(url: str, path: str, headers: dict[str, str] | None = None,
           **params: str) -> tuple[httpx.Headers, list[tuple[str | None, dict[str, Any]]]]:
    """The SSE events of a stream as (id, data) until its first heartbeat (after the backlog)."""
    out: list[tuple[str | None, dict[str, Any]]] = []
    query = {"apiKey": "any-key", "heartbeat_s": "1", **params}
    with httpx.Client(timeout=httpx.Timeout(5, read=10)) as c, \
            c.stream("GET", url + path, params=query, headers=headers or {}) as r:
        assert r.status_code == 200, r.read()
        event_id: str | None = None
        data: list[str] = []
        for line in r.iter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                frame = json.loads("\n".join(data))
                out.append((event_id, frame))
                event_id, data = None, []
                if frame.get("type") == "heartbeat":
                    break
                assert len(out) < 500, "no heartbeat after 500 frames"
        return r.headers, out


ALL_TYPES = {"types": "odds_drop,line_move,steam", "threshold": "1", "line_threshold": "0.25"}


def test_every_frame_of_a_live_server_matches_the_document(serve: str) -> None:
    doc = load_doc()
    url = serve
    health = finished(url)
    assert health["alerts_produced"] > 0
    epoch = health["epoch"]
    streams = {
        "oddsDropAll": events(url, "/v1/odds-drop/all", {"Origin": ORIGIN},
                              last_event_id=f"{epoch}-0", **ALL_TYPES),
        "oddsDropSport": events(url, f"/v1/odds-drop/{SPORT}", {"Last-Event-ID": "zz9-5"}, **ALL_TYPES),
        "oddsDropMulti": events(url, "/v1/odds-drop/multi", sports=f"{SPORT},soccer_epl",
                                last_event_id="not-a-cursor"),
    }
    assert streams["oddsDropAll"][0]["access-control-allow-origin"] == ORIGIN  # the config file's CORS
    by_name = {m["name"]: (key, m) for key, m in doc["components"]["messages"].items()}
    seen: Counter[str] = Counter()
    props = 0
    for channel, (_headers, frames) in streams.items():
        names = {resolve(doc, m["$ref"])["name"] for m in doc["channels"][channel]["messages"].values()}
        for sse_id, frame in frames:
            kind = frame.get("type")
            assert kind in by_name, f"a {kind!r} frame ({frame}) is not in docs/asyncapi.yaml"
            assert kind in names, f"{channel} sends {kind!r}, which the document does not list for it"
            key, message = by_name[kind]
            errors = sorted(validator(doc, message["payload"]["$ref"]).iter_errors(frame), key=str)
            assert not errors, f"{kind} frame {frame} breaks components/messages/{key}: {errors[0].message}"
            rule = message["x-sse-id"]
            if rule == "none":
                assert sse_id is None, frame
            elif rule == "payload":
                assert sse_id == frame["id"], frame
            else:
                assert rule == "alert" and sse_id is not None and sse_id.startswith(f"{epoch}-"), (sse_id, frame)
            seen[str(kind)] += 1
            props += "player" in frame
    assert set(seen) == set(by_name), f"messages no frame exercised: {set(by_name) - set(seen)}"
    assert seen["reset"] == 2 and seen["connected"] == 3 and props >= 2
    alerts = [f for _, f in streams["oddsDropAll"][1] if f["type"] in ("odds_drop", "line_move", "steam")]
    assert len(alerts) == health["alerts_produced"]  # the resume from {epoch}-0 got the whole backlog

    # the error bodies of refused requests (before any stream) match their schemas too
    with httpx.Client(timeout=5) as c:
        bad = c.get(url + "/v1/odds-drop/all", params={"apiKey": "k", "threshold": "999"})
        missing = c.get(url + "/v1/odds-drop/multi", params={"apiKey": "k"})
        unauthorised = c.get(url + "/v1/odds-drop/all")
    for r, schema in ((bad, "ParamError"), (missing, "ParamError"), (unauthorised, "HttpError")):
        assert r.status_code in (400, 401), r.text
        validator(doc, f"#/components/schemas/{schema}").validate(r.json())


def test_the_document_is_whole_and_names_exactly_the_servers_stream_routes() -> None:
    doc = load_doc()
    assert doc["asyncapi"] == "3.0.0"

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        resolve(doc, ref)  # raises KeyError when it points nowhere
    for name, op in doc["operations"].items():
        channel_ref = op["channel"]["$ref"]
        for m in op["messages"]:
            assert m["$ref"].startswith(channel_ref + "/messages/"), (name, m)
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(schema)
    from dropengine.server.app import DropServer
    from dropengine.server.sources import ManualSource

    routes = {getattr(r, "path", "") for r in DropServer(ManualSource()).starlette.routes}
    stream_routes = {p.replace("{sport_key}", "{sport_key}") for p in routes if p.startswith("/v1/odds-drop")}
    assert {c["address"] for c in doc["channels"].values()} == stream_routes
    # the query schemas name exactly the parameters the server knows
    from dropengine.server.params import KNOWN_PARAMETERS

    multi = set(doc["components"]["schemas"]["MultiStreamQuery"]["properties"])
    assert multi == set(KNOWN_PARAMETERS)
    assert set(doc["components"]["schemas"]["StreamQuery"]["properties"]) == multi - {"sports"}
