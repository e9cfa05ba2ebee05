"""``dropengine serve`` for real: uvicorn on loopback, httpx-sse and raw-socket clients.

Alerts come from a :class:`ManualSource` the test pushes quotes into (``push`` returns once
the server has ingested them), so every expectation is exact. Each test is bounded by
read timeouts of a few seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from dropengine import Quote
from dropengine.core.keys import KeyTable
from dropengine.server import sources
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer

from ._browser import devtools_url, find_chromium
from .conftest import FIXTURES

CANARY = "CANARY-SERVE-KEY-4d2e"
KEYS = KeyTable.parse(f"{CANARY} business 10\nsmall-key business 1\npro-key pro 3\n")
SPORT = "basketball_nba"


class ManualSource(sources.ManualSource):
    """The product's ManualSource with a data clock for the test's quotes."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 1_000

    def move(self, event: str, prices: list[int], book: str = "pinnacle", sport: str = SPORT) -> None:
        """Quotes for h2h_home at ``prices`` in turn: the first primes, each move after it alerts."""
        for p in prices:
            self.clock += 1_000
            self.push([Quote(sport, event, book, "h2h_home", p, self.clock)])


@pytest.fixture
def server() -> Iterator[Callable[..., tuple[str, DropServer, ManualSource]]]:
    running: list[BackgroundServer] = []

    def start(config: ServeConfig | None = None, access_log: bool = False) -> tuple[str, DropServer, ManualSource]:
        source = ManualSource()
        srv = DropServer(source, config or ServeConfig(keys=KEYS))
        bg = BackgroundServer(srv.app, secrets=KEYS.keys(), access_log=access_log, log_level="info")
        running.append(bg)
        url = bg.start()
        return url, srv, source

    yield start
    for bg in running:
        bg.stop()


@pytest.fixture(scope="module")
def idle_server() -> Iterator[str]:
    """One server for the tests that only send requests it refuses (400, 401, 403): none of
    them pushes a quote or holds a stream, so they cannot see each other (a server is half a
    second to start and stop under load, and they were 13)."""
    srv = DropServer(ManualSource(), ServeConfig(keys=KEYS))
    with BackgroundServer(srv.app, secrets=KEYS.keys(), log_level="info") as url:
        yield url
        assert srv.hub.counters.produced == 0 and not srv.hub.subscribers  # they stayed read-only


def events(url: str, path: str, n: int, key: str = CANARY, timeout: float = 5, **params: Any) -> list[tuple[str, Any]]:
    """The first ``n`` SSE events of ``path`` as (id, data) pairs (httpx-sse)."""
    params = {"apiKey": key, **params}
    headers = {"Last-Event-ID": params.pop("last_event_id_header")} if "last_event_id_header" in params else {}
    out: list[tuple[str, Any]] = []
    with httpx.Client(timeout=httpx.Timeout(5, read=timeout)) as c, \
            connect_sse(c, "GET", url + path, params=params, headers=headers) as es:
        assert es.response.status_code == 200, es.response.read()
        for ev in es.iter_sse():
            out.append((ev.id, json.loads(ev.data)))
            if len(out) >= n:
                break
    return out


def status_of(url: str, path: str, **params: Any) -> httpx.Response:
    with httpx.Client(timeout=5) as c:
        return c.get(url + path, params=params)


# ---- frames -------------------------------------------------------------------------------------

def test_frames_connected_then_drops_with_ids_then_heartbeats(server: Any) -> None:
    url, srv, src = server()
    got: list[tuple[str, Any]] = []

    def reader() -> None:
        # up to the drop and two heartbeats after it (a machine under load may push the quotes
        # after the first heartbeat: how many come before the drop is timing, not the contract)
        params = {"apiKey": CANARY, "threshold": 15, "heartbeat_s": 1}
        with httpx.Client(timeout=httpx.Timeout(5, read=5)) as c, \
                connect_sse(c, "GET", url + f"/v1/odds-drop/{SPORT}", params=params) as es:
            assert es.response.status_code == 200
            for ev in es.iter_sse():
                got.append((ev.id, json.loads(ev.data)))
                kinds = [d["type"] for _, d in got]
                if "odds_drop" in kinds and kinds[kinds.index("odds_drop"):].count("heartbeat") == 2:
                    break

    t = threading.Thread(target=reader)
    t.start()
    _wait(lambda: len(srv.hub.subscribers) == 1)
    src.move("g1", [-110, -120, -140])  # -120 is a 10-cent move (filtered out), -140 a 20-cent one
    t.join(10)
    kinds = [d["type"] for _, d in got]
    assert kinds[0] == "connected" and kinds.count("odds_drop") == 1
    before = kinds.index("odds_drop")
    assert set(kinds[1:before]) <= {"heartbeat"}  # only heartbeats while nothing was pushed
    got = [got[0], *got[before:]]
    assert [d["type"] for _, d in got] == ["connected", "odds_drop", "heartbeat", "heartbeat"]
    connected = got[0][1]
    assert connected["filters"]["threshold"] == 15 and connected["filters"]["sports"] == [SPORT]
    drop_id, drop = got[1]
    assert drop["prev"] == -120 and drop["new"] == -140 and drop["delta"] == -20
    assert drop_id == f"{srv.hub.epoch}-2"  # seq 1 (the 10-cent move) was detected, just not for this client
    assert got[2][1]["id"] == drop_id == got[2][0]  # heartbeats carry the high-water id


