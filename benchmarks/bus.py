"""The alert log's cost against raw nats-py on the same server, same bytes, same run.

Run from the repository root::

    .venv/bin/python benchmarks/bus.py              # 5,000 alerts per phase, best of 3 rounds (about 1 min)
    .venv/bin/python benchmarks/bus.py --n 2000 --rounds 1   # quicker

One nats-server (the ``[bus]`` extra's binary, JetStream on a temporary file store, loopback)
is started for the run and killed at its end. Every phase publishes or reads the same
``--n`` alerts (the wire JSON of one Drop, about 240 bytes, with dropengine's headers):

* publish, one at a time (each ack awaited): raw ``js.publish`` with the same headers, against
  ``AlertLog.publish`` fenced (``expect_last`` = the previous seq, what a detector does) and
  unfenced;
* publish with up to ``--inflight`` unacknowledged: raw ``js.publish_async`` against
  ``AlertLog.publish`` (unfenced) from that many concurrent tasks;
* read: nats-py's ordered push consumer (``js.subscribe(ordered_consumer=True)``, bytes only)
  against ``AlertLog.follow`` (entries decoded into alerts) and ``AlertLog.read``.

Ratios are dropengine's rate over the baseline's of the same phase (1.00 = as fast as raw).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import fmt_rate, load_average, machine, table  # type: ignore[import-not-found]
from bus_detect import _binary, nats_server  # type: ignore[import-not-found]  # one way to start it

from dropengine.bus import AlertLog, BusConfig, connect, ensure_streams
from dropengine.bus.codec import MSG_ID, PRODUCED_MS, SOURCE, encode_alert
from dropengine.core.alerts import Drop


def drop(i: int) -> Drop:
    return Drop(sport_key="americanfootball_nfl", event_id=f"ev{i % 97:04d}", bookmaker="draftkings",
                side="h2h_home", kind="game", market_key="h2h", prev=-110, new=-135, delta=25,
                direction="toward_favorite", last_update=1_700_000_000_000 + i, timestamp=1_700_000_000_500 + i,
                elapsed_ms=500, home_team="Home Team", away_team="Away Team")


async def _timed(n: int, coro: Any) -> float:
    t = time.perf_counter()
    await coro
    return n / (time.perf_counter() - t)


async def run(url: str, n: int, inflight: int, rounds: int) -> list[tuple[str, ...]]:
    alerts = [drop(i) for i in range(n)]
    payloads = [encode_alert(a) for a in alerts]
    rows: list[tuple[str, ...]] = []

    def fresh(tag: str) -> BusConfig:
        return BusConfig((url,), prefix=f"bench{tag}")

    async def raw_sync(bus: Any, subject: str) -> None:
        for i, p in enumerate(payloads):
            await bus.js.publish(subject, p, headers={MSG_ID: f"p0.1.{i + 1}.0", SOURCE: f"{i + 1}.0",
                                                        PRODUCED_MS: "1700000000000"})

    async def log_sync(log: AlertLog, fenced: bool) -> None:
        last = 0
        for i, a in enumerate(alerts):
            last = await log.publish(0, a, qseq=i + 1, k=0, produced_ms=1_700_000_000_000,
                                     expect_last=last if fenced else None)

    async def raw_async(bus: Any, subject: str) -> None:
        futs = []
        for i, p in enumerate(payloads):
            futs.append(await bus.js.publish_async(subject, p, headers={
                MSG_ID: f"p0.1.{i + 1}.0", SOURCE: f"{i + 1}.0", PRODUCED_MS: "1700000000000"}))
        await asyncio.gather(*futs)

    async def log_inflight(log: AlertLog) -> None:
        sem = asyncio.Semaphore(inflight)

        async def one(i: int) -> None:
            async with sem:
                await log.publish(0, alerts[i], qseq=i + 1, k=0, produced_ms=1_700_000_000_000, expect_last=None)

        await asyncio.gather(*(one(i) for i in range(n)))

    counter = iter(range(10**6))

    async def fill() -> tuple[Any, BusConfig]:
        cfg = fresh(str(next(counter)))
        bus = await connect(cfg, name="bench")
        await ensure_streams(bus)
        return bus, cfg

    async def phase(make: Any) -> float:
        bus, cfg = await fill()
        try:
            return await _timed(n, make(bus, cfg))
        finally:
            await bus.js.delete_stream(cfg.alert_stream)
            await bus.close()

    best: dict[str, float] = {}

    def keep(name: str, rate: float) -> None:
        best[name] = max(best.get(name, 0.0), rate)

    # Rounds alternate the phases' order; each phase keeps its best round (the machine is shared).
    phases = {
        "raw_sync": lambda bus, cfg: raw_sync(bus, cfg.alert_subject(0)),
        "fenced": lambda bus, cfg: log_sync(AlertLog(bus, partitions=1), True),
        "unfenced": lambda bus, cfg: log_sync(AlertLog(bus, partitions=1), False),
        "raw_async": lambda bus, cfg: raw_async(bus, cfg.alert_subject(0)),
        "inflight": lambda bus, cfg: log_inflight(AlertLog(bus, partitions=1)),
    }
    names = list(phases)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            keep(name, await phase(phases[name]))

    # -- read n alerts written by AlertLog (with dropengine's headers)
    reader, rcfg = await fill()
    await log_sync(AlertLog(reader, partitions=1), False)

    async def raw_read() -> None:
        got = 0
        done = asyncio.Event()

        async def cb(msg: Any) -> None:
            nonlocal got
            got += 1
            if got == n:
                done.set()

        sub = await reader.js.subscribe(rcfg.alert_subjects, cb=cb, ordered_consumer=True)
        await asyncio.wait_for(done.wait(), 120)
        await sub.unsubscribe()

    async def log_follow() -> None:
        count = 0
        async for _ in AlertLog(reader).follow(1):
            count += 1
            if count == n:
                return

    async def log_read() -> None:
        count = sum([1 async for _ in AlertLog(reader).read(1, n)])
        assert count == n, count

    reads = {"raw_read": raw_read, "follow": log_follow, "read": log_read}
    for r in range(rounds):
        for name in list(reads) if r % 2 == 0 else list(reads)[::-1]:
            keep(name, await _timed(n, reads[name]()))
    await reader.close()

    b = best
    rows.append(("publish, each ack awaited: AlertLog.publish fenced", fmt_rate(b["fenced"]), fmt_rate(b["raw_sync"]),
                 f"{b['fenced'] / b['raw_sync']:.2f}"))
    rows.append(("publish, each ack awaited: AlertLog.publish unfenced", fmt_rate(b["unfenced"]),
                 fmt_rate(b["raw_sync"]), f"{b['unfenced'] / b['raw_sync']:.2f}"))
    rows.append((f"publish, {inflight} in flight: AlertLog.publish tasks", fmt_rate(b["inflight"]),
                 fmt_rate(b["raw_async"]), f"{b['inflight'] / b['raw_async']:.2f}"))
    rows.append(("  (raw: publish_async vs one ack at a time)", fmt_rate(b["raw_async"]), fmt_rate(b["raw_sync"]),
                 f"{b['raw_async'] / b['raw_sync']:.2f}"))
    rows.append(("read: AlertLog.follow (decoded entries)", fmt_rate(b["follow"]), fmt_rate(b["raw_read"]),
                 f"{b['follow'] / b['raw_read']:.2f}"))
    rows.append(("read: AlertLog.read backfill (decoded entries)", fmt_rate(b["read"]), fmt_rate(b["raw_read"]),
                 f"{b['read'] / b['raw_read']:.2f}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5_000, help="alerts per phase")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (each phase keeps its best)")
    ap.add_argument("--inflight", type=int, default=256, help="unacknowledged publishes at most")
    args = ap.parse_args()
    store = Path(tempfile.mkdtemp(prefix="bench-nats-"))
    try:
        with nats_server(store) as url:
            found = subprocess.run([_binary(), "--version"], capture_output=True, text=True, timeout=10)
            version = found.stdout.strip()
            rows = asyncio.run(run(url, args.n, args.inflight, args.rounds))
    finally:
        shutil.rmtree(store, ignore_errors=True)
    print(f"# bus: the alert log against raw nats-py, {args.n:,} alerts per phase, best of {args.rounds} rounds\n")
    for k, v in machine(nats_py=importlib.metadata.version("nats-py"), nats_server=version).items():
        print(f"- {k}: {v}")
    print(f"- load average: {load_average()}\n")
    print(table(("phase", "alerts/s", "raw nats-py/s", "ratio"), rows))


if __name__ == "__main__":
    main()
