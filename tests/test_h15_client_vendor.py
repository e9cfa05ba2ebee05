"""dropengine.client against a vendor-like ``/v1/odds-drop`` (a real starlette app on uvicorn,
loopback): the vendor's AsyncAPI frames (``prior_price``/``new_price``, no SSE ids), its statuses
(401/403 never retried; 5xx and 429 retried by SPEC 8's policy, scaled down by parameters),
an event cut by a disconnect, and the resume by ``since`` when the server gives no ids.

Each connection follows the next step of a script; the app records every request.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dropengine.client import AsyncDropClient, Connected
from dropengine.core.alerts import Drop
from dropengine.core.errors import AuthError, UpstreamError
from dropengine.core.retry import Retry, RetryPolicy, Stop
from dropengine.server.asgi import BackgroundServer

KEY = "CANARY-VENDOR-KEY-90ab"
SPORT = "baseball_mlb"
FAST = RetryPolicy(base_s=0.02, cap_s=0.2, healthy_s=10.0, restart_wait_s=0.05, floor_s=0.001)


def drop_frame(i: int, ts: int) -> dict[str, Any]:
    """An odds_drop as the vendor's AsyncAPI (reference/001) documents it: no SSE id."""
    return {"type": "odds_drop", "sport_key": SPORT, "timestamp": ts, "bookmaker": "pinnacle",
            "event_id": f"e{i}", "market_key": "totals", "line": 8.5, "side": "over",
            "prior_price": -110, "new_price": -120 - i, "delta_cents": 10 + i, "elapsed_ms": 5000}