def test_raw_socket_sees_exact_sse_framing(server: Any) -> None:
    url, srv, src = server()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"GET /v1/odds-drop/all?apiKey={CANARY}&threshold=5 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        _wait(lambda: len(srv.hub.subscribers) == 1)
        src.move("g2", [-110, -125])
        body = _read_until(s, b"odds_drop")
    head, _, rest = body.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"text/event-stream" in head
    text = _dechunk(rest).decode()
    frames = [f for f in text.split("\n\n") if f]
    assert frames[0].startswith('data: {"type":"connected"') and "\n" not in frames[0]
    assert frames[1].startswith(f"id: {srv.hub.epoch}-1\ndata: " + '{"type":"odds_drop"')


# ---- validation and auth ------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "parameter"), [
    ({"threshold": "0"}, "threshold"), ({"threshold": "201"}, "threshold"), ({"threshold": "x"}, "threshold"),
    ({"direction": "sideways"}, "direction"), ({"heartbeat_s": "0"}, "heartbeat_s"),
    ({"heartbeat_s": "31"}, "heartbeat_s"), ({"since": "yesterday"}, "since"), ({"kinds": "both"}, "kinds"),
    ({"bookmakers": ""}, "bookmakers"), ({"markets": ","}, "markets"), ({"event_id": ""}, "event_id"),
    # (a malformed last_event_id is a reset, not a 400: tests/test_h13_frontfix_cursor.py)
])
def test_every_invalid_parameter_answers_400_naming_it(
    idle_server: str, params: dict[str, str], parameter: str
) -> None:
    url = idle_server
    r = status_of(url, f"/v1/odds-drop/{SPORT}", apiKey=CANARY, **params)
    assert r.status_code == 400
    body = r.json()
    assert body["parameter"] == parameter and body["accepted"]
    r = status_of(url, "/v1/odds-drop/multi", apiKey=CANARY)
    assert r.status_code == 400 and r.json()["parameter"] == "sports"


def test_auth_401_403_and_the_tier(idle_server: str) -> None:
    url = idle_server
    r = status_of(url, "/v1/odds-drop/all")
    assert r.status_code == 401
    r = status_of(url, "/v1/odds-drop/all", apiKey="pro-key")  # a tier below business
    assert r.status_code == 403 and "tier" in r.json()["error"]
    r = status_of(url, "/v1/odds-drop/all", apiKey="CANARY-UNKNOWN-KEY")
    assert r.status_code == 403 and "CANARY-UNKNOWN-KEY" not in r.text
    with httpx.Client(timeout=5) as c:  # the header form
        assert c.get(url + "/v1/odds-drop/all", headers={"X-API-Key": "nope"}).status_code == 403


