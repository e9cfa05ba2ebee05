"""State saves against delivery: does ``serve --state`` stall the streams?

Run from the repository root::

    .venv/bin/python benchmarks/state_save.py                 # 600k keys, 3 x 25 s (about 2 min)
    .venv/bin/python benchmarks/state_save.py --keys 100000 --seconds 10   # quicker
    .venv/bin/python benchmarks/state_save.py --evict-keys 2000000   # only: eviction, three ways
    .venv/bin/python benchmarks/state_save.py --evict-keys 2000000 --evict-chunk 50000

Four server modes run one after the other, same machine, same load, side by side:

* ``none``: no ``--state`` (the baseline);
* ``blocking``: ``--state`` saved on the event loop (``DropServer.save()``, what the periodic
  saver did before issue 10);
* ``thread``: ``DropServer.save_async()`` without fork (the fallback where ``os.fork`` does
  not exist): ingestion waits while the snapshot is encoded in a worker thread;
* ``fork``: ``--state`` as served now (``DropServer.save_async()``: a forked child encodes and
  writes the snapshot of that instant; the server goes on).

Each server (a subprocess, ``--role server``) primes ``--keys`` engine keys, then every 50 ms
ingests 5 quotes that each move a key by 20 cents (5 alerts), stamped with the tick's
*scheduled* wall-clock time, and saves every ``--every`` seconds. One client (this process,
a raw socket) reads ``/v1/odds-drop/all`` for ``--seconds`` and records the gap between
consecutive deliveries and each alert's latency (read time minus its ``timestamp``). A
stalled loop shows as a long gap and a high latency. Loopback only, every phase bounded.

``--evict-keys N`` measures eviction instead: an engine of N keys, half of them idle, evicted
three ways side by side: ``loop`` (``DropEngine.evict()`` in one go on the loop), ``thread``
(the server's path before it evicted in steps: one scan in a worker thread while ingestion is
held) and ``stepped`` (``DropServer.evict()`` as served now: ``DropEngine.evict_iter`` steps
of 50,000 keys on the loop, ingestion between steps). A ticker task records how late its
10 ms sleeps wake (loop lag) and, for the quote it ingests at each tick, how long from when
it was due until the engine holds it (ingest delay: the loop lag plus, for a quote held
during a scan in a thread, the rest of the scan).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import load_average, machine, table

MODES = ("none", "blocking", "thread", "fork")
TICK_S = 0.05
PER_TICK = 5
_TS = re.compile(rb'"type":"odds_drop".*?"timestamp":(\d+)')


# ---- the server -------------------------------------------------------------------------------------

def serve(mode: str, keys: int, every: float, state: str) -> None:
    from dropengine import Quote
    from dropengine.server.app import DropServer, ServeConfig
    from dropengine.server.asgi import bind, run_foreground

    sides = ("h2h_home", "h2h_away", "spread_home@-3", "spread_away@3", "total_over@220.5")
    t0 = int(time.time() * 1000) - 3_600_000

    class Source:
        name = "bench"
        reconnects = 0

        def status(self) -> dict[str, Any]:
            return {}

        def cursors(self) -> dict[str, int]:
            return {}

        async def run(self, ingest: Callable[[list[Quote], int], object], cursors: dict[str, int]) -> None:
            step = 50_000
            for lo in range(0, keys, step):
                ingest([Quote("basketball_nba", f"ev{i // 20}", f"b{(i // 5) % 4}", sides[i % 5], -110, t0 + i,
                              commence_time="2030-01-01T00:00:00Z")
                        for i in range(lo, min(keys, lo + step))], int(time.time() * 1000))
                await asyncio.sleep(0)
            print("primed", flush=True)
            n = 0
            start = time.time()
            while True:
                n += 1
                due = start + n * TICK_S
                await asyncio.sleep(max(0.0, due - time.time()))
                price = -130 if n % 2 else -110
                quotes = [Quote("basketball_nba", f"ev{j // 20}", f"b{(j // 5) % 4}", sides[j % 5], price,
                                t0 + keys + n, commence_time="2030-01-01T00:00:00Z") for j in range(PER_TICK)]
                ingest(quotes, int(due * 1000))

    class Blocking(DropServer):
        async def _save_periodically(self) -> None:  # the saver before issue 10: on the loop
            while True:
                await asyncio.sleep(self.config.state_every_s)
                self.save()

    cfg = ServeConfig(state_path=Path(state) if mode != "none" else None, state_every_s=every,
                      state_fork=mode == "fork")
    server = (Blocking if mode == "blocking" else DropServer)(Source(), cfg)  # type: ignore[abstract]
    server.restore(int(time.time() * 1000))
    sock = bind("127.0.0.1", 0)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    run_foreground(server.app, sock=sock, access_log=False, log_level="warning")


# ---- the client -------------------------------------------------------------------------------------

def measure(url: str, seconds: float) -> tuple[list[float], list[float]]:
    host, port = url.removeprefix("http://").split(":")
    gaps: list[float] = []
    lat: list[float] = []
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /v1/odds-drop/all?apiKey=bench&threshold=10&heartbeat_s=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        end = time.monotonic() + seconds
        last: float | None = None
        buf = b""
        while time.monotonic() < end:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            now = time.monotonic()
            wall = time.time() * 1000
            buf += chunk
            stamps = _TS.findall(buf)
            if stamps:
                buf = buf[buf.rfind(b"odds_drop"):]  # keep a tail; frames are small
                buf = buf[buf.find(b"\n\n") + 2:] if b"\n\n" in buf else buf
                if last is not None:
                    gaps.append((now - last) * 1000)
                last = now
                lat += [wall - int(t) for t in stamps]
    return gaps, lat


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    state = tmp / f"{mode}.state"
    cmd = [sys.executable, __file__, "--role", "server", "--mode", mode, "--keys", str(args.keys),
           "--every", str(args.every), "--state", str(state)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        deadline = time.monotonic() + 300
        while proc.stdout.readline().strip() != "primed":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not prime its keys")
        time.sleep(1.0)
        gaps, lat = measure(url, args.seconds)
        import httpx

        metrics = httpx.get(url + "/metrics", timeout=10).text
        saves = next((int(ln.split()[1]) for ln in metrics.splitlines()
                      if ln.startswith("dropengine_state_saves_total")), 0)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    size = state.stat().st_size if state.exists() else 0
    return {"mode": mode, "gaps": gaps, "lat": lat, "saves": saves, "size": size}


def evict_bench(n: int, chunk: int) -> None:
    from dropengine import Quote
    from dropengine.server.app import DropServer, ServeConfig
    from dropengine.server.sources import ManualSource

    async def thread_path(srv: DropServer) -> int:
        """The path before the stepped eviction: one scan in a worker thread, quotes held meanwhile."""
        before, started = srv._bounds()
        srv._held = []
        try:
            return await asyncio.to_thread(srv.engine.evict, before, started_before_ms=started)
        finally:
            held, srv._held = srv._held, None
            for quotes, now_ms in held:
                srv.ingest(quotes, now_ms)

    rows = []
    for path in ("loop", "thread", "stepped"):
        srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=3600, evict_started_s=0))
        t0 = 1_778_600_000_000
        for lo in range(0, n, 100_000):  # half the keys 2 h older than the other half
            srv.engine.observe_many(Quote("nba", f"e{i // 10}", f"b{i % 10}", "h2h_home", -110,
                                          t0 if i % 2 else t0 + 7_200_000) for i in range(lo, min(n, lo + 100_000)))
        srv._data_ms = t0 + 7_200_000
        srv._next_evict_ms = 2**62  # only the eviction measured here runs
        srv.evict_chunk = chunk or srv.evict_chunk
        held = srv.engine.keys_held

        async def go(srv: DropServer = srv, path: str = path) -> tuple[float, float, float, int]:
            lags: list[float] = []
            waits: list[float] = []  # per tick's quote: from when it was due to when the engine has it
            done = asyncio.Event()

            async def ticker() -> None:
                k = 0
                while not done.is_set():
                    t = time.perf_counter()
                    await asyncio.sleep(0.01)
                    now = time.perf_counter()
                    lag = (now - t - 0.01) * 1000
                    lags.append(lag)
                    k += 1
                    before = srv.engine.price_of("live", "b", "h2h_home")
                    srv.ingest([Quote("nba", "live", "b", "h2h_home", -110 - k % 2 * 20, srv._data_ms)],
                               int(time.time() * 1000))
                    while srv.engine.price_of("live", "b", "h2h_home") == before:  # held: wait for it
                        await asyncio.sleep(0.001)
                    waits.append(lag + (time.perf_counter() - now) * 1000)

            tick = asyncio.create_task(ticker())
            await asyncio.sleep(0.1)
            start = time.perf_counter()
            if path == "loop":
                before, started = srv._bounds()
                evicted = srv.engine.evict(before, started_before_ms=started)
            elif path == "thread":
                evicted = await thread_path(srv)
            else:
                evicted = await srv.evict()
            took = (time.perf_counter() - start) * 1000
            await asyncio.sleep(0.05)
            done.set()
            await tick
            return took, max(lags), max(waits), evicted

        took, worst, wait, evicted = asyncio.run(go())
        name = path if path != "stepped" else f"stepped {srv.evict_chunk:,}"
        rows.append((name, f"{held:,}", f"{evicted:,}", f"{took:.0f}", f"{worst:.0f}", f"{wait:.0f}"))
    print(table(("evict on", "keys", "evicted", "evict ms", "worst loop lag ms", "worst ingest delay ms"), rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", default="bench", choices=["bench", "server"])
    ap.add_argument("--mode", default="fork", choices=MODES)
    ap.add_argument("--keys", type=int, default=600_000)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--state", default="")
    ap.add_argument("--evict-keys", type=int, default=0, help="measure eviction of this many keys instead")
    ap.add_argument("--evict-chunk", type=int, default=0, help="keys per eviction step (default: the server's)")
    args = ap.parse_args()
    if args.role == "server":
        serve(args.mode, args.keys, args.every, args.state)
        return
    if args.evict_keys:
        print(f"load average before: {load_average()}")
        evict_bench(args.evict_keys, args.evict_chunk)
        print(f"load average after: {load_average()}")
        return
    import dropengine

    print(json.dumps(machine(dropengine=getattr(dropengine, "__version__", "?")), indent=1))
    print(f"load average before: {load_average()}; {args.keys:,} keys, a save every {args.every:g} s, "
          f"{PER_TICK} alerts every {TICK_S * 1000:.0f} ms, {args.seconds:g} s per mode")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            results.append(run_mode(mode, args, Path(tmp)))
    base = results[0]
    rows = []
    for r in results:
        g, lt = r["gaps"], r["lat"]
        rows.append((r["mode"], str(r["saves"]), f"{r['size'] / 2**20:.1f}", str(len(lt)),
                     f"{pct(g, 50):.0f}", f"{pct(g, 99):.0f}", f"{max(g, default=float('nan')):.0f}",
                     f"{pct(lt, 50):.0f}", f"{pct(lt, 99):.0f}", f"{max(lt, default=float('nan')):.0f}",
                     f"{max(g, default=0) / max(max(base['gaps'], default=1), 1):.1f}x",
                     f"{pct(lt, 99) / max(pct(base['lat'], 99), 1):.1f}x"))
    print(table(("mode", "saves", "MB", "alerts", "gap p50", "gap p99", "gap max", "lat p50", "lat p99",
                 "lat max", "gap max/none", "lat p99/none"), rows))
    print(f"load average after: {load_average()}  (times in ms)")


if __name__ == "__main__":
    main()
