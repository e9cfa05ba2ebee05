"""Server load benchmark: ``dropengine serve`` (``DropServer`` on uvicorn) under many SSE connections.

Run from the repository root::

    .venv/bin/python benchmarks/server_load.py            # full run (about 90 s)
    .venv/bin/python benchmarks/server_load.py --quick    # smoke test (about 15 s)
    .venv/bin/python benchmarks/server_load.py --connections 100 --rate 100,200,400 --no-floor
    .venv/bin/python benchmarks/server_load.py --rate 10,40 --seconds 5 --turns 2   # new, old, floor in turns

Loopback only (127.0.0.1), bounded: every phase has a deadline, and every process the script
starts is stopped in ``finally``. Three kinds of process, all this file:

* the **server** (``--role server``), in two kinds: ``dropengine`` (the SSE response of
  :mod:`dropengine.server.stream`, what ``dropengine serve`` runs) and ``sse-starlette`` (the
  response before issue 14, ``StreamServer.sse_response = "sse-starlette"``; skip it with
  ``--no-old``): ``DropServer(source, ServeConfig(keys=...))`` served by
  ``dropengine.server.asgi.run_foreground`` (what ``dropengine serve`` runs: uvicorn on
  one event loop, access log off). Its source primes ``--keys`` keys, then feeds quotes at a
  rate set over stdin, in ticks of at most 50 per second. Each quote moves a key by 20 cents
  (``-110`` <-> ``-130``), so every quote is one alert and passes every client's
  ``threshold=10``: deliveries/s = alerts/s x connections. Each batch goes through
  ``DropServer.ingest(quotes, now_ms)``, so an alert's ``timestamp`` is the wall-clock
  millisecond its quote was received from upstream.
* the **clients** (``--role client``, one process by default): N SSE connections to
  ``/v1/odds-drop/all?apiKey=bench&threshold=10`` on raw asyncio sockets (a ``Protocol``
  that undoes HTTP/1.1 chunking and splits SSE events; ``msgspec`` reads only ``type`` and
  ``timestamp``). Latency of an alert = ``time.time() * 1000`` when its bytes were read,
  minus its ``timestamp``: from upstream receipt to client read, same machine, same clock
  (``timestamp`` is truncated to the millisecond, so figures read up to 1 ms high).
* the **floor** (``--role server --kind floor``), the baseline: a bare asyncio ``Protocol``
  server with the same source and pacing that answers any GET with SSE headers and writes
  each tick's frames (alert JSON encoded once, chunked) straight to every open transport: no
  engine, hub, starlette, sse-starlette, uvicorn or h11. It is the least any asyncio server
  in Python must spend to deliver the same bytes.

Phases, per server kind: start; warm up (5 short streams, one ``/metrics``, so lazy imports
are loaded); RSS before; connect N (100 at a time); settle 2 s; RSS with N held and idle
(per connection = difference / N); then for each ``--rate`` a 2 s warm-up and a ``--seconds``
window in which the clients count alerts and latencies and ``/proc/PID/stat`` gives the
server's CPU time. The source stamps each tick with its *scheduled* wall-clock time, so a
stalled server loop (a garbage collection, a long fan-out) that makes a tick run late counts
in the latency, as bytes waiting in the upstream socket would; the server also reports its
worst tick lateness, its time in ``ingest`` and its garbage-collector pauses (``gc.callbacks``).
A step that saturates (fewer than 95% of the target deliveries, or p99 over 1 s) ends the
run of that kind. The kinds run one after another; ``--turns N`` repeats that N times with the
order rotated, and each run is compared with the floor (and the old response) of its own turn:
CPU per send as a ratio to the floor's, new/old p99, and their medians over the turns (the
machine is shared: absolute figures move between turns, ratios within a turn much less).
``/metrics`` (queue depths, slow clients cut) is read after the last step. Results: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from _report import fmt_rate, load_average, table, verdict  # type: ignore[import-not-found]

from dropengine import DropEngine, Quote
from dropengine.server.hub import sse_frame

HOST = "127.0.0.1"  # loopback only
API_KEY = "bench"

# Aims from the issue.
AIM_CONNECTIONS = 1_000
AIM_DELIVERIES = 10_000
AIM_P99_MS = 100.0
AIM_KIB_PER_CONN = 150.0
AIM_SEND_VS_FLOOR = 3.0  # issue 14: CPU per send at most 3x the bare-asyncio floor's
KINDS = ("dropengine", "sse-starlette", "floor")

SPORT = "basketball_nba"
BOOKS = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars")
PRICES = (-130, -110)  # 20 cents apart: every quote after the first on a key is an alert at threshold 10
MAX_TICK_HZ = 50
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now_ms() -> int:
    return int(time.time() * 1000)


def raise_nofile(need: int) -> int:
    """Raise the soft fd limit towards ``need`` (up to the hard limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


async def stdin_lines() -> asyncio.StreamReader:
    """``sys.stdin`` as an asyncio stream (the control channel from the orchestrator)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def reply(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- server side: the paced source ------------------------------------------------------------


class PacedSource:
    """A ``Source`` for ``DropServer`` (and the floor): primes ``n_keys`` keys, then feeds
    quotes at the rate the orchestrator sets over stdin (``rate R``), in ``min(R, 50)`` ticks
    per second, stamping each batch with the wall clock at ingest. ``stats`` answers with the
    quotes fed so far; end of stdin stops the process (SIGTERM to itself: uvicorn drains)."""

    name = "bench-paced"
    reconnects = 0

    def __init__(self, n_keys: int) -> None:
        self.keys = [(f"ev{i // len(BOOKS):05d}", BOOKS[i % len(BOOKS)]) for i in range(n_keys)]
        self.rate = 0.0
        self.changed = asyncio.Event()
        self.fed = 0  # quotes after priming: one alert each
        self.ticks = 0
        self.skipped_ticks = 0
        self.visit = 0
        self.clock = now_ms()
        # Diagnostics, read by ``stats``: maxima since the last read, totals since the start.
        self.ingest_s = 0.0
        self.ingest_max_s = 0.0
        self.late_max_s = 0.0
        self.gc_s = [0.0, 0.0, 0.0]
        self.gc_n = [0, 0, 0]
        self.gc_max_s = 0.0
        self._gc_t0 = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
            return
        dt = time.perf_counter() - self._gc_t0
        g = info["generation"]
        self.gc_s[g] += dt
        self.gc_n[g] += 1
        self.gc_max_s = max(self.gc_max_s, dt)

    def status(self) -> dict[str, Any]:
        return {"fed": self.fed, "rate": self.rate}

    def cursors(self) -> dict[str, int]:
        return {}

    def batch(self, n: int) -> list[Quote]:
        out = []
        keys = self.keys
        nk = len(keys)
        for _ in range(n):
            v = self.visit
            self.visit = v + 1
            event_id, book = keys[v % nk]
            self.clock += 1
            out.append(Quote(SPORT, event_id, book, "h2h_home", PRICES[(v // nk) % 2], self.clock))
        return out

    def prime(self) -> list[Quote]:
        self.clock += 1
        return [Quote(SPORT, e, b, "h2h_home", PRICES[1], self.clock) for e, b in self.keys]

    async def run(self, ingest: Callable[[list[Quote], int], object], cursors: dict[str, int]) -> None:
        ingest(self.prime(), now_ms())  # silent: the first price of a key primes it
        control = asyncio.create_task(self._control())
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self.rate <= 0:
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                rate = self.rate
                hz = min(rate, MAX_TICK_HZ)
                interval, per_tick = 1.0 / hz, rate / hz
                credit = 0.0
                # Tick k is due at t0 + k * interval and is stamped with that moment's wall clock: when its
                # quotes would arrive from an upstream that sends on time. A busy event loop makes ticks run
                # late, and that delay counts in the latency (as it would for bytes waiting in the socket).
                # Late ticks run back to back (one loop turn each); more than 1 s behind, ticks are dropped.
                t0, wall0 = loop.time(), time.time()
                k = 0
                self.changed.clear()
                while not self.changed.is_set():
                    due = t0 + k * interval
                    delay = due - loop.time()
                    await asyncio.sleep(max(0.0, delay))
                    late = loop.time() - due
                    self.late_max_s = max(self.late_max_s, late)
                    if late > 1.0:
                        drop = int(late / interval)
                        self.skipped_ticks += drop
                        k += drop
                        continue
                    credit += per_tick
                    n = int(credit)
                    credit -= n
                    if n:
                        quotes = self.batch(n)
                        t_in = time.perf_counter()
                        ingest(quotes, int((wall0 + k * interval) * 1000))
                        dt = time.perf_counter() - t_in
                        self.ingest_s += dt
                        self.ingest_max_s = max(self.ingest_max_s, dt)
                        self.fed += n
                    self.ticks += 1
                    k += 1
        finally:
            control.cancel()

    async def _control(self) -> None:
        reader = await stdin_lines()
        while True:
            line = await reader.readline()
            if not line:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            cmd, *arg = line.decode().split()
            if cmd == "rate":
                self.rate = float(arg[0])
                self.changed.set()
                reply({"ok": "rate", "rate": self.rate})
            elif cmd == "stats":
                reply({"fed": self.fed, "ticks": self.ticks, "skipped_ticks": self.skipped_ticks,
                       "ingest_s": self.ingest_s, "ingest_max_ms": self.ingest_max_s * 1000,
                       "late_max_ms": self.late_max_s * 1000, "gc_n": self.gc_n, "gc_s": self.gc_s,
                       "gc_max_ms": self.gc_max_s * 1000})
                self.ingest_max_s = self.late_max_s = self.gc_max_s = 0.0
            elif cmd == "objects":
                reply({"objects": len(gc.get_objects())})
            elif cmd == "threshold":  # experiment (--gc-threshold0): fewer young collections, fewer promotions
                gc.set_threshold(int(arg[0]), *gc.get_threshold()[1:])
                reply({"ok": "threshold", "threshold": gc.get_threshold()})
            elif cmd == "freeze":  # experiment (--gc-freeze): what is tracked now is never scanned again
                gc.collect()
                gc.freeze()
                reply({"ok": "freeze", "frozen": gc.get_freeze_count()})


def serve_dropengine(n_keys: int, response: str = "lean") -> None:
    import logging

    from dropengine.core.keys import KeyTable
    from dropengine.server.app import DropServer, ServeConfig
    from dropengine.server.asgi import run_foreground

    logging.basicConfig(level="WARNING")
    source = PacedSource(n_keys)
    server = DropServer(source, ServeConfig(keys=KeyTable.parse(f"{API_KEY} business 100000")))
    server.sse_response = response  # "lean" (what `dropengine serve` runs) or "sse-starlette" (before issue 14)
    server.restore(now_ms())

    def ready(url: str) -> None:
        reply({"url": url, "pid": os.getpid()})

    run_foreground(server.app, HOST, 0, secrets=[API_KEY], log_level="warning", access_log=False, on_ready=ready)


class _FloorConn(asyncio.Protocol):
    def __init__(self, conns: set[asyncio.Transport], hello: bytes) -> None:
        self.conns = conns
        self.hello = hello
        self.head = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport in self.conns:
            return
        self.head += data
        if b"\r\n\r\n" in self.head:
            self.transport.write(self.hello)
            self.conns.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.conns.discard(self.transport)


def chunk(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


def serve_floor(n_keys: int) -> None:
    """The baseline server (see the module docstring)."""

    async def main() -> None:
        conns: set[asyncio.Transport] = set()
        engine = DropEngine(threshold=1)  # only to make one real alert: the frames have a real alert's shape
        engine.observe(Quote(SPORT, "ev00000", BOOKS[0], "h2h_home", PRICES[1], 1))
        template = engine.observe(Quote(SPORT, "ev00000", BOOKS[0], "h2h_home", PRICES[0], 2))[0]
        seq = [0]
        hello = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-store\r\n"
                 b"transfer-encoding: chunked\r\n\r\n" + chunk(sse_frame({"type": "connected"})))

        def ingest(quotes: list[Quote], ts: int) -> None:
            frames = []
            for q in quotes:
                seq[0] += 1
                d = msgspec.structs.replace(template, event_id=q.event_id, bookmaker=q.bookmaker,
                                            last_update=q.last_update, timestamp=ts)
                frames.append(sse_frame(d, f"floor-{seq[0]}"))
            data = chunk(b"".join(frames))
            for t in conns:
                t.write(data)

        loop = asyncio.get_running_loop()
        from dropengine.server.asgi import bind

        sock = bind(HOST, 0)
        server = await loop.create_server(lambda: _FloorConn(conns, hello), sock=sock, backlog=2048)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        source = PacedSource(n_keys)
        host, port = sock.getsockname()[:2]
        reply({"url": f"http://{host}:{port}", "pid": os.getpid()})
        task = asyncio.create_task(source.run(ingest, {}))  # type: ignore[arg-type]
        await stop.wait()
        task.cancel()
        server.close()
        for t in list(conns):
            t.abort()

    asyncio.run(main())


# -- client side ------------------------------------------------------------------------------


class Event(msgspec.Struct):
    type: str = ""
    timestamp: int = 0


DECODE = msgspec.json.Decoder(Event).decode


@dataclass
class ClientStats:
    recording: bool = False
    latencies: list[float] = field(default_factory=list)
    alerts: int = 0
    heartbeats: int = 0
    other: int = 0
    closed: int = 0
    bad: int = 0


class SSEConn(asyncio.Protocol):
    """One held stream: sends the GET, checks for 200 + chunked, undoes the chunking, splits
    SSE events, and records each alert's latency at the moment its bytes were read."""

    def __init__(self, stats: ClientStats, request: bytes) -> None:
        self.stats = stats
        self.request = request
        self.buf = bytearray()
        self.sse = bytearray()
        self.head = True
        self.count = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the connected frame: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        now = time.time() * 1000.0
        buf = self.buf
        buf += data
        if self.head:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            if not head.startswith(b"http/1.1 200") or b"transfer-encoding: chunked" not in head:
                self.stats.bad += 1
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self.head = False
        pos, n = 0, len(buf)
        sse = self.sse
        while pos < n:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol], 16)
            start = eol + 2
            if n < start + size + 2:
                break
            sse += buf[start : start + size]
            pos = start + size + 2
        if pos:
            del buf[:pos]
        cut = sse.rfind(b"\n\n")
        if cut < 0:
            return
        stats = self.stats
        for block in bytes(sse[:cut]).split(b"\n\n"):
            i = block.find(b"data: ")
            if i < 0:
                continue
            ev = DECODE(block[i + 6 :])
            if ev.type == "odds_drop":
                if stats.recording:
                    stats.alerts += 1
                    self.count += 1
                    stats.latencies.append(now - ev.timestamp)
            elif ev.type == "heartbeat":
                stats.heartbeats += 1
            elif ev.type == "connected":
                if not self.ready.done():
                    self.ready.set_result(None)
            else:
                stats.other += 1
        del sse[: cut + 2]