def test_cap_is_exact_under_50_concurrent_connects_and_slots_come_back(server: Any) -> None:
    url, srv, _ = server()

    async def connect_all(n: int) -> list[int]:
        answered: list[int] = []
        all_answered = asyncio.Event()
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=n)) as c:
            async def one() -> int:
                async with c.stream("GET", url + "/v1/odds-drop/all", params={"apiKey": CANARY}) as r:
                    status = r.status_code
                    answered.append(status)
                    if len(answered) == n:
                        all_answered.set()
                    if status == 200:
                        # hold the slot until every other connect has its answer (not for a
                        # fixed time: under load the last ones could come after it)
                        await asyncio.wait_for(all_answered.wait(), 20)
                    return status

            return list(await asyncio.gather(*(one() for _ in range(n))))

    statuses = asyncio.run(connect_all(50))
    assert statuses.count(200) == 10 and statuses.count(429) == 40  # the key's cap is 10
    _wait(lambda: len(srv.hub.subscribers) == 0)
    statuses = asyncio.run(connect_all(10))
    assert statuses == [200] * 10  # every disconnect freed its slot
    with httpx.Client(timeout=5) as c, c.stream("GET", url + "/v1/odds-drop/all", params={"apiKey": "small-key"}) as r1:
        assert r1.status_code == 200  # another key has slots of its own (cap 1)
        r = status_of(url, "/v1/odds-drop/all", apiKey="small-key")
        assert r.status_code == 429 and r.headers["Retry-After"] == "5"


# ---- resume -------------------------------------------------------------------------------------

def test_resume_gets_exactly_the_missed_alerts(server: Any) -> None:
    url, srv, src = server()
    src.move("g", [-110, -120, -130])  # alerts 1, 2
    first = events(url, "/v1/odds-drop/all", 3, threshold=10, since=0)
    assert [d["type"] for _, d in first] == ["connected", "odds_drop", "odds_drop"]
    cursor = first[-1][0]
    src.move("g", [-150, -170, -190])  # alerts 3, 4, 5 while the client is away
    for how in ({"last_event_id": cursor}, {"last_event_id_header": cursor}):
        again = events(url, "/v1/odds-drop/all", 4, threshold=10, **how)
        assert [d["type"] for _, d in again] == ["connected", "odds_drop", "odds_drop", "odds_drop"]
        assert [i for i, _ in again[1:]] == [f"{srv.hub.epoch}-{n}" for n in (3, 4, 5)]
        assert [d["new"] for _, d in again[1:]] == [-150, -170, -190]


def test_a_cursor_the_server_cannot_honour_gets_a_reset_first(server: Any) -> None:
    url, srv, src = server(ServeConfig(keys=KEYS, buffer_size=2))
    src.move("g", [-110, -120, -130, -140, -150])  # alerts 1..4; the buffer keeps 3 and 4
    for cursor in (f"{srv.hub.epoch}-1", "otherepoch-3", f"{srv.hub.epoch}-99"):
        got = events(url, "/v1/odds-drop/all", 2, last_event_id=cursor)
        assert got[1][1]["type"] == "reset" and got[1][1]["reason"]
        assert got[1][0] == f"{srv.hub.epoch}-4"  # the reset moves the cursor to now


# ---- state across a restart ---------------------------------------------------------------------

def test_restart_with_state_keeps_continuity(server: Any, tmp_path: Path) -> None:
    state = tmp_path / "serve.state"
    cfg = ServeConfig(keys=KEYS, state_path=state, state_every_s=60)
    url, srv, src = server(cfg)
    src.move("g", [-110, -120])  # primes, then alert 1
    epoch = srv.hub.epoch
    seen = events(url, "/v1/odds-drop/all", 2, since=0)
    cursor = seen[-1][0]
    src.move("g", [-135])  # alert 2, unseen by the client
    srv.save(final=True)  # as at a clean stop

    url2, srv2, src2 = server(cfg)  # a new process would do the same: restore at start
    assert srv2.hub.epoch == epoch and srv2.engine.keys_held == 1
    src2.clock = src.clock
    src2.move("g", [-150])  # no re-priming: -135 -> -150 alerts at once (alert 3)
    got = events(url2, "/v1/odds-drop/all", 3, last_event_id=cursor)
    assert [(i, d["prev"], d["new"]) for i, d in got[1:]] == [(f"{epoch}-2", -120, -135), (f"{epoch}-3", -135, -150)]


def test_a_state_older_than_its_age_is_ignored(server: Any, tmp_path: Path) -> None:
    state = tmp_path / "old.state"
    _url, srv, src = server(ServeConfig(keys=KEYS, state_path=state))
    src.move("g", [-110, -120])
    srv.save(now_ms=int(time.time() * 1000) - 3_600_000)  # saved an hour ago
    _, srv2, src2 = server(ServeConfig(keys=KEYS, state_path=state, state_max_age_s=600))
    assert srv2.engine.keys_held == 0 and srv2.hub.epoch != srv.hub.epoch
    assert "old" in srv2.restore_message
    src2.move("g", [-140])  # a first observation again: primes silently
    assert srv2.hub.counters.produced == 0


