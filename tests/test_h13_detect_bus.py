"""Partitioned detection on a real nats-server: P detectors publish exactly what one engine
detects, also across a kill -9 of a real ``dropengine detect`` process.

The real NFL recording (The Odds API snapshots, 122,788 quotes in 86 snapshots) is ingested
once per module into the quote stream (2 partitions, each snapshot stamped with its fetch
time as ``now_ms``). The every-``--types`` comparison reads the first :data:`CUT` snapshots
(23,340 quotes; every type fires: 54 drops, 112 line moves, 4 steams with all three); the
kill -9 test reads the whole recording with all three types (1,978 alerts). The alert stream
is deleted and created again before each test (a new stream also forgets the message ids of
the previous test, which its duplicate window would otherwise drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from dropengine.core.alerts import SIGNALS, Alert
from dropengine.core.engine import DropEngine
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.core.quote import Quote
from dropengine.io.replay import read_quotes

from .conftest import require_data
from .natsutil import NatsServer, nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")

from dropengine.bus import checkpoint as ckpt  # noqa: E402
from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import Bus, connect, ensure_streams  # noqa: E402
from dropengine.bus.detector import Detector  # noqa: E402
from dropengine.bus.ingest import BusIngest  # noqa: E402
from dropengine.bus.log import AlertLog, LogEntry  # noqa: E402

__all__ = ["nats_server_module"]  # the fixture, imported for pytest

NFL = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
#: Snapshots of the recording the every-types comparison reads.
CUT = 16
P = 2
ALL_TYPES = ",".join(SIGNALS)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 45.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@dataclass
class Ingested:
    config: BusConfig
    batches: list[tuple[list[Quote], int]]
    #: per snapshot count n: each partition's last quote message among the first n snapshots
    seqs_after: list[list[int]]


@pytest.fixture(scope="module")
def nfl_bus(nats_server_module: NatsServer) -> Ingested:
    batches = [(b, stamp if stamp is not None else max(q.last_update for q in b))
               for b, stamp in read_quotes([require_data("theoddsapi_nfl", NFL)], line_only=True)]
    config = BusConfig((nats_server_module.url,), prefix="nfl")

    async def go() -> list[list[int]]:
        async with await connect(config, name="test-ingest") as bus:
            await ensure_streams(bus)
            ingest = BusIngest(bus, P)
            seqs = [[0] * P]
            for quotes, now_ms in batches:
                await ingest(quotes, now_ms)
                seqs.append(list(ingest.last_seqs))
            return seqs

    return Ingested(config, batches, run(go()))


def single_process(ingested: Ingested, options: DetectOptions, n: int) -> list[tuple[int, tuple[int, int], Alert]]:
    """One engine over the first ``n`` snapshots: each alert with the partition and the
    source position ``(qseq, k)`` it must have in the log. Each snapshot is one message per
    partition (none is over the size limit), so the k-th alert of snapshot ``b`` on
    partition ``i`` is alert ``k`` of that partition's message of ``b``."""
    engine = DropEngine.from_options(options)
    out: list[tuple[int, tuple[int, int], Alert]] = []
    for b, (quotes, now_ms) in enumerate(ingested.batches[:n]):
        k = [0] * P
        for a in engine.observe_many(quotes, now_ms=now_ms):
            i = partition_of(a.event_id, P)
            out.append((i, (ingested.seqs_after[b + 1][i], k[i]), a))
            k[i] += 1
    return out