def run_client(url: str, n: int, concurrency: int) -> None:
    host_port = url.removeprefix("http://")
    host, _, port_text = host_port.rpartition(":")
    assert host == HOST, f"loopback only, not {host!r}"
    raise_nofile(n + 256)
    path = f"/v1/odds-drop/all?apiKey={API_KEY}&threshold=10"
    request = f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nAccept: text/event-stream\r\n\r\n".encode()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stats = ClientStats()
        conns: list[SSEConn] = []
        errors: list[str] = []
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with sem:
                proto = SSEConn(stats, request)
                try:
                    await asyncio.wait_for(loop.create_connection(lambda: proto, host, int(port_text)), 10)
                    await asyncio.wait_for(proto.ready, 10)
                    conns.append(proto)
                except (OSError, TimeoutError, ConnectionError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    if proto.transport is not None:
                        proto.transport.abort()

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        reply({"connected": len(conns), "failed": len(errors), "first_error": errors[0] if errors else "",
               "seconds": round(time.perf_counter() - t0, 2)})
        reader = await stdin_lines()
        cpu0 = time.process_time()
        t_mark = time.perf_counter()
        while True:
            line = (await reader.readline()).decode().strip()
            if not line:
                break
            if line == "mark":
                stats.recording = True
                stats.alerts = 0
                stats.latencies = []
                for c in conns:
                    c.count = 0
                cpu0, t_mark = time.process_time(), time.perf_counter()
                reply({"ok": "mark"})
            elif line == "report":
                stats.recording = False
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - t_mark  # before any work of ours
                counts = [c.count for c in conns if c.transport is not None and not c.transport.is_closing()]
                reply({
                    "alerts": stats.alerts, "latencies": [round(x, 2) for x in stats.latencies],
                    "cpu_s": cpu, "wall_s": wall,
                    "open": len(counts), "closed": stats.closed, "heartbeats": stats.heartbeats,
                    "other": stats.other, "bad": stats.bad,
                    "per_conn_min": min(counts, default=0), "per_conn_max": max(counts, default=0),
                })
        for c in conns:
            if c.transport is not None:
                c.transport.abort()

    asyncio.run(main())


# -- orchestrator -----------------------------------------------------------------------------


class Child:
    """A child process of this script driven by lines on stdin/stdout, each read bounded."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.name}: no answer within {timeout:.0f} s") from None
        if line is None:
            raise RuntimeError(f"{self.name}: exited with {self.proc.wait(5)}")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, line: str, timeout: float = 10) -> dict[str, Any]:
        self.send(line)
        return self.expect(timeout)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of stdin: the child stops itself
        try:
            self.proc.wait(8)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def metrics(url: str) -> dict[str, float]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def warm_up(url: str, n: int = 5) -> None:
    """A few short streams: the server's lazy imports and first-request paths run before RSS is read."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    req = f"GET /v1/odds-drop/all?apiKey={API_KEY} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    for _ in range(n):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(req)
            got = b""
            while b"connected" not in got:
                part = s.recv(65536)
                if not part:
                    raise RuntimeError(f"warm-up stream closed: {got[:200]!r}")
                got += part


def pct(sorted_xs: list[float], p: float) -> float:
    if not sorted_xs:
        return float("nan")
    return sorted_xs[min(len(sorted_xs) - 1, int(p / 100 * len(sorted_xs)))]


@dataclass
class Step:
    rate: float
    produced_s: float
    deliveries_s: float
    expected_s: float
    server_deliveries_s: float | None
    p50: float
    p90: float
    p99: float
    pmax: float
    server_cpu: float  # share of one core
    client_cpu: float
    open_conns: int
    per_conn_min: int
    per_conn_max: int
    skipped_ticks: int
    ticks_s: float  # source ticks per second: each is one send per connection, whatever its alert count
    ingest_mean_ms: float  # per tick: detection + hub.publish (numbering, encoding, queueing, notify)
    ingest_max_ms: float
    late_max_ms: float  # how late the source's tick ran at worst: the event loop was busy
    gc_n: list[int]  # collections per generation in the window
    gc_ms: float  # total pause
    gc_max_ms: float

    @property
    def saturated(self) -> bool:
        return self.deliveries_s < 0.95 * self.rate * self.open_conns or self.p99 > 1000

    @property
    def us_per_send(self) -> float:
        sends = self.ticks_s * self.open_conns
        return self.server_cpu * 1e6 / sends if sends else float("nan")

    @property
    def us_per_delivery(self) -> float:
        return self.server_cpu * 1e6 / self.deliveries_s if self.deliveries_s else float("nan")


@dataclass
class Run:
    kind: str
    turn: int = 0
    connections: int = 0
    failed: int = 0
    connect_s: float = 0.0
    rss_base_kib: int = 0
    rss_held_kib: int = 0
    rss_after_kib: int = 0
    objects_base: int = 0  # gc-tracked objects in the server
    objects_held: int = 0
    idle_cpu: float = 0.0
    steps: list[Step] = field(default_factory=list)
    final_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def kib_per_conn(self) -> float:
        return (self.rss_held_kib - self.rss_base_kib) / self.connections if self.connections else float("nan")


def rss_median(pid: int) -> int:
    xs = []
    for _ in range(3):
        xs.append(rss_kib(pid))
        time.sleep(0.3)
    return sorted(xs)[1]


def run_kind(kind: str, args: argparse.Namespace, turn: int = 0) -> Run:
    out = Run(kind, turn)
    children: list[Child] = []
    try:
        server = Child(f"{kind} server", ["--role", "server", "--kind", kind, "--keys", str(args.keys)])
        children.append(server)
        hello = server.expect(20)
        url, pid = hello["url"], hello["pid"]
        assert url.startswith(f"http://{HOST}:"), url
        warm_up(url)
        if kind != "floor":
            metrics(url)
        time.sleep(args.settle / 2)
        out.rss_base_kib = rss_median(pid)
        out.objects_base = server.ask("objects")["objects"]

        per = [args.connections // args.clients + (i < args.connections % args.clients) for i in range(args.clients)]
        clients = [Child(f"client {i}", ["--role", "client", "--url", url, "--connections", str(n),
                                         "--concurrency", str(args.concurrency)]) for i, n in enumerate(per)]
        children += clients
        t0 = time.perf_counter()
        for c in clients:
            r = c.expect(max(30.0, args.connections / 20))
            out.connections += r["connected"]
            out.failed += r["failed"]
            if r["failed"]:
                print(f"  {c.name}: {r['failed']} connections failed, first: {r['first_error']}")
        out.connect_s = time.perf_counter() - t0
        time.sleep(args.settle)
        c0, t_idle = cpu_s(pid), time.perf_counter()
        out.rss_held_kib = rss_median(pid)
        out.idle_cpu = (cpu_s(pid) - c0) / (time.perf_counter() - t_idle)
        out.objects_held = server.ask("objects")["objects"]
        if args.gc_freeze:
            server.ask("freeze", timeout=30)
        if args.gc_threshold0:
            server.ask(f"threshold {args.gc_threshold0}")
        print(f"  {kind}: {out.connections:,} connections held ({out.failed} failed) in {out.connect_s:.1f} s; "
              f"RSS {out.rss_base_kib / 1024:.1f} -> {out.rss_held_kib / 1024:.1f} MiB "
              f"({out.kib_per_conn:.1f} KiB per connection)")

        for rate in args.rates:
            server.ask(f"rate {rate}")
            time.sleep(args.settle)  # warm-up at this rate
            m0, t_m0 = (metrics(url) if kind != "floor" else {}), time.perf_counter()
            for c in clients:
                c.ask("mark")
            s0 = server.ask("stats")
            t_start, cpu0 = time.perf_counter(), cpu_s(pid)
            time.sleep(args.seconds)
            s1 = server.ask("stats")
            wall = time.perf_counter() - t_start
            cpu1 = cpu_s(pid)
            reports = [c.ask("report", timeout=30) for c in clients]
            t_m1 = time.perf_counter()
            m1 = metrics(url) if kind != "floor" else {}
            lat = sorted(x for r in reports for x in r["latencies"])
            delivered = sum(r["alerts"] for r in reports)
            open_conns = sum(r["open"] for r in reports)
            produced_s = (s1["fed"] - s0["fed"]) / wall
            client_wall = sum(r["wall_s"] for r in reports) / len(reports)  # from mark to report, as counted
            server_del = ((m1["dropengine_alert_deliveries_total"] - m0["dropengine_alert_deliveries_total"])
                          / (t_m1 - t_m0) if m1 else None)
            step = Step(
                rate=rate, produced_s=produced_s, deliveries_s=delivered / client_wall,
                expected_s=produced_s * open_conns,
                server_deliveries_s=server_del, p50=pct(lat, 50), p90=pct(lat, 90), p99=pct(lat, 99),
                pmax=lat[-1] if lat else float("nan"), server_cpu=(cpu1 - cpu0) / wall,
                client_cpu=sum(r["cpu_s"] for r in reports) / wall, open_conns=open_conns,
                per_conn_min=min(r["per_conn_min"] for r in reports),
                per_conn_max=max(r["per_conn_max"] for r in reports),
                skipped_ticks=s1["skipped_ticks"] - s0["skipped_ticks"], ticks_s=(s1["ticks"] - s0["ticks"]) / wall,
                ingest_mean_ms=(s1["ingest_s"] - s0["ingest_s"]) * 1000 / max(1, s1["ticks"] - s0["ticks"]),
                ingest_max_ms=s1["ingest_max_ms"], late_max_ms=s1["late_max_ms"],
                gc_n=[b - a for a, b in zip(s0["gc_n"], s1["gc_n"], strict=True)],
                gc_ms=sum(s1["gc_s"]) * 1000 - sum(s0["gc_s"]) * 1000, gc_max_ms=s1["gc_max_ms"],
            )
            out.steps.append(step)
            print(f"  {kind} @ {rate:g}/s: {step.deliveries_s:,.0f} deliveries/s, p50 {step.p50:.1f} ms, "
                  f"p99 {step.p99:.1f} ms, server CPU {step.server_cpu:.0%}, client CPU {step.client_cpu:.0%}")
            if step.saturated:
                print(f"  {kind}: saturated at {rate:g} alerts/s x {open_conns} connections; no higher rate tried")
                break
        server.ask("rate 0")
        time.sleep(0.5)
        out.rss_after_kib = rss_kib(pid)
        if kind != "floor":
            out.final_metrics = metrics(url)
        return out
    finally:
        for c in reversed(children):
            c.stop()


def label(run: Run) -> str:
    return f"{run.kind} #{run.turn}" if run.turn else run.kind


def median(xs: list[float]) -> float:
    xs = sorted(x for x in xs if x == x)
    if not xs:
        return float("nan")
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def report(runs: list[Run], args: argparse.Namespace) -> None:
    mains = [r for r in runs if r.kind == "dropengine"]
    main = mains[0]
    # Each run is compared with the floor (and the old response) of its own turn.
    by_turn = {(r.kind, r.turn): {s.rate: s for s in r.steps} for r in runs}
    print()
    print(f"Connections: {main.connections:,} held ({main.failed} failed), connected in {main.connect_s:.1f} s")
    print()
    rows: list[tuple[str, ...]] = []
    for run in runs:
        for s in run.steps:
            f = by_turn.get(("floor", run.turn), {}).get(s.rate) if run.kind != "floor" else None
            rows.append((
                label(run), f"{s.rate:g}", fmt_rate(s.produced_s), fmt_rate(s.deliveries_s),
                f"{s.deliveries_s / s.expected_s:.3f}" if s.expected_s else "-",
                f"{s.p50:.1f}", f"{s.p90:.1f}", f"{s.p99:.1f}", f"{s.pmax:.1f}",
                f"{s.server_cpu:.0%}", f"{s.us_per_delivery:.1f}", f"{s.us_per_send:.1f}",
                f"{s.us_per_send / f.us_per_send:.2f}x" if f else "",
                f"{s.client_cpu:.0%}",
                f"{s.per_conn_min}-{s.per_conn_max}",
            ))
    print(table(("server", "alerts/s set", "produced/s", "deliveries/s", "got/expected", "p50 ms", "p90 ms",
                 "p99 ms", "max ms", "server CPU", "CPU us/delivery", "CPU us/send", "send vs floor", "client CPU",
                 "alerts per conn"), rows))
    # Ratios within each turn (the machine is shared: absolute figures move between turns, ratios less).
    print()
    rows = []
    for rate in args.rates:
        ratios: dict[str, list[float]] = {"new/floor send": [], "old/floor send": [], "new/old send": [],
                                          "new/old p99": [], "new p99": [], "old p99": [], "floor p99": []}
        for turn in sorted({r.turn for r in runs}):
            new = by_turn.get(("dropengine", turn), {}).get(rate)
            old = by_turn.get(("sse-starlette", turn), {}).get(rate)
            flo = by_turn.get(("floor", turn), {}).get(rate)
            for name, x in (("new p99", new), ("old p99", old), ("floor p99", flo)):
                if x is not None:
                    ratios[name].append(x.p99)
            if new and flo:
                ratios["new/floor send"].append(new.us_per_send / flo.us_per_send)
            if old and flo:
                ratios["old/floor send"].append(old.us_per_send / flo.us_per_send)
            if new and old:
                ratios["new/old send"].append(new.us_per_send / old.us_per_send)
                ratios["new/old p99"].append(new.p99 / old.p99)
        rows.append((f"{rate:g}", *(
            ("/".join(f"{v:.2f}" if "/" in k else f"{v:.0f}" for v in vs) + f" (median {median(vs):.2f})"
             if vs else "-") for k, vs in ratios.items())))
    print("Per turn (CPU us per send and p99 ms, ratios in the same turn):")
    print(table(("alerts/s", "new/floor us/send", "old/floor us/send", "new/old us/send", "new/old p99",
                 "new p99 ms", "old p99 ms", "floor p99 ms"), rows))
    print()
    rows = []
    for run in runs:
        for s in run.steps:
            rows.append((
                label(run), f"{s.rate:g}", f"{s.ingest_mean_ms:.2f}", f"{s.ingest_max_ms:.1f}", f"{s.late_max_ms:.1f}",
                str(s.skipped_ticks), "/".join(str(n) for n in s.gc_n), f"{s.gc_ms:.0f}", f"{s.gc_max_ms:.1f}",
            ))
    print("Inside the server process, per window:")
    print(table(("server", "alerts/s set", "ingest ms/tick", "ingest max ms", "tick late max ms", "ticks skipped",
                 "gc runs gen0/1/2", "gc ms total", "gc max ms"), rows))
    print()
    rows = []
    for run in runs:
        per = (run.objects_held - run.objects_base) / run.connections if run.connections else float("nan")
        rows.append((label(run), f"{run.connections:,}", f"{run.rss_base_kib / 1024:.1f}",
                     f"{run.rss_held_kib / 1024:.1f}", f"{run.kib_per_conn:.1f}",
                     f"{run.rss_after_kib / 1024:.1f}", f"{run.idle_cpu:.1%}", f"{run.objects_held:,}", f"{per:.0f}"))
    print(table(("server", "connections", "RSS before MiB", "RSS held MiB", "KiB/conn", "RSS after load MiB",
                 "idle CPU", "gc objects held", "objects/conn"), rows))
    fm = main.final_metrics
    if fm:
        print()
        print("/metrics after the last step: " + ", ".join(
            f"{k.removeprefix('dropengine_')} {v:,.0f}" for k, v in fm.items() if k in (
                "dropengine_connections", "dropengine_alerts_produced_total", "dropengine_alert_deliveries_total",
                "dropengine_queue_depth", "dropengine_queue_depth_max", "dropengine_slow_clients_cut_total",
                "dropengine_buffered_alerts")))
        if main.steps and main.steps[-1].server_deliveries_s is not None:
            s = main.steps[-1]
            print(f"server-side deliveries/s in the last window: {s.server_deliveries_s:,.0f} "
                  f"(client-counted {s.deliveries_s:,.0f})")

    # Aims: the step whose target deliveries/s is closest to the aim's, among those at >= the aim.
    print()
    # (the first turn's run of the new response; the per-turn table above has the others)
    at_aim = [st for st in main.steps if st.rate * st.open_conns >= AIM_DELIVERIES] or main.steps
    aim: Step | None = min(at_aim, key=lambda st: st.rate) if at_aim else None
    best = max(main.steps, key=lambda st: st.deliveries_s if st.p99 <= AIM_P99_MS else 0, default=None)
    rows = [("connections held", f"{main.connections:,}", f">= {AIM_CONNECTIONS:,}",
             f"{main.connections / AIM_CONNECTIONS:.2f}", verdict(main.connections >= AIM_CONNECTIONS))]
    if aim is not None:
        rows.append((f"deliveries/s at {aim.rate:g} alerts/s", fmt_rate(aim.deliveries_s), f">= {AIM_DELIVERIES:,}",
                     f"{aim.deliveries_s / AIM_DELIVERIES:.2f}", verdict(aim.deliveries_s >= 0.98 * AIM_DELIVERIES)))
        p99s = [n.p99 for r in mains for n in r.steps if n.rate == aim.rate]
        p99 = median(p99s)
        rows.append((f"p99 latency at {aim.rate:g} alerts/s", f"{p99:.1f} ms" + (
            f" (median of {len(p99s)})" if len(p99s) > 1 else ""), f"<= {AIM_P99_MS:g} ms",
                     f"{p99 / AIM_P99_MS:.2f}", verdict(p99 <= AIM_P99_MS)))
    floors = {st.rate: st for r in runs if r.kind == "floor" and r.turn == main.turn for st in r.steps}
    if aim is not None and aim.rate in floors:
        sends = [n.us_per_send / f.us_per_send for r in mains for n in r.steps if n.rate == aim.rate
                 for fr in runs if fr.kind == "floor" and fr.turn == r.turn for f in fr.steps if f.rate == aim.rate]
        ratio = median(sends)
        rows.append((f"CPU per send vs floor at {aim.rate:g} alerts/s", f"{ratio:.2f}x (median of {len(sends)})",
                     f"<= {AIM_SEND_VS_FLOOR:g}x", f"{ratio / AIM_SEND_VS_FLOOR:.2f}",
                     verdict(ratio <= AIM_SEND_VS_FLOOR)))
    if best is not None and best.p99 <= AIM_P99_MS:
        rows.append(("most deliveries/s with p99 <= 100 ms", fmt_rate(best.deliveries_s), "(info)",
                     f"{best.deliveries_s / AIM_DELIVERIES:.2f}", ""))
    rows.append(("server RSS per held connection", f"{main.kib_per_conn:.1f} KiB", f"<= {AIM_KIB_PER_CONN:g} KiB",
                 f"{main.kib_per_conn / AIM_KIB_PER_CONN:.2f}", verdict(main.kib_per_conn <= AIM_KIB_PER_CONN)))
    print(table(("aim", "measured", "aim", "measured/aim", "status"), rows))
    if any(st.client_cpu > 0.9 for run in runs for st in run.steps):
        print("\nWARNING: a client process used over 90% of a core: latencies may be the client's, not the server's.")


def rates_arg(text: str) -> list[float]:
    out = [float(x) for x in text.split(",") if x.strip()]
    if not out or any(r <= 0 for r in out):
        raise argparse.ArgumentTypeError(f"{text!r}: positive alerts/s, comma separated")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--connections", type=int, help="SSE connections to hold (default 1,000; 100 with --quick)")
    ap.add_argument("--rate", type=rates_arg,
                    help="alerts/s the source produces, comma separated steps on the same connections "
                         "(default 10,20,40; 50 with --quick)")
    ap.add_argument("--seconds", type=float, help="measurement window per step (default 10; 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small run for a smoke test (about 15 s)")
    ap.add_argument("--clients", type=int, default=1, help="client processes (default 1; the machine has 2 cores)")
    ap.add_argument("--concurrency", type=int, default=100, help="connects in flight per client")
    ap.add_argument("--keys", type=int, default=1_000, help="keys the source cycles through")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare asyncio baseline server")
    ap.add_argument("--no-old", action="store_true",
                    help="skip the response before issue 14 (sse-starlette's EventSourceResponse)")
    ap.add_argument("--turns", type=int, default=1,
                    help="run new, old and floor this many times in turns, order rotated (default 1)")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="experiment: gc.freeze() in the server once the connections are held (not what "
                         "`dropengine serve` does)")
    ap.add_argument("--gc-threshold0", type=int,
                    help="experiment: gc.set_threshold(N, 10, 10) in the server once the connections are held")
    ap.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    ap.add_argument("--kind", choices=KINDS, default="dropengine", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.role == "server":
        raise_nofile(65_536)
        if args.kind == "floor":
            serve_floor(args.keys)
        else:
            serve_dropengine(args.keys, "sse-starlette" if args.kind == "sse-starlette" else "lean")
        return 0
    if args.role == "client":
        run_client(args.url, args.connections, args.concurrency)
        return 0

    args.connections = args.connections or (100 if args.quick else 1_000)
    args.rates = args.rate or ([50.0] if args.quick else [10.0, 20.0, 40.0])
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.settle = 1.0 if args.quick else 2.0
    if not 1 <= args.connections <= 20_000 or not 1 <= args.clients <= 4 or not 0 < args.seconds <= 120 \
            or not 1 <= args.turns <= 5:
        ap.error("bounds: 1 <= --connections <= 20000, 1 <= --clients <= 4, 0 < --seconds <= 120, 1 <= --turns <= 5")
    limit = raise_nofile(args.connections + 256)
    t0 = time.perf_counter()
    print("dropengine server load benchmark" + (" (--quick)" if args.quick else ""))
    print(f"  cores    {os.cpu_count()} logical; fd limit {limit}; load {load_average()} at start")
    print(f"  setting  {args.connections:,} connections over {args.clients} client process(es), "
          f"rates {', '.join(f'{r:g}' for r in args.rates)} alerts/s, {args.seconds:g} s windows, "
          f"{args.keys:,} keys, loopback {HOST}")
    if args.gc_freeze or args.gc_threshold0:
        print(f"  EXPERIMENT, not what `dropengine serve` does: in the server, once the connections are held, "
              f"{'gc.freeze()' if args.gc_freeze else ''} "
              f"{f'gc.set_threshold({args.gc_threshold0}, 10, 10)' if args.gc_threshold0 else ''}")
    print()
    kinds = ["dropengine"] + ([] if args.no_old else ["sse-starlette"]) + ([] if args.no_floor else ["floor"])
    runs = []
    for turn in range(1, args.turns + 1):  # in turns, the order rotated each turn
        k = (turn - 1) % len(kinds)
        for kind in kinds[k:] + kinds[:k]:
            runs.append(run_kind(kind, args, turn if args.turns > 1 else 0))
    report(runs, args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
