"""``serve --bus`` never silently serves less than it accepts (review13 #1, #7, #9), for real:
one nats-server for the module, in-process frontends on uvicorn (127.0.0.1), the detectors'
options recorded with ``bus.registry.record_detector`` as ``dropengine detect`` does.

- With no detector recorded every request is accepted and ``/healthz`` says so; once the
  detectors (at their defaults: odds_drop at 10 cents) are recorded, a request for 5 cents or
  for line moves is a 400 naming the parameter and the detectors' value, the default request
  is served; a steam request's ``connected`` echoes the detectors' steam settings when they agree.
- A malformed ``Last-Event-ID`` is a 200 with a ``reset`` (as ``serve``: one code path).
- A fresh frontend whose "newest alert before the ring" was deleted from the log does not
  claim its ring covers ``since``: a ``since`` client gets a reset, not a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from dropengine.core.alerts import Drop
from dropengine.core.options import DetectOptions
from dropengine.server.asgi import BackgroundServer
from dropengine.server.ingest import ServeConfig

from . import natsutil
from .natsutil import NatsServer

pytest.importorskip("nats")

from dropengine.bus import AlertLog, BusConfig, connect, ensure_streams
from dropengine.bus.registry import record_detector
from dropengine.server.busfeed import BusServer
from dropengine.server.params import steam_echo

nats_server_module = natsutil.nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]

T = TypeVar("T")
KEY = "CANARY-FRONTFIX-BUS-3c9d"
PATH = "/v1/odds-drop/all"
_prefixes = itertools.count()


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def drop(i: int) -> Drop:
    return Drop(sport_key="americanfootball_nfl", event_id=f"e{i}", bookmaker="pinnacle", side="h2h_home",
                kind="game", market_key="h2h", prev=-110, new=-130, delta=-20, direction="toward_favorite",
                last_update=1000 + i, timestamp=1000 + i, elapsed_ms=0)


def new_log(server: NatsServer, n: int) -> BusConfig:
    """A fresh deployment (its own prefix), ``n`` alerts in its log."""
    cfg = BusConfig((server.url,), prefix=f"ff{next(_prefixes)}")

    async def go() -> None:
        async with await connect(cfg, name="test-setup") as bus:
            await ensure_streams(bus)
            log = AlertLog(bus, partitions=2)
            for i in range(n):
                await log.publish(i % 2, drop(i), qseq=i + 1, k=0, produced_ms=int(time.time() * 1000),
                                  expect_last=None)

    run(go())
    return cfg


def record(cfg: BusConfig, *options: DetectOptions) -> None:
    """Partition i of len(options) records options[i] (as its detector does at start)."""

    async def go() -> None:
        async with await connect(cfg, name="test-detectors") as bus:
            for i, o in enumerate(options):
                await record_detector(bus, i, len(options), o, int(time.time() * 1000))

    run(go())


@contextlib.contextmanager
def frontend(cfg: BusConfig, **kw: Any) -> Iterator[tuple[str, BusServer]]:
    srv = BusServer(cfg, ServeConfig(**kw), info_every_s=0.1, detectors_every_s=0.1)
    with BackgroundServer(srv.app, secrets=[KEY]) as url:
        yield url, srv


def first_frames(url: str, n: int, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """The status is 200 and these are the first ``n`` frames (heartbeats skipped)."""
    out: list[dict[str, Any]] = []
    with httpx.stream("GET", url + PATH, params={"apiKey": KEY, "heartbeat_s": 1, **params}, headers=headers or {},
                      timeout=httpx.Timeout(5, read=5)) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: ") and (data := json.loads(line[6:]))["type"] != "heartbeat":
                out.append(data)
                if len(out) >= n:
                    break
    return out


def refused(url: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(url + PATH, params={"apiKey": KEY, **params}, timeout=5)
    assert r.status_code == 400, r.text
    body: dict[str, Any] = r.json()
    return body


def test_requests_the_log_cannot_honour_are_refused_naming_the_detectors_value(
        nats_server_module: NatsServer) -> None:
    cfg = new_log(nats_server_module, 3)
    with frontend(cfg) as (url, srv):
        health = httpx.get(url + "/healthz", timeout=5).json()
        assert health["detectors"]["recorded"] == [] and "every request is accepted" in health["detectors"]["note"]
        assert first_frames(url, 1, threshold=5, types="line_move")[0]["type"] == "connected"  # none recorded
        record(cfg, DetectOptions(), DetectOptions())  # `detect` at its defaults, two partitions
        natsutil.wait_until(lambda: srv.feed is not None and len(srv.feed.detectors) == 2, 10, "the records read")
        body = refused(url, threshold=5)  # the review's case: 5-9 cent drops are not in the log
        assert body["parameter"] == "threshold" and "10 cents" in body["message"], body
        body = refused(url, types="odds_drop,line_move")
        assert body["parameter"] == "types" and "line_move" in body["message"], body
        assert KEY not in json.dumps(body)
        got = first_frames(url, 2, threshold=10, since=0)  # the default request: served
        assert [f["type"] for f in got] == ["connected", "odds_drop"] and "steam" not in got[0]
        health = httpx.get(url + "/healthz", timeout=5).json()
        assert [d["partition"] for d in health["detectors"]["recorded"]] == ["0/2", "1/2"]
        assert "note" not in health["detectors"]
        assert 'dropengine_rejected_total{status="400"} 2' in httpx.get(url + "/metrics", timeout=5).text
        # detectors restarted with steam (same settings): steam requests are served, settings echoed
        steam = DetectOptions.build(types="odds_drop,steam", steam_books=2)
        record(cfg, steam, steam)
        # both records re-read (a read between the two writes sees one new and one old record)
        natsutil.wait_until(lambda: srv.feed is not None and len(srv.feed.detectors) == 2
                            and all(d.options == steam for d in srv.feed.detectors), 10, "re-read")
        connected = first_frames(url, 1, types="steam")[0]
        assert connected["steam"] == steam_echo(steam) and connected["steam"]["books"] == 2
        # a malformed cursor: 200 and a reset naming it, as in single-process serve
        got = first_frames(url, 2, headers={"Last-Event-ID": "not an id"})
        assert got[1]["type"] == "reset" and "not an id" in got[1]["reason"]
        assert got[1]["id"] == f"{srv.hub.epoch}-3"  # from now


def test_a_fresh_frontend_whose_probe_was_deleted_judges_since_by_its_start(nats_server_module: NatsServer) -> None:
    """review13 #9: the ring of a frontend starting on a log of 5 with --buffer-size 3 starts at
    3; seq 2 (whose time says from when the ring covers ``since``) was deleted. A ``since=0``
    client gets a reset (alerts 1 and 2 are not served, never a silent gap); a client whose
    ``since`` is after the frontend started misses nothing and gets no reset (it was reset
    forever before: the hub took "nothing known" for "everything evicted")."""
    cfg = new_log(nats_server_module, 5)

    async def delete() -> None:
        async with await connect(cfg, name="test-admin") as bus:
            await bus.js.delete_msg(cfg.alert_stream, 2)

    run(delete())
    with frontend(cfg, buffer_size=3) as (url, srv):
        natsutil.wait_until(lambda: srv.hub.next_seq == 6, 10, "the ring filled")
        got = first_frames(url, 2, since=0, threshold=1)
        assert got[1]["type"] == "reset" and "since 0" in got[1]["reason"], got
        after = int(time.time() * 1000) + 1
        time.sleep(0.01)
        got = []
        with httpx.stream("GET", url + PATH, params={"apiKey": KEY, "heartbeat_s": 1, "since": after},
                          timeout=httpx.Timeout(5, read=5)) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if len(got) == 1:  # connected: alert 6, produced now, is the next frame, no reset
                        new_log_entry(cfg, 5)
                    elif got[-1]["type"] != "heartbeat" or len(got) > 8:
                        break
        assert [f["type"] for f in got if f["type"] != "heartbeat"] == ["connected", "odds_drop"], got
        assert got[-1]["event_id"] == "e5"


def new_log_entry(cfg: BusConfig, i: int) -> None:
    async def go() -> None:
        async with await connect(cfg, name="test-publisher") as bus:
            now = int(time.time() * 1000)  # (``since`` judges an alert's timestamp: produced now)
            alert = msgspec.structs.replace(drop(i), timestamp=now)
            await AlertLog(bus, partitions=2).publish(i % 2, alert, qseq=i + 1, k=0, produced_ms=now,
                                                      expect_last=None)

    run(go())
