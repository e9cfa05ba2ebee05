"""The webhook sink against a REAL local HTTP receiver (starlette + uvicorn on 127.0.0.1).

The receiver (:func:`loopback`) checks every signature with the stdlib snippet the README gives receivers
(not with dropengine's own code) and refuses a bad one; it fails on purpose as each test
plans (500s, a request held past the client's timeout, 429 with Retry-After, 404), and
records what it received and what it processed. The tests count: nothing lost (every alert
delivered or in the dead-letter file, whose lines are checked exactly), nothing processed
twice except after a timeout (the documented retry duplicate, same delivery id), queue-full
accounting exact, and ``offer`` returning while the receiver hangs. Waits are scaled down
through the sink's parameters; every wait in a test is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dropengine.deliver import DeadLetterFile, RetrySchedule, WebhookSink

from .test_h15_sinks_rules import drop

SECRET = "whsec_h15_sinks_7f3a"
FAST = RetrySchedule(attempts=4, base_s=0.01, cap_s=0.05, retry_after_cap_s=1.0, timeout_s=2.0)


def receiver_verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """The receiver's check, as the README shows it (stdlib only)."""
    ts = headers.get("x-dropengine-timestamp", "")
    sig = headers.get("x-dropengine-signature", "")
    if not (ts.isascii() and ts.isdigit()) or abs(time.time() - int(ts)) > tolerance_s:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, sig)


