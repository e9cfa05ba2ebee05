"""Issue 10, bad input over live streams: one frame nested a few thousand levels deep (msgspec
raises RecursionError, not DecodeError) is one bad frame; the stream, the fan-in, ``serve``
and ``mock-upstream`` go on.

Real parts on loopback: a small starlette upstream sending the demo frames with a deep
frame among them (over SSE and over WebSocket), the project's mock-upstream as a process,
``DropServer`` under uvicorn. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from dropengine import DropEngine
from dropengine.core.alerts import Drop
from dropengine.core.keys import Secret
from dropengine.core.retry import RetryPolicy
from dropengine.io.replay import ReplayStats, replay
from dropengine.live import UpstreamConfig, UpstreamStream
from dropengine.live.fanin import FanIn
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ReplaySource, UpstreamSource

from .conftest import FIXTURES, ROOT

DEMO = FIXTURES / "demo_nba_frames.ndjson"
NBA = "basketball_nba"
DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
FAST = RetryPolicy(base_s=0.02, cap_s=0.6, healthy_s=0.2, restart_wait_s=0.1, floor_s=0.005)


def frames_with_deep() -> list[str]:
    """The demo recording's frames with two deep frames after the initial_state."""
    lines = DEMO.read_text().splitlines()
    return [*lines[:3], DEEP, DEEP_OBJECT, *lines[3:]]


def expected() -> tuple[list[Drop], int]:
    stats = ReplayStats()
    alerts = list(replay([DEMO], DropEngine(), stats=stats))
    assert len(alerts) == 12
    return alerts, stats.quotes


def deep_upstream() -> Starlette:
    """An upstream that sends every frame (deep ones included) on each connection, then
    heartbeats until the client goes away."""
    frames = frames_with_deep()
    heartbeat = '{"type":"heartbeat","sport_key":"basketball_nba"}'

    async def sse(request: Any) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            for f in frames:
                yield f"data: {f}\n\n".encode()
            for _ in range(600):  # bounded: 5 minutes at most
                await asyncio.sleep(0.5)
                yield f"data: {heartbeat}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            for f in frames:
                await websocket.send_text(f)
            for _ in range(600):
                await asyncio.sleep(0.5)
                await websocket.send_text(heartbeat)
        except (WebSocketDisconnect, OSError, RuntimeError):
            return

    calls = {"sports": 0}

    async def sports(request: Any) -> Response:
        calls["sports"] += 1  # the first two answers are junk: deep JSON, then not a list
        body = {1: DEEP_OBJECT, 2: '{"error": "busy"}'}.get(calls["sports"], '[{"key": "basketball_nba"}]')
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/sse/odds/{sport}", sse), WebSocketRoute("/ws/odds/{sport}", ws),
                             Route("/v1/sports", sports)])


@pytest.fixture
def upstream_url() -> Iterator[str]:
    with BackgroundServer(deep_upstream()) as url:
        yield url


def config(url: str, transport: str) -> UpstreamConfig:
    return UpstreamConfig(url, Secret("deep-test-key"), transport, heartbeat_s=1.0, policy=FAST)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_a_deep_frame_does_not_stop_a_live_stream(upstream_url: str, transport: str) -> None:
    want, quotes = expected()

    async def run() -> tuple[list[Drop], UpstreamStream]:
        stream = UpstreamStream(config(upstream_url, transport), NBA)
        engine, alerts, got = DropEngine(), [], 0
        async for r in stream.frames():
            alerts.extend(engine.observe_many(r.quotes))
            got += len(r.quotes)
            if got >= quotes:
                break
        return alerts, stream

    alerts, stream = asyncio.run(asyncio.wait_for(run(), 30))
    assert alerts == want
    assert stream.stats.skips.counts == {"bad json": 2}
    assert [s.where for s in stream.stats.skips.first] == [
        f"{transport} {'/v1/sse' if transport == 'sse' else '/ws'}/odds/{NBA} frame {n}" for n in (4, 5)]
    assert stream.history == []  # the connection carried on: no reconnect was needed


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_a_deep_frame_does_not_stop_a_fan_in(upstream_url: str, transport: str) -> None:
    want, quotes = expected()

    async def run() -> tuple[list[Drop], FanIn]:
        feed = FanIn(config(upstream_url, transport), [NBA])
        engine, alerts, got = DropEngine(), [], 0
        async for r in feed.frames():
            alerts.extend(engine.observe_many(r.quotes))
            got += len(r.quotes)
            if got >= quotes:
                break
        return alerts, feed

    alerts, feed = asyncio.run(asyncio.wait_for(run(), 30))
    assert alerts == want and not feed.failures
    assert feed.stats.skips.counts == {"bad json": 2}


def test_all_retries_a_sports_list_that_is_not_json(upstream_url: str) -> None:
    """``/all``: a /v1/sports answer that does not decode (deep JSON) or is not a list is an
    unexpected response, retried by the policy; the universe is then read and streamed."""
    want, quotes = expected()

    async def run() -> tuple[list[Drop], FanIn, list[str]]:
        events: list[str] = []
        feed = FanIn(config(upstream_url, "sse"), None, on_event=events.append)
        engine, alerts, got = DropEngine(), [], 0
        async for r in feed.frames():
            alerts.extend(engine.observe_many(r.quotes))
            got += len(r.quotes)
            if got >= quotes:
                break
        return alerts, feed, events

    alerts, feed, events = asyncio.run(asyncio.wait_for(run(), 30))
    assert alerts == want and feed.universe == [NBA]
    assert sum("GET /v1/sports" in e and "retry" in e.lower() for e in events) == 2, events


