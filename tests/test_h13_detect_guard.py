"""What keeps a partition's detector honest, on a real nats-server: one writer (a held lease
is waited for or refused; a displaced writer is fenced and publishes nothing), bad quote
messages skipped and counted, checkpoints of another partition count or other options
refused naming both, and the commands' start-up errors (missing extra, unreachable bus).

Small synthetic quotes: events ``e4``/``e5``/``e6`` are partition 0 of 2, ``e1``/``e2``
partition 1. Each test uses its own ``--bus-prefix`` on the module's one server.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner

from dropengine.cli.group import main
from dropengine.core.alerts import Alert
from dropengine.core.engine import DropEngine
from dropengine.core.errors import BusError, ConfigError, FencedError, SnapshotError
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.core.quote import Quote

from .natsutil import NatsServer, free_port, nats_server, nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")

from dropengine.bus import checkpoint as ckpt  # noqa: E402
from dropengine.bus.codec import encode_alert  # noqa: E402
from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import Bus, connect, ensure_streams, record_partitions  # noqa: E402
from dropengine.bus.detector import Detector  # noqa: E402
from dropengine.bus.ingest import BusIngest  # noqa: E402
from dropengine.bus.lease import LeaseHeld  # noqa: E402
from dropengine.bus.log import AlertLog, LogEntry, QuoteLog  # noqa: E402

__all__ = ["nats_server", "nats_server_module"]

T = TypeVar("T")
P = 2
ROOT = Path(__file__).resolve().parent.parent


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def moves(event: str, t0: int, n: int = 2) -> list[Quote]:
    """``n`` price moves of 20 cents on one key of ``event`` (``n`` drops after priming)."""
    return [Quote("nba", event, "pin", "h2h_home", -110 - 20 * i, t0 + 1000 * i) for i in range(n + 1)]


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def on_subject(bus: Bus, partition: int) -> list[LogEntry]:
    log = AlertLog(bus)
    info = await log.info()
    if info.last_seq < info.first_seq:
        return []
    return [e async for e in log.read(info.first_seq, info.last_seq) if e.partition == partition]


async def bus_for(server: NatsServer, prefix: str) -> Bus:
    bus = await connect(BusConfig((server.url,), prefix=prefix), name=f"test-{prefix}")
    await ensure_streams(bus)
    return bus


def test_a_held_partition_is_refused_or_waited_for_and_the_standby_never_publishes(
        nats_server_module: NatsServer) -> None:
    options = DetectOptions()

    async def go() -> None:
        async with await bus_for(nats_server_module, "held") as bus:
            ingest = BusIngest(bus, P)
            await ingest(moves("e4", 1_000), 5_000)
            stop_a = asyncio.Event()
            # A's clock runs an hour ahead: its lease stays valid to C's clock whatever the
            # scheduling of A's renewals on a loaded machine (review13 #16: no timing dependence)
            a = Detector(bus, 0, P, options, lease_ttl_s=0.5, owner="test:A", clock=lambda: time.time() + 3600)
            task_a = asyncio.ensure_future(a.run(stop_a))
            await until(lambda: a.stats.published == 2, 10, "A to publish the first two drops")
            # --no-wait: refused at once, naming the holder; nothing published, no engine
            b = Detector(bus, 0, P, options, lease_ttl_s=0.5, wait=False, owner="test:B")
            with pytest.raises(LeaseHeld, match="test:A"):
                await b.run()
            assert b.stats.published == 0 and b.engine is None
            # --wait: a standby while A renews (several lease lengths), publishing nothing
            waited: list[str] = []
            c = Detector(bus, 0, P, options, lease_ttl_s=0.5, owner="test:C", on_wait=lambda v: waited.append(v.owner))
            stop_c = asyncio.Event()
            task_c = asyncio.ensure_future(c.run(stop_c))
            await ingest(moves("e5", 10_000), 20_000)
            await until(lambda: a.stats.published == 4, 10, "A to publish the next two drops")
            await asyncio.sleep(0.6)  # C polls the held lease a few times meanwhile, and keeps waiting
            assert waited == ["test:A"] and c.engine is None and c.stats.published == 0
            # A stops (releasing the lease): C takes over from A's checkpoint at once
            stop_a.set()
            await task_a
            await until(lambda: c.engine is not None, 5, "C to take the released lease")
            assert c.origin.startswith("checkpoint at quote message")
            await ingest(moves("e6", 30_000), 40_000)
            await until(lambda: c.stats.published == 2, 10, "C to publish the new drops")
            stop_c.set()
            await task_c
            entries = await on_subject(bus, 0)
            sources = [e.source for e in entries]
            assert None not in sources and sources == sorted(set(sources))  # type: ignore[type-var]  # once, in order
            assert [e.alert.event_id for e in entries] == ["e4", "e4", "e5", "e5", "e6", "e6"]
            assert c.stats.skipped == 0 and c.stats.quotes == 3  # it never re-read A's quotes

    run(go())


def test_a_displaced_writer_is_fenced_and_publishes_nothing_more(nats_server_module: NatsServer) -> None:
    """The lease is long (no renewal during the test): only the log's expected-sequence check
    can stop the old writer once another process has written the partition."""

    async def go() -> None:
        async with await bus_for(nats_server_module, "fence") as bus:
            ingest = BusIngest(bus, P)
            await ingest(moves("e4", 1_000), 5_000)
            a = Detector(bus, 0, P, DetectOptions(), lease_ttl_s=60.0)
            task = asyncio.ensure_future(a.run())
            await until(lambda: a.stats.published == 2, 10, "the first two drops")
            # another writer appends to the partition (a standby whose clock ran ahead, say)
            other = AlertLog(bus, partitions=P)
            await other.publish(0, _drop("e5"), qseq=10**9, k=0, produced_ms=1, expect_last=None)
            await ingest(moves("e6", 30_000), 40_000)
            with pytest.raises(FencedError, match="another writer"):
                await asyncio.wait_for(task, 10)
            entries = await on_subject(bus, 0)
            assert [(e.alert.event_id, e.source) for e in entries][-1] == ("e5", (10**9, 0))
            assert [e.alert.event_id for e in entries] == ["e4", "e4", "e5"]
            assert a.stats.published == 2

    run(go())


def _drop(event: str) -> Alert:
    e = DropEngine()
    e.observe(Quote("nba", event, "x", "h2h_home", -110, 1))
    (alert,) = e.observe(Quote("nba", event, "x", "h2h_home", -150, 2))
    return alert


def test_bad_quote_messages_and_foreign_quotes_are_skipped_counted_and_the_rest_detected(
        nats_server_module: NatsServer) -> None:
    good = [(moves("e4", 1_000), 5_000), (moves("e5", 10_000) + moves("e6", 10_000), 20_000),
            (moves("e4", 30_000, 3)[1:], 40_000)]

    async def go() -> tuple[Any, list[LogEntry]]:
        async with await bus_for(nats_server_module, "bad") as bus:
            ingest = BusIngest(bus, P)
            subject = bus.config.quote_subject(0)
            await ingest(*good[0])
            await bus.js.publish(subject, b"not json at all")
            await ingest(*good[1])
            await bus.js.publish(subject, b'{"now_ms": 1, "quotes": [{"sport_key": "nba"}]}')  # a quote short
            # quotes of partition 1 in partition 0's subject (an ingest with another P): dropped
            await QuoteLog(bus).publish(0, 35_000, moves("e1", 30_000) + moves("e2", 30_000))
            await ingest(*good[2])
            d = Detector(bus, 0, P, DetectOptions())
            stats = await d.run(until_seq=ingest.last_seqs[0])
            return stats, await on_subject(bus, 0)

    stats, entries = run(go())
    engine = DropEngine()
    expected = [a for quotes, now in good for a in engine.observe_many(quotes, now_ms=now)]
    assert stats.bad_messages == 2 and stats.foreign == 6 and stats.messages == 6
    assert [encode_alert(e.alert) for e in entries] == [encode_alert(a) for a in expected]
    assert stats.published == len(expected) == 9


def test_a_checkpoint_of_another_partition_count_or_other_options_is_refused(nats_server_module: NatsServer) -> None:
    async def go() -> None:
        async with await bus_for(nats_server_module, "ckpt") as bus:
            ingest = BusIngest(bus, P)
            await ingest(moves("e4", 1_000) + moves("e1", 1_000), 5_000)
            for i in range(P):
                await Detector(bus, i, P, DetectOptions()).run(until_seq=ingest.last_seqs[i])
            cp = await ckpt.load(bus, 0, P)
            assert cp is not None and cp.quote_seq == ingest.last_seqs[0] and cp.options == DetectOptions().as_dict()
            # (the quote stream records P=2 and refuses a 0/3 detector first; review13 #6: the
            # checkpoint's own refusal is checked with the stream re-partitioned to 3)
            with pytest.raises(ConfigError, match=r"split into 2 partitions.*runs 0/3"):
                await Detector(bus, 0, 3, DetectOptions()).run()
            await record_partitions(bus, 3, repartition=True)
            with pytest.raises(ConfigError, match=r"checkpoint p0\.2 .*2 partitions.*runs 0/3"):
                await Detector(bus, 0, 3, DetectOptions()).run()
            await record_partitions(bus, P, repartition=True)
            with pytest.raises(ConfigError, match=r"checkpoint p0\.2 .*threshold: 10 in the checkpoint, 20 now"):
                await Detector(bus, 0, P, DetectOptions(threshold=20)).run()
            # --fresh: the operator's choice; an empty engine from the start of the quotes,
            # and nothing the log holds is published again
            fresh = Detector(bus, 0, P, DetectOptions(threshold=20), fresh=True)
            stats = await fresh.run(until_seq=ingest.last_seqs[0])
            assert fresh.origin.startswith("fresh") and stats.published == 0 and stats.skipped == 2
            # a corrupt checkpoint is refused, naming the object
            store = await bus.js.object_store(bus.config.checkpoint_bucket)
            await store.put("p1.2", b"\x00garbage")
            with pytest.raises(SnapshotError, match=r"checkpoint p1\.2"):
                await Detector(bus, 1, P, DetectOptions()).run()
            # a checkpoint whose engine snapshot is damaged: also refused naming the object
            good = await ckpt.load(bus, 0, P)
            assert good is not None
            await ckpt.save(bus, ckpt.Checkpoint(1, 1, P, 1, good.engine[:-3], good.options, 0))
            with pytest.raises(SnapshotError, match=r"checkpoint p1\.2 .*checksum mismatch"):
                await Detector(bus, 1, P, DetectOptions.from_dict(good.options)).run()

    run(go())
    # the command says the same, exit status 2
    res = CliRunner().invoke(main, ["detect", "--bus", nats_server_module.url, "--bus-prefix", "ckpt",
                                    "--partition", "0/2", "--threshold", "15", "--duration", "5"])
    assert res.exit_code == 2, res.output
    assert "checkpoint p0.2" in res.output and "threshold: 20 in the checkpoint, 15 now" in res.output


def test_a_detector_rides_out_a_server_restart(nats_server: NatsServer) -> None:
    """kill -9 of the (only) nats-server while a detector runs, then a restart on the same
    store: the detector reconnects, reads on and publishes what came meanwhile, each once."""

    async def go() -> None:
        async with await bus_for(nats_server, "restart") as bus:
            ingest = BusIngest(bus, P)
            await ingest(moves("e4", 1_000), 5_000)
            d = Detector(bus, 0, P, DetectOptions(), lease_ttl_s=30.0)
            stop = asyncio.Event()
            task = asyncio.ensure_future(d.run(stop))
            await until(lambda: d.stats.published == 2, 10, "the first drops")
            await ingest(moves("e5", 10_000), 20_000)
            nats_server.kill()  # while the detector reads, detects or publishes those
            await asyncio.sleep(0.3)
            nats_server.restart()
            await until(lambda: bus.is_connected, 10, "the client to reconnect")
            await ingest(moves("e6", 30_000), 40_000)
            await until(lambda: d.stats.quote_seq == ingest.last_seqs[0] or task.done(), 20, "the last message")
            stop.set()
            await task
            assert [e.alert.event_id for e in await on_subject(bus, 0)] == ["e4", "e4", "e5", "e5", "e6", "e6"]

    run(go(), timeout=50)


@pytest.mark.parametrize("stored", [True, False])
def test_a_failed_publish_is_retried_without_loss_or_repeat(nats_server_module: NatsServer, stored: bool) -> None:
    """A publish that fails (the bus unreachable) after the log stored the alert (a lost
    acknowledgement) or before: the detector retries, after reading the log's position again,
    and the log holds every alert once."""

    async def go() -> tuple[Any, list[LogEntry]]:
        async with await bus_for(nats_server_module, f"retry{int(stored)}") as bus:
            ingest = BusIngest(bus, P)
            await ingest(moves("e4", 1_000, 3) + moves("e5", 1_000), 5_000)
            d = Detector(bus, 0, P, DetectOptions())
            real = d._alerts.publish
            failed: list[int] = []

            async def flaky(*args: Any, **kw: Any) -> int:
                if kw["k"] == 1 and not failed:
                    failed.append(1)
                    if stored:
                        await real(*args, **kw)
                    raise BusError("publish: timed out (test)")
                return await real(*args, **kw)

            d._alerts.publish = flaky  # type: ignore[method-assign]
            stats = await d.run(until_seq=ingest.last_seqs[0])
            return stats, await on_subject(bus, 0)

    stats, entries = run(go())
    assert [e.source for e in entries] == [(1, k) for k in range(5)]
    assert [e.alert.event_id for e in entries] == ["e4"] * 3 + ["e5"] * 2
    assert stats.published == (4 if stored else 5) and stats.detected == 5


def test_a_restart_says_when_retention_trimmed_its_quotes(nats_server_module: NatsServer) -> None:
    async def go() -> None:
        async with await bus_for(nats_server_module, "trim") as bus:
            ingest = BusIngest(bus, P)
            await ingest(moves("e4", 1_000), 5_000)
            await Detector(bus, 0, P, DetectOptions()).run(until_seq=ingest.last_seqs[0])
            await ingest(moves("e5", 10_000), 20_000)  # never read: trimmed below
            await bus.js.purge_stream(bus.config.quote_stream)
            await ingest(moves("e6", 30_000), 40_000)
            d = Detector(bus, 0, P, DetectOptions())
            stats = await d.run(until_seq=ingest.last_seqs[0])
            assert d.trimmed == 1 and stats.quotes == 3 and stats.published == 2
            assert [e.alert.event_id for e in await on_subject(bus, 0)] == ["e4", "e4", "e6", "e6"]

    run(go())


def test_ingest_publishes_each_quote_to_its_partition_in_order(nats_server_module: NatsServer) -> None:
    demo = ROOT / "fixtures" / "demo_nba_frames.ndjson"
    res = CliRunner().invoke(main, ["ingest", "--source", f"replay:{demo}", "--speed", "max", "--bus",
                                    nats_server_module.url, "--bus-prefix", "ing", "--partitions", "3",
                                    "--status-every", "0"])
    assert res.exit_code == 0, res.output
    from dropengine.io.replay import read_quotes

    sent = [q for batch, _ in read_quotes([demo], line_only=True) for q in batch]

    async def go() -> list[list[Quote]]:
        async with await connect(BusConfig((nats_server_module.url,), prefix="ing"), name="t") as bus:
            log = QuoteLog(bus)
            out: list[list[Quote]] = []
            for i in range(3):
                got: list[Quote] = []
                last = await log.last_seq(i)
                if last == 0:  # no event of the demo falls in this partition
                    out.append(got)
                    continue
                async for seq, batch in log.read(i, 1):
                    assert not isinstance(batch, Exception)
                    got += batch.quotes
                    if seq >= last:
                        break
                out.append(got)
            return out

    per_partition = run(go())
    for i, got in enumerate(per_partition):
        assert got == [q for q in sent if partition_of(q.event_id, 3) == i]
    assert sum(map(len, per_partition)) == len(sent) > 0
    assert f"{len(sent):,} quotes" in res.output


def test_commands_fail_to_start_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    dead = f"nats://127.0.0.1:{free_port()}"
    res = runner.invoke(main, ["detect", "--bus", dead, "--partition", "0/2", "--connect-timeout", "0.5"])
    assert res.exit_code == 2 and f"cannot connect to the bus at {dead}" in res.output, res.output
    res = runner.invoke(main, ["ingest", "--source", f"replay:{ROOT / 'fixtures' / 'demo_nba_frames.ndjson'}",
                               "--bus", dead, "--partitions", "2", "--connect-timeout", "0.5"])
    assert res.exit_code == 2 and dead in res.output, res.output
    res = runner.invoke(main, ["detect", "--bus", dead, "--partition", "2/2"])
    assert res.exit_code == 2 and "I must be below P" in res.output
    res = runner.invoke(main, ["detect", "--bus", "http://x:1", "--partition", "0/2"])
    assert res.exit_code == 2 and "--bus" in res.output
    monkeypatch.setitem(sys.modules, "nats", None)  # the bus extra not installed
    for args in (["detect", "--bus", dead, "--partition", "0/2"],
                 ["ingest", "--source", "replay:x", "--bus", dead, "--partitions", "2"]):
        res = runner.invoke(main, args)
        assert res.exit_code == 2 and "pip install 'dropengine[bus]'" in res.output, res.output


def test_detect_waits_for_the_streams_ingest_creates(nats_server_module: NatsServer) -> None:
    res = CliRunner().invoke(main, ["detect", "--bus", nats_server_module.url, "--bus-prefix", "nostreams",
                                    "--partition", "0/1", "--duration", "0.3"])
    assert res.exit_code == 0, res.output
    assert "waiting for the streams NOSTREAMS_QUOTES and NOSTREAMS_ALERTS" in res.output


def test_help_states_the_guarantees() -> None:
    text = CliRunner().invoke(main, ["detect", "--help"]).output
    for words in ("--no-wait", "standby", "exactly once", "--fresh", "--types", "--steam-books", "--checkpoint-every"):
        assert words in text, words
    assert "--partitions" in CliRunner().invoke(main, ["ingest", "--help"]).output