@dataclass
class Req:
    path: str
    headers: dict[str, str]
    body: bytes
    action: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook / Discord / Telegram stand-in. ``plan``: what to do with the next requests
    (``ok``, ``500``, ``404``, ``429:<Retry-After>``, ``429json:<body>``, ``slow:<s>`` (answer
    after s seconds, processed), ``hang`` (never answers in time, not processed)); then ``ok``."""

    def __init__(self, secret: str | None = SECRET) -> None:
        self.secret = secret
        self.plan: deque[str] = deque()
        #: plans for the requests to one path prefix only (taken before :attr:`plan`)
        self.plan_for: dict[str, deque[str]] = {}
        self.requests: list[Req] = []
        self.processed: list[Req] = []
        self.rejected_signatures = 0
        self.stopping = False
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            path_plan = next((q for prefix, q in self.plan_for.items() if request.url.path.startswith(prefix) and q),
                             None)
            action = path_plan.popleft() if path_plan else self.plan.popleft() if self.plan else "ok"
            req = Req(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body, action)
            self.requests.append(req)
        if self.secret is not None and req.path.startswith("/hook") and not receiver_verify(self.secret, req.headers,
                                                                                             body):
            self.rejected_signatures += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        kind, _, arg = action.partition(":")
        if kind == "ok":
            self.processed.append(req)
            return JSONResponse({"ok": True})
        if kind in ("500", "404", "503"):
            return JSONResponse({"error": kind}, status_code=int(kind))
        if kind == "429":
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": arg})
        if kind == "429json":
            return Response(arg, status_code=429, media_type="application/json")
        if kind == "slow":
            await asyncio.sleep(float(arg))
            self.processed.append(req)  # the receiver acted on it, though the sender gave up waiting
            return JSONResponse({"ok": True})
        if kind == "hang":  # until the sender gave up, or the receiver stops (bounded: 8 s)
            for _ in range(160):
                if self.stopping:
                    break
                await asyncio.sleep(0.05)
            return JSONResponse({"late": True})
        raise AssertionError(f"unknown action {action!r}")


@contextlib.contextmanager
def loopback(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) from a thread. uvicorn binds the socket
    itself here, so accepted connections get TCP_NODELAY; through ``BackgroundServer``'s pre-bound
    socket each response waited ~40 ms for a delayed ACK (reported to deploy)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="h15 receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, str]]:
    rx = Receiver()
    with loopback(rx.app) as url:
        yield rx, url
        rx.stopping = True  # held requests end now: the server stops without waiting for them


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, str]) -> Iterator[tuple[Receiver, str]]:
    rx, url = receiver_server
    with rx.lock:
        rx.plan.clear()
        rx.plan_for.clear()
        rx.requests.clear()
        rx.processed.clear()
        rx.rejected_signatures = 0
        rx.secret = SECRET
    yield rx, url


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


class Recording(WebhookSink):
    """A webhook sink that notes each wait it takes (the waits are the rules' to choose)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []
        self.rand = lambda: 0.5

    async def _sleep(self, wait_s: float) -> None:
        self.waits.append(wait_s)
        await super()._sleep(wait_s)


def dead_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_signed_alerts_arrive_once_each_in_order_with_every_header(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    alerts = [drop(i) for i in range(20)]

    async def main() -> WebhookSink:
        sink = WebhookSink(f"{url}/hook/a?token=abc", SECRET, schedule=FAST)
        await sink.start()
        assert all(sink.offer(a) for a in alerts)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert rx.rejected_signatures == 0
    assert [r.json for r in rx.processed] == [json.loads(a.to_json()) for a in alerts]
    ids = [r.headers["x-dropengine-delivery"] for r in rx.processed]
    assert len(set(ids)) == 20
    assert all(r.headers["x-dropengine-attempt"] == "1" and r.headers["content-type"] == "application/json"
               for r in rx.processed)
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.dropped, c.retried, c.requests) == (20, 20, 0, 0, 0, 20)
    assert "abc" not in sink.name and "abc" not in repr(sink)


def test_a_bad_signature_is_refused_by_the_receiver_and_dead_lettered_without_retry(
        receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    rx, url = receiver
    dead = tmp_path / "dead.ndjson"
    alert = drop(7)

    async def main() -> WebhookSink:
        sink = WebhookSink(f"{url}/hook", "not-the-secret", schedule=FAST, dead_letter=dead)
        await sink.start()
        sink.offer(alert)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert rx.rejected_signatures == 1 and len(rx.requests) == 1 and rx.processed == []
    [line] = dead_lines(dead)
    assert line == {"alert": json.loads(alert.to_json()), "reason": "rejected: HTTP 401 (not retried)",
                    "attempts": 1, "sink": sink.name, "delivery_id": rx.requests[0].headers["x-dropengine-delivery"],
                    "at_ms": line["at_ms"]}
    assert isinstance(line["at_ms"], int)
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.dead_lettered, c.retried) == (1, 0, 1, 1, 0)


def test_5xx_are_retried_with_full_jitter_backoff_under_one_delivery_id(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.plan.extend(["500", "503", "ok"])

    async def main() -> Recording:
        sink = Recording(f"{url}/hook", SECRET, schedule=FAST)
        await sink.start()
        sink.offer(drop(1))
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert [r.action for r in rx.requests] == ["500", "503", "ok"]
    assert len({r.headers["x-dropengine-delivery"] for r in rx.requests}) == 1
    assert [r.headers["x-dropengine-attempt"] for r in rx.requests] == ["1", "2", "3"]
    assert rx.rejected_signatures == 0  # each attempt signed again, with its own timestamp
    assert sink.waits == [FAST.backoff_s(1, 0.5), FAST.backoff_s(2, 0.5)] == [0.005, 0.01]
    c = sink.counters
    assert (c.delivered, c.failed, c.retried, c.requests) == (1, 0, 2, 3)
    assert len(rx.processed) == 1


def test_429_waits_what_retry_after_asks(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.plan.extend(["429:0.15", "ok"])

    async def main() -> Recording:
        sink = Recording(f"{url}/hook", SECRET, schedule=FAST)
        await sink.start()
        sink.offer(drop(1))
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert sink.waits == [0.15]  # the receiver's Retry-After, not the backoff (0.005)
    assert [r.action for r in rx.requests] == ["429:0.15", "ok"] and len(rx.processed) == 1


def test_other_4xx_are_not_retried_and_retries_end_in_the_dead_letter_file(receiver: tuple[Receiver, str],
                                                                           tmp_path: Path) -> None:
    rx, url = receiver
    rx.plan.extend(["404", "500", "500", "500", "500"])
    dead = tmp_path / "dead.ndjson"
    a, b = drop(1), drop(2)

    async def main() -> WebhookSink:
        sink = WebhookSink(f"{url}/hook", SECRET, schedule=FAST, dead_letter=dead)
        await sink.start()
        sink.offer(a)
        sink.offer(b)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert [r.action for r in rx.requests] == ["404", "500", "500", "500", "500"]
    lines = dead_lines(dead)
    assert [(x["alert"], x["reason"], x["attempts"]) for x in lines] == [
        (json.loads(a.to_json()), "rejected: HTTP 404 (not retried)", 1),
        (json.loads(b.to_json()), "gave up after 4 attempts (last: HTTP 500)", 4),
    ]
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.dropped, c.dead_lettered, c.retried) == (2, 0, 2, 0, 2, 3)


def test_a_timeout_is_retried_and_the_duplicate_carries_the_same_delivery_id(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.plan.extend(["slow:0.6", "ok"])
    schedule = RetrySchedule(attempts=3, base_s=0.01, cap_s=0.01, timeout_s=0.2)

    async def main() -> WebhookSink:
        sink = WebhookSink(f"{url}/hook", SECRET, schedule=schedule)
        await sink.start()
        sink.offer(drop(3))
        await sink.aclose(5.0)
        await until(lambda: len(rx.processed) == 2)  # the slow first request completes at the receiver too
        return sink

    sink = asyncio.run(main())
    ids = [r.headers["x-dropengine-delivery"] for r in rx.processed]
    assert len(ids) == 2 and len(set(ids)) == 1  # the documented retry duplicate: dropped by id
    c = sink.counters
    assert (c.delivered, c.failed, c.retried, c.requests) == (1, 0, 1, 2)


def test_connection_refused_retries_then_dead_letters_exactly(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    dead = tmp_path / "dead.ndjson"
    alerts = [drop(1), drop(2)]

    async def main() -> WebhookSink:
        sink = WebhookSink(f"http://127.0.0.1:{port}/hook", SECRET, schedule=FAST, dead_letter=dead)
        await sink.start()
        for a in alerts:
            sink.offer(a)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    lines = dead_lines(dead)
    assert [x["alert"] for x in lines] == [json.loads(a.to_json()) for a in alerts]
    assert {(x["reason"], x["attempts"], x["sink"]) for x in lines} == {
        ("gave up after 4 attempts (last: network error (ConnectError))", 4, f"webhook http://127.0.0.1:{port}")}
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.dead_lettered, c.retried, c.requests) == (2, 0, 2, 2, 6, 8)


def test_queue_full_is_counted_and_dead_lettered_and_offer_never_waits_for_a_hanging_receiver(
        receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    rx, url = receiver
    rx.plan.extend(["hang"] * 5)
    dead = tmp_path / "dead.ndjson"
    alerts = [drop(i) for i in range(11)]

    async def main() -> tuple[WebhookSink, list[bool]]:
        sink = WebhookSink(f"{url}/hook", SECRET, schedule=RetrySchedule(attempts=2, timeout_s=30.0), queue_size=3,
                           dead_letter=DeadLetterFile(dead))
        await sink.start()
        sink.offer(alerts[0])
        await until(lambda: len(rx.requests) == 1)  # in flight, the receiver holding it
        accepted = [sink.offer(a) for a in alerts[1:]]  # no await: each returned at once
        await sink.aclose(0.3)  # the drain deadline passes with the receiver still hanging
        return sink, accepted

    sink, accepted = asyncio.run(main())
    assert accepted == [True] * 3 + [False] * 7
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.dropped, c.dead_lettered) == (11, 0, 4, 7, 11)
    assert c.offered == c.delivered + c.failed + c.dropped
    lines = dead_lines(dead)
    by_reason: dict[str, list[str]] = {}
    for x in lines:
        by_reason.setdefault(x["reason"], []).append(x["alert"]["event_id"])
    assert by_reason == {
        "queue full": [f"ev{i}" for i in range(4, 11)],
        "not delivered before the close deadline (1 attempts)": ["ev0"],
        "not delivered before the close deadline (0.3 s)": ["ev1", "ev2", "ev3"],
    }
    assert {x["attempts"] for x in lines if x["reason"] == "queue full"} == {0}


def test_many_alerts_through_random_failures_nothing_lost_nothing_twice(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    import random

    rng = random.Random(15)
    rx.plan.extend(rng.choice(["ok", "ok", "500", "503", "429:0.01"]) for _ in range(100))
    alerts = [drop(i) for i in range(30)]

    async def main() -> WebhookSink:
        sink = WebhookSink(f"{url}/hook", SECRET, workers=3,
                           schedule=RetrySchedule(attempts=30, base_s=0.002, cap_s=0.01, timeout_s=5.0))
        await sink.start()
        for a in alerts:
            sink.offer(a)
        await sink.aclose(20.0)
        return sink

    sink = asyncio.run(main())
    got = sorted(r.json["event_id"] for r in rx.processed)
    assert got == sorted(a.event_id for a in alerts)  # every alert processed exactly once
    c = sink.counters
    assert (c.delivered, c.failed, c.dropped) == (30, 0, 0)
    assert c.requests == len(rx.requests) == 30 + c.retried