async def reset(bus: Bus) -> None:
    """A new alert stream (and no checkpoints or leases) for the next test."""
    import nats.js.errors

    with contextlib.suppress(nats.js.errors.NotFoundError):
        await bus.js.delete_stream(bus.config.alert_stream)
    for bucket in (f"OBJ_{bus.config.checkpoint_bucket}", f"KV_{bus.config.lease_bucket}"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await bus.js.delete_stream(bucket)
    await ensure_streams(bus)


async def log_entries(bus: Bus) -> list[LogEntry]:
    log = AlertLog(bus)
    info = await log.info()
    return [e async for e in log.read(info.first_seq, info.last_seq)] if info.last_seq >= info.first_seq else []


def check_log(entries: list[LogEntry], expected: list[tuple[int, tuple[int, int], Alert]]) -> None:
    """The log holds exactly the expected alerts (0 missing, 0 duplicates), each on its
    event's partition at its source position, each partition's in its engine's order."""
    got: Counter[tuple[int, Any, bytes]] = Counter((e.partition, e.source, msgspec.json.encode(e.alert))
                                                   for e in entries)
    want: Counter[tuple[int, Any, bytes]] = Counter((i, source, msgspec.json.encode(a)) for i, source, a in expected)
    missing, extra = want - got, got - want
    assert not missing and not extra, (f"{sum(missing.values())} missing, {sum(extra.values())} extra of "
                                       f"{len(expected)}: {list(missing)[:2]} / {list(extra)[:2]}")
    for i in range(P):
        mine = [e.source for e in entries if e.partition == i]
        assert mine == sorted(mine)  # type: ignore[type-var]


@pytest.mark.parametrize("types", [",".join(c) for r in (1, 2, 3) for c in itertools.combinations(SIGNALS, r)])
def test_two_detectors_publish_exactly_what_one_engine_detects(nfl_bus: Ingested, types: str) -> None:
    options = DetectOptions.build(types=types)
    expected = single_process(nfl_bus, options, CUT)
    # every type asked for fires in these snapshots
    assert {msgspec.json.decode(msgspec.json.encode(a))["type"] for *_, a in expected} == options.types
    until = nfl_bus.seqs_after[CUT]

    async def go() -> tuple[list[LogEntry], list[Any]]:
        async with await connect(nfl_bus.config, name="test-detect") as bus:
            await reset(bus)
            detectors = [Detector(bus, i, P, options, lease_ttl_s=2.0) for i in range(P)]
            stats = await asyncio.gather(*(d.run(until_seq=until[i]) for i, d in enumerate(detectors)))
            return await log_entries(bus), stats

    entries, stats = run(go())
    check_log(entries, expected)
    assert sum(s.published for s in stats) == len(expected)
    assert sum(s.quotes for s in stats) == sum(len(b) for b, _ in nfl_bus.batches[:CUT])
    assert all(s.bad_messages == 0 and s.foreign == 0 and s.skipped == 0 for s in stats)


# -- kill -9 -----------------------------------------------------------------------------
def _detect_cmd(config: BusConfig, partition: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dropengine", "detect", "--bus", config.servers[0], "--bus-prefix", config.prefix,
            # replay's thresholds given explicitly: detect's own defaults are the serve engine's (review13 #1)
            "--partition", partition, "--types", ALL_TYPES, "--threshold", "10", "--line-threshold", "0.5",
            "--checkpoint-every", "0.2", "--lease-ttl", "1",
            "--status-every", "0", "--log-level", "warning", *extra]


@contextlib.contextmanager
def _process(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def _poll(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def test_kill9_detector_restarts_and_the_log_holds_each_alert_once(nfl_bus: Ingested, tmp_path: Path) -> None:
    options = DetectOptions.build(types=ALL_TYPES)
    expected = single_process(nfl_bus, options, len(nfl_bus.batches))
    last = nfl_bus.seqs_after[-1]
    final = max(source for i, source, _ in expected if i == 0)
    config = nfl_bus.config

    async def go() -> tuple[list[LogEntry], str]:
        async with await connect(config, name="test-kill") as bus:
            await reset(bus)
            log = AlertLog(bus)
            # partition 1 in this process, partition 0 a real `dropengine detect` killed mid-run
            other = asyncio.ensure_future(Detector(bus, 1, P, options).run(until_seq=last[1]))
            with _process(_detect_cmd(config, "0/2"), tmp_path / "first.log") as first:
                async def past_checkpoint() -> bool:
                    # frozen (SIGSTOP), the process cannot move on between our look and the kill:
                    # kill it only when it published alerts after its last checkpoint
                    assert first.poll() is None, (tmp_path / "first.log").read_text()
                    first.send_signal(signal.SIGSTOP)
                    _, source = await log.last_for(0)
                    with contextlib.suppress(Exception):
                        cp = await asyncio.wait_for(ckpt.load(bus, 0, P), 2)
                        if cp is not None and source is not None and source[0] > cp.quote_seq:
                            return True
                    first.send_signal(signal.SIGCONT)
                    await asyncio.sleep(0.1)
                    return False

                await _poll(past_checkpoint, 30, "a checkpoint, then alerts after it")
                first.kill()  # kill -9 (stopped: it never runs again)
            with _process(_detect_cmd(config, "0/2"), tmp_path / "second.log") as second:
                async def caught_up() -> bool:
                    assert second.poll() is None, (tmp_path / "second.log").read_text()
                    return (await log.last_for(0))[1] == final

                await _poll(caught_up, 30, "the restarted detector to reach the end of partition 0")
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=15) == 0
            await other
            return await log_entries(bus), (tmp_path / "second.log").read_text()

    entries, second_log = run(go(), timeout=55)
    check_log(entries, expected)
    # the restart restored the checkpoint and skipped what the killed process had published
    assert "engine checkpoint at quote message" in second_log, second_log
    skipped = re.search(r"([0-9,]+) already in the log", second_log)
    assert skipped is not None and int(skipped.group(1).replace(",", "")) > 0, second_log