@pytest.mark.parametrize("response", ["lean", "sse-starlette"])
def test_a_heartbeat_never_carries_an_id_past_a_queued_alert(server: Any, monkeypatch: pytest.MonkeyPatch,
                                                             response: str) -> None:
    """An alert that arrives as a heartbeat's timer fires goes out first: a heartbeat id is a
    cursor, and a client cut right after it must not skip that alert on resume."""
    import dropengine.server.app as appmod
    from dropengine.server.stream import SSEStream

    url, srv, src = server()
    srv.sse_response = response
    armed = threading.Event()

    def land() -> None:
        if armed.is_set():  # the source lands in the same loop turn as the timer
            armed.clear()
            src.clock += 1000
            srv.ingest([Quote(SPORT, "g", "pinnacle", "h2h_home", -160, src.clock)], int(time.time() * 1000))

    if response == "lean":  # the stream's heartbeat timer (issue 14)
        real_due = SSEStream._heartbeat_due

        def racy_due(self: SSEStream) -> None:
            if self._last + self._heartbeat_s <= asyncio.get_running_loop().time():  # due now, not re-armed
                land()
            real_due(self)

        monkeypatch.setattr(SSEStream, "_heartbeat_due", racy_due)
    else:  # the frames loop's wait_for (the sse-starlette response)
        real_wait_for = asyncio.wait_for

        async def racy_wait_for(aw: Any, timeout: float) -> Any:
            try:
                return await real_wait_for(aw, timeout)
            except TimeoutError:
                land()
                raise

        class Shim:
            def __getattr__(self, name: str) -> Any:
                return getattr(asyncio, name)

            wait_for = staticmethod(racy_wait_for)

        monkeypatch.setattr(appmod, "asyncio", Shim())
    src.move("g", [-110, -125])
    out: list[tuple[str, str]] = []
    with httpx.Client(timeout=httpx.Timeout(5, read=5)) as c, connect_sse(
            c, "GET", url + "/v1/odds-drop/all", params={"apiKey": CANARY, "heartbeat_s": 1, "since": 0}) as es:
        for ev in es.iter_sse():
            kind = json.loads(ev.data)["type"]
            out.append((ev.id, kind))
            if kind == "odds_drop" and len(out) == 2:
                armed.set()
            if len(out) >= 4:
                break
    epoch = srv.hub.epoch
    assert out[1:] == [(f"{epoch}-1", "odds_drop"), (f"{epoch}-2", "odds_drop"), (f"{epoch}-2", "heartbeat")]