ALL = [drop_frame(i, 1_000 + (i // 2) * 10) for i in range(8)]  # pairs share a timestamp


@dataclass
class Step:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: frames sent (with ``since`` honoured inclusively, as a server may)
    frames: list[dict[str, Any]] = field(default_factory=list)
    #: a final event cut before its blank line, then the end of the body
    partial: bool = False


class Vendor:
    def __init__(self, script: list[Step]) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.app = Starlette(routes=[Route("/v1/odds-drop/{sport}", self.endpoint)])

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if step.status != 200:
            return JSONResponse({"error": f"status {step.status}"}, status_code=step.status, headers=step.headers)
        since = int(request.query_params.get("since", -1))

        async def body() -> AsyncIterator[bytes]:
            yield _sse({"type": "connected", "sport_key": SPORT, "tier": "business", "push_mode": "raw",
                        "filters": {"event_id": None, "bookmakers": None, "markets": None, "kinds": None,
                                    "since": since if since >= 0 else None}, "timestamp": 1})
            for f in step.frames:
                if f.get("timestamp", 0) >= since:
                    yield _sse(f)
            if step.partial:
                yield b'data: {"type":"odds_drop","sport_key":"baseball_mlb","timestamp":99'  # cut here

        return StreamingResponse(body(), media_type="text/event-stream")


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


@pytest.fixture
def vendor() -> Iterator[Any]:
    running: list[BackgroundServer] = []

    def start(script: list[Step]) -> tuple[str, Vendor]:
        v = Vendor(script)
        bg = BackgroundServer(v.app, secrets=[KEY])
        running.append(bg)
        return bg.start(), v

    yield start
    for bg in running:
        bg.stop()


async def _collect(client: AsyncDropClient, n: int, timeout: float = 10) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        async for ev in client.events():
            out.append(ev)
            if sum(isinstance(e, Drop) for e in out) >= n:
                break
    await client.aclose()
    return out


def test_vendor_frames_resume_by_since_with_a_cut_event_discarded(vendor: Any) -> None:
    url, v = vendor([Step(frames=ALL[:5], partial=True), Step(frames=ALL)])
    client = AsyncDropClient(url, api_key=KEY, sport=SPORT, policy=FAST, rng=random.Random(1))
    events = asyncio.run(_collect(client, len(ALL)))
    drops = [e for e in events if isinstance(e, Drop)]
    assert [d.event_id for d in drops] == [f"e{i}" for i in range(8)]  # each once, none lost, the cut one never
    assert all(d.side == "total_over@8.5" and d.prev == -110 and d.delta == -(10 + int(d.event_id[1:]))
               and d.direction == "toward_favorite" for d in drops)
    assert [type(e) for e in events].count(Connected) == 2
    second = v.requests[1]
    assert second.query_params["since"] == str(ALL[4]["timestamp"] - 1) and "last-event-id" not in second.headers
    assert second.headers["x-api-key"] == KEY and "apiKey" not in second.query_params  # the key in a header
    # since = newest - 1 and a server counting it in: e4 comes again (dropped), e5 of the same ms does not
    assert client.stats.repeats == 1
    assert "partial event discarded" in client.history[0][0].detail


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_stop_at_once(vendor: Any, status: int) -> None:
    url, v = vendor([Step(status=status), Step(frames=ALL)])
    client = AsyncDropClient(url, api_key=KEY, sport=SPORT, policy=FAST, auth="query")
    with pytest.raises(AuthError) as exc:
        asyncio.run(_collect(client, 1))
    assert exc.value.status == status and len(v.requests) == 1  # never retried
    assert KEY not in str(exc.value) and isinstance(client.history[-1][1], Stop)


def test_5xx_and_429_are_retried_with_backoff(vendor: Any) -> None:
    url, v = vendor([Step(status=503), Step(status=502), Step(status=500),
                     Step(status=429, headers={"Retry-After": "0"}), Step(frames=ALL[:2])])
    lines: list[str] = []
    client = AsyncDropClient(url, api_key=KEY, sport=SPORT, policy=FAST, on_event=lines.append)
    drops = [e for e in asyncio.run(_collect(client, 2)) if isinstance(e, Drop)]
    assert len(drops) == 2 and len(v.requests) == 5
    decisions = [d for _, d in client.history]
    assert [o.code for o, _ in client.history] == [503, 502, 500, 429]
    assert all(isinstance(d, Retry) for d in decisions)
    retries = [d for d in decisions if isinstance(d, Retry)]
    assert [d.attempt for d in retries] == [1, 2, 3, 4]  # consecutive failures keep doubling the ceiling
    for d in retries:  # full jitter under min(cap, base * 2**(attempt-1)), never below the floor
        assert FAST.floor_s <= d.delay_s <= min(FAST.cap_s, FAST.base_s * 2 ** (d.attempt - 1))
    assert any("retry 1" in line for line in lines) and not any(KEY in line for line in lines)


def test_a_4xx_other_than_auth_and_429_is_not_retried(vendor: Any) -> None:
    url, v = vendor([Step(status=404), Step(frames=ALL)])
    client = AsyncDropClient(url, api_key=KEY, sport=SPORT, policy=FAST)
    with pytest.raises(UpstreamError) as exc:
        asyncio.run(_collect(client, 1))
    assert not isinstance(exc.value, AuthError) and exc.value.status == 404 and len(v.requests) == 1


def test_a_frame_that_does_not_decode_is_counted_and_skipped(vendor: Any) -> None:
    invalid = {**drop_frame(9, 5), "new_price": 50}  # not a price
    bad: list[dict[str, Any]] = [invalid, {"type": "hot_feed_status", "sources": []}]
    url, _ = vendor([Step(frames=[ALL[0], *bad, ALL[1]])])
    client = AsyncDropClient(url, api_key=KEY, sport=SPORT, policy=FAST)
    drops = [e for e in asyncio.run(_collect(client, 2)) if isinstance(e, Drop)]
    assert [d.event_id for d in drops] == ["e0", "e1"]
    assert client.stats.skips.counts == {"invalid price": 1, "unknown type": 1}
    assert "new_price: 50" in str(client.stats.skips.first[0])