def poll_health(url: str, done: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = httpx.get(url + "/healthz", timeout=5).json()
        if done(last):
            return last
        time.sleep(0.05)
    raise AssertionError(f"not done within {timeout} s: {last}")


def test_serve_from_upstream_keeps_the_sport_after_a_deep_frame(upstream_url: str) -> None:
    _, quotes = expected()
    source = UpstreamSource(config(upstream_url, "sse"), [NBA])
    srv = DropServer(source, ServeConfig())
    with BackgroundServer(srv.app) as url:
        health = poll_health(url, lambda h: h["source"]["quotes"] >= quotes)
    assert health["status"] == "ok" and health["source"]["failed"] == {}
    assert health["source"]["streams_open"] == 1 and health["alerts_produced"] > 0
    assert source.stats.skips.counts == {"bad json": 2}


def test_serve_from_a_replay_with_a_deep_line_feeds_every_quote(tmp_path: Path) -> None:
    _, quotes = expected()
    path = tmp_path / "deep.ndjson"
    path.write_text("\n".join(frames_with_deep()) + "\n")
    srv = DropServer(ReplaySource([path], speed=None), ServeConfig())
    with BackgroundServer(srv.app) as url:
        health = poll_health(url, lambda h: h["source"]["finished"] or "error" in h["source"])
    assert health["status"] == "ok", health
    assert health["source"]["quotes"] == quotes and health["source"]["skipped"] == 2


def test_mock_upstream_loads_a_recording_with_a_deep_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.ndjson"
    path.write_text("\n".join(frames_with_deep()) + "\n")
    tl = load_timeline([path])
    assert tl.rows == load_timeline([DEMO]).rows and tl.skips.counts == {"bad json": 2}
    assert [s.where for s in tl.skips.first] == ["deep.ndjson:4", "deep.ndjson:5"]


def test_mock_upstream_ws_command_nested_deep_gets_an_error_reply() -> None:
    mock = MockUpstream(load_timeline([DEMO]), speed=None)

    async def run() -> list[str]:
        from websockets.asyncio.client import connect

        with BackgroundServer(mock.app) as url:
            ws_url = url.replace("http", "ws") + f"/ws/odds/{NBA}?apiKey=k"
            async with connect(ws_url, max_size=None) as ws:
                await ws.send(DEEP_OBJECT)
                await ws.send('{"type":"unsubscribe"}')
                types: list[str] = []
                while "unsubscribed" not in types:
                    msg = await asyncio.wait_for(ws.recv(), 10)
                    types.append(re.search(r'"type":"(\w+)"', str(msg)).group(1))  # type: ignore[union-attr]
                return types

    types = asyncio.run(asyncio.wait_for(run(), 30))
    assert "error" in types and types[-1] == "unsubscribed"


def test_mock_upstream_cli_starts_and_serves_the_good_frames(tmp_path: Path) -> None:
    want, quotes = expected()
    path = tmp_path / "deep.ndjson"
    path.write_text("\n".join(frames_with_deep()) + "\n")
    code = "from dropengine.cli.mock_upstream import mock_upstream; mock_upstream()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--replay", str(path), "--port", "0", "--speed", "max", "--log-level", "warning"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        match = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and match is None:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"serving (\d+) releases of (\d+) sports from .* at (http://\S+)", line)
        assert match, lines
        assert any("2 bad json" in ln for ln in lines), lines

        async def run() -> list[Drop]:
            assert match is not None
            stream = UpstreamStream(config(match.group(3), "sse"), NBA)
            engine, alerts, got = DropEngine(), [], 0
            async for r in stream.frames():
                alerts.extend(engine.observe_many(r.quotes))
                got += len(r.quotes)
                if got >= quotes:
                    break
            return alerts

        assert asyncio.run(asyncio.wait_for(run(), 30)) == want
    finally:
        proc.kill()
        proc.wait(10)


def test_mock_upstream_cli_with_nothing_to_serve_says_why(tmp_path: Path) -> None:
    odd = tmp_path / "other.csv"
    odd.write_text("date,team\n2019-01-01,NYY\n")
    code = "from dropengine.cli.mock_upstream import mock_upstream; mock_upstream()"
    try:
        done = subprocess.run([sys.executable, "-c", code, "--replay", str(odd), "--port", "0"], capture_output=True,
                              text=True, cwd=ROOT, timeout=30)
    except subprocess.TimeoutExpired:  # it started serving nothing (run kills it on timeout)
        raise AssertionError("mock-upstream started with nothing to serve") from None
    assert done.returncode == 2 and "missing column" in done.stderr and "other.csv" in done.stderr


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_watch_goes_on_after_a_deep_frame(upstream_url: str, transport: str, tmp_path: Path) -> None:
    want = [ln for ln in subprocess.run([sys.executable, "-m", "dropengine", "replay", str(DEMO)], capture_output=True,
                                        text=True, timeout=60).stdout.splitlines() if ln.strip()]
    assert len(want) == 12
    rec = tmp_path / "rec.ndjson"
    env = {**os.environ, "DROPENGINE_API_KEY": "deep-test-key"}
    watch = subprocess.run(
        [sys.executable, "-m", "dropengine", "watch", "--sport", NBA, "--base-url", upstream_url, "--transport",
         transport, "--stamp", "data", "--heartbeat-s", "1", "--max-alerts", str(len(want)), "--duration", "30",
         "--record", str(rec), "--status-every", "0"],
        capture_output=True, text=True, timeout=60, env=env)
    assert watch.returncode == 0, watch.stderr
    assert [ln for ln in watch.stdout.splitlines() if ln.strip()] == want
    assert "RecursionError" not in watch.stderr
    replayed = subprocess.run([sys.executable, "-m", "dropengine", "replay", str(rec)], capture_output=True, text=True,
                              timeout=60)
    assert [ln for ln in replayed.stdout.splitlines() if ln.strip()] == want  # the bad frame was not recorded