def test_sigterm_drains_and_saves(tmp_path: Path) -> None:
    state = tmp_path / "s.state"
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{CANARY} business\n")
    proc = subprocess.Popen(
        [*_cli(), "serve", "--source", f"replay:{FIXTURES / 'demo_nba_frames.ndjson'}", "--speed", "max",
         "--port", "0", "--keys", str(keys), "--state", str(state)],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split(" at ")[1].split()[0]
        _wait(lambda: status_of(url, "/healthz").json()["source"]["finished"])
        got = events(url, "/v1/odds-drop/all", 3, since=0, threshold=1)
        assert got[1][1]["type"] == "odds_drop"
        ended: list[str] = []

        def hold_open() -> None:  # a client still streaming when SIGTERM comes
            try:
                with httpx.Client(timeout=httpx.Timeout(5, read=15)) as c, \
                        connect_sse(c, "GET", url + "/v1/odds-drop/all", params={"apiKey": CANARY}) as es:
                    for _ in es.iter_sse():
                        pass
                ended.append("clean end")
            except httpx.HTTPError as exc:
                ended.append(type(exc).__name__)

        holder = threading.Thread(target=hold_open)
        holder.start()
        _wait(lambda: status_of(url, "/healthz").json()["connections"] == 1)
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        holder.join(10)
    finally:
        proc.kill()
    assert ended == ["clean end"]  # the body was ended properly, not cut
    assert proc.returncode == 0  # a stop asked for by a signal is a clean stop (documented exit status)
    assert "Traceback" not in err and "without completing response" not in err
    assert state.exists() and state.stat().st_size > 0
    assert CANARY not in line + err


# ---- slow readers ---------------------------------------------------------------------------------

def test_a_slow_reader_is_cut_while_a_fast_one_keeps_its_pace(server: Any) -> None:
    url, srv, src = server(ServeConfig(keys=KEYS, max_pending=400, send_timeout_s=1.0))
    host, port = url.removeprefix("http://").split(":")
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect((host, int(port)))
    slow.sendall(f"GET /v1/odds-drop/all?apiKey={CANARY}&threshold=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    n_alerts = 3000
    fast: list[Any] = []
    reader = concurrent.futures.ThreadPoolExecutor(1).submit(
        lambda: fast.extend(events(url, "/v1/odds-drop/all", n_alerts + 1, threshold=1, timeout=20)))
    _wait(lambda: len(srv.hub.subscribers) == 2)
    try:
        prices = [-110, -130] * (n_alerts // 2) + [-110]
        team = "Team " + "x" * 3000  # 3 KB alerts: 9 MB in all, more than the kernel buffers hold
        for i in range(0, len(prices), 20):  # pushed in bursts, the slow socket never read
            src.push([Quote(SPORT, "g", "book", "h2h_home", p, 10_000 + i + j, home_team=team)
                      for j, p in enumerate(prices[i:i + 20])])
            time.sleep(0.003)
        reader.result(timeout=30)
        _wait(lambda: srv.status()["slow_clients_cut"] >= 1, timeout=10)
    finally:
        slow.close()
    assert len(fast) == n_alerts + 1 and fast[-1][1]["type"] == "odds_drop"
    assert srv.status()["queue_depth_max"] <= 400  # what a cut client held is gone, not growing


# ---- operators and secrets ----------------------------------------------------------------------

def test_healthz_metrics_and_the_page(server: Any) -> None:
    url, _srv, src = server()
    src.move("g", [-110, -125])
    h = status_of(url, "/healthz")
    assert h.status_code == 200 and h.json()["alerts_produced"] == 1
    m = status_of(url, "/metrics").text
    for name in ("dropengine_connections ", "dropengine_alerts_produced_total 1", "dropengine_alert_deliveries_total",
                 "dropengine_queue_depth", "dropengine_slow_clients_cut_total", "dropengine_upstream_reconnects_total"):
        assert name in m
    page = status_of(url, "/")
    assert page.status_code == 200 and "/v1/odds-drop" in page.text


def test_canary_key_is_absent_from_every_log(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url, _, src = server(access_log=True)
    for name in ("uvicorn.access", "uvicorn.error"):  # uvicorn's own loggers do not propagate
        logging.getLogger(name).addHandler(caplog.handler)
    src.move("g", [-110, -125])
    events(url, "/v1/odds-drop/all", 2, since=0)
    status_of(url, "/v1/odds-drop/all", apiKey=CANARY, threshold="0")
    with httpx.Client(timeout=5) as c:
        c.get(url + "/v1/odds-drop/all", headers={"X-API-Key": CANARY}, params={"threshold": "500"})
    _wait(lambda: "odds-drop" in caplog.text)
    # the server's logs (the test's own httpx client logs its URLs on the client side)
    server_side = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    try:
        assert "apiKey=***" in server_side  # the access log did log the requests, redacted
        assert CANARY not in server_side
    finally:
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(caplog.handler)


# ---- the live page in a real browser -------------------------------------------------------------

def test_the_page_shows_alerts_in_headless_chromium(server: Any, tmp_path: Path) -> None:
    browser = find_chromium()
    if browser is None:
        reason = "no Chromium found (apt install chromium)"
        if os.environ.get("DROPENGINE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; DROPENGINE_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(reason)
    url, srv, src = server()
    src.move("g", [-110, -130])
    page = f"{url}/?autostart=1&sport=all&threshold=5&since=0&apiKey={CANARY}"
    proc = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--remote-debugging-port=0", f"--user-data-dir={tmp_path}", page],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        ws_url = devtools_url(proc)
        rows = asyncio.run(_rows_in_page(ws_url, srv, src))
    finally:
        proc.kill()
        proc.wait(10)
    assert len(rows) >= 2
    assert "-130" in rows[-1] and "toward_favorite" in rows[-1]  # the buffered alert (since=0)
    assert "-150" in rows[0]  # and a live one, pushed after the page connected


async def _rows_in_page(ws_url: str, srv: DropServer, src: ManualSource) -> list[str]:
    from websockets.asyncio.client import connect

    async with connect(ws_url, max_size=None) as ws:
        n = 0

        async def evaluate(expr: str) -> Any:
            nonlocal n
            n += 1
            await ws.send(json.dumps({"id": n, "method": "Runtime.evaluate",
                                      "params": {"expression": expr, "returnByValue": True}}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg.get("id") == n:
                    return msg["result"]["result"].get("value")

        rows_js = "Array.from(document.querySelectorAll('tr.alert')).map(r => r.innerText)"
        deadline = time.monotonic() + 20
        pushed = False
        while time.monotonic() < deadline:
            rows = await evaluate(rows_js) or []
            if rows and not pushed:
                await asyncio.to_thread(src.move, "g", [-150])
                pushed = True
            if len(rows) >= 2:
                return list(rows)
            await asyncio.sleep(0.2)
        raise AssertionError(f"the page showed {await evaluate(rows_js)!r}")


# ---- helpers --------------------------------------------------------------------------------------

def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "dropengine"]


def _wait(cond: Callable[[], Any], timeout: float = 20) -> None:
    # a deadline is only reached when the test fails: generous, so that load cannot fail it
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _read_until(s: socket.socket, marker: bytes, timeout: float = 5) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} in {buf[:500]!r}")
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    time.sleep(0.1)
    s.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        buf += s.recv(65536)
    return buf


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        if not size_line:
            continue
        size = int(size_line, 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


# ---- the live upstream as the source --------------------------------------------------------------

def test_serving_from_the_live_upstream_detects_what_a_replay_detects() -> None:
    from dropengine import DropEngine
    from dropengine.core.keys import Secret
    from dropengine.core.retry import RetryPolicy
    from dropengine.io.replay import replay
    from dropengine.live import UpstreamConfig
    from dropengine.mock import MockUpstream, load_timeline
    from dropengine.server.sources import UpstreamSource

    demo = FIXTURES / "demo_nba_frames.ndjson"
    expected = list(replay([demo], DropEngine(threshold=10)))
    mock = MockUpstream(load_timeline([demo]), speed=None, faults=["cut,after=4,conn=1"])
    with BackgroundServer(mock.app) as upstream_url:
        cfg = UpstreamConfig(upstream_url, Secret("up-key"), "sse", heartbeat_s=1.0,
                             policy=RetryPolicy(base_s=0.02, cap_s=0.2, healthy_s=0.2, restart_wait_s=0.1))
        source = UpstreamSource(cfg, [SPORT])
        srv = DropServer(source, ServeConfig(keys=KEYS))
        with BackgroundServer(srv.app, secrets=KEYS.keys()) as url:
            _wait(lambda: srv.hub.counters.produced >= len(expected) and srv.status()["connections"] == 0)
            got = events(url, "/v1/odds-drop/multi", len(expected) + 1, sports=SPORT, since=0, threshold=10)
            health = status_of(url, "/healthz").json()
    drops = [d for _, d in got[1:]]
    strip = [{k: v for k, v in d.items() if k != "timestamp"} for d in drops]
    assert strip == [{k: v for k, v in d.to_dict().items() if k != "timestamp"} for d in expected]
    assert health["upstream_reconnects"] >= 1 and health["source"]["streams"] == 1
    # the resume cursor a --state would save: the newest last_update of the recording
    assert source.cursors() == {SPORT: max(r["last_update"] for rel in mock.timeline.releases for r in rel.rows)}


def test_a_replay_source_resumes_its_position_after_a_restart(tmp_path: Path) -> None:
    """--state with a replay: the restarted server goes on where it was, so the restored
    engine is not fed the same quotes again (equal last_update would let old moves alert)."""
    from dropengine.server.sources import REPLAY_POSITION, ReplaySource

    demo = FIXTURES / "demo_nba_frames.ndjson"
    cfg = ServeConfig(keys=KEYS, state_path=tmp_path / "r.state")
    first = DropServer(ReplaySource([demo], speed=None), cfg)
    with BackgroundServer(first.app):
        _wait(lambda: first.source.status()["finished"])  # type: ignore[attr-defined]
    produced = first.hub.counters.produced
    assert produced > 0 and (tmp_path / "r.state").exists()  # saved at shutdown
    second = DropServer(ReplaySource([demo], speed=None), cfg)
    with BackgroundServer(second.app):
        _wait(lambda: second.source.status()["finished"])  # type: ignore[attr-defined]
        assert second.hub.counters.produced == 0  # nothing fired twice
        assert second.hub.next_seq == produced + 1  # and the sequence goes on
        assert second.source.cursors()[REPLAY_POSITION] == first.source.cursors()[REPLAY_POSITION]
