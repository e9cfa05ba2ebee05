"""review13 fixes on a real nats-server (one per module, a prefix per test): a renewal whose
write landed but whose answer was lost keeps the lease (#3); detectors record their options
(#1) and the partition count (#6); ingest changes only the stream settings it was given (#4);
a recreated alert log or quote stream is named as such, not taken for another writer (#8, #2)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from dropengine.core.alerts import Drop
from dropengine.core.errors import BusError, FencedError
from dropengine.core.quote import Quote

from .natsutil import NatsServer, nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")

import nats.errors  # noqa: E402

from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import Bus, connect, ensure_streams  # noqa: E402
from dropengine.bus.lease import Lease, LeaseValue  # noqa: E402

__all__ = ["nats_server_module"]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
_prefixes = itertools.count()


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def prefix() -> str:
    return f"bfx{next(_prefixes)}"


async def bus_for(server: NatsServer, pfx: str, *, streams: bool = True, **kw: Any) -> Bus:
    bus = await connect(BusConfig((server.url,), prefix=pfx, **kw), name=f"busfix-{pfx}")
    if streams:
        await ensure_streams(bus)
    return bus


def moves(event: str, t0: int, n: int = 2) -> list[Quote]:
    """``n`` price moves of 20 cents on one key of ``event``."""
    return [Quote("nba", event, "pin", "h2h_home", -110 - 20 * i, t0 + 1000 * i) for i in range(n + 1)]


# -- #3 ------------------------------------------------------------------------------------
def test_a_renewal_whose_answer_was_lost_keeps_the_lease(nats_server_module: NatsServer) -> None:
    """Renewal 1 lands but its answer is lost (a timeout): renewal 2 still holds the lease
    (the key names this owner); another owner's write still fences."""
    async def go() -> tuple[LeaseValue, str]:
        async with await bus_for(nats_server_module, prefix(), streams=False) as bus:
            lease = Lease(bus, "p0.1", "me:1:aa", 60)
            await lease.acquire(1_000)
            kv = await lease._bucket()
            update = kv.update
            lost = [True]

            async def lossy(*a: Any, **kw: Any) -> int:
                rev = await update(*a, **kw)
                if lost and lost.pop():
                    raise nats.errors.TimeoutError
                return int(rev)

            kv.update = lossy  # type: ignore[method-assign]
            with pytest.raises(BusError):
                await lease.renew(2_000)
            await lease.renew(3_000)  # FencedError before the fix
            entry = await kv.get("p0.1")
            value = msgspec.json.decode(entry.value, type=LeaseValue)
            # another owner takes it: the next renewal is fenced
            await update("p0.1", b'{"owner": "other:2:bb", "until_ms": 999999}', last=entry.revision)
            with pytest.raises(FencedError) as info:
                await lease.renew(4_000)
            return value, str(info.value)

    value, fenced = run(go())
    assert value == LeaseValue("me:1:aa", 63_000)
    assert "another owner" in fenced


def _ingest(server: NatsServer, pfx: str, *extra: str) -> Any:
    from click.testing import CliRunner

    from dropengine.cli.group import main

    demo = ROOT / "fixtures" / "demo_nba_frames.ndjson"
    return CliRunner().invoke(main, ["ingest", "--source", f"replay:{demo}", "--speed", "max", "--bus", server.url,
                                     "--bus-prefix", pfx, "--status-every", "0", "--log-level", "error", *extra])


def _detect(server: NatsServer, pfx: str, *extra: str) -> Any:
    from click.testing import CliRunner

    from dropengine.cli.group import main

    return CliRunner().invoke(main, ["detect", "--bus", server.url, "--bus-prefix", pfx, "--status-every", "0",
                                     "--log-level", "error", "--no-wait", *extra])


async def _stream_config(server: NatsServer, pfx: str, which: str) -> Any:
    async with await bus_for(server, pfx, streams=False) as bus:
        stream = bus.config.alert_stream if which == "alerts" else bus.config.quote_stream
        return (await bus.js.stream_info(stream)).config


# -- #4 #6: ingest keeps what it was not told to change; the partition count is recorded ---------
def test_ingest_changes_only_the_settings_given_and_keeps_its_partition_count(nats_server_module: NatsServer) -> None:
    pfx = prefix()
    week = 7 * 86400
    res = _ingest(nats_server_module, pfx, "--partitions", "3", "--log-max-age", str(week))
    assert res.exit_code == 0, res.output
    res = _ingest(nats_server_module, pfx, "--partitions", "3")  # the defaults: nothing changes
    assert res.exit_code == 0, res.output
    cfg = run(_stream_config(nats_server_module, pfx, "alerts"))
    assert cfg.max_age == week  # 86400 before the fix
    # lowering a limit needs --allow-shrink; the message names the old and new values
    res = _ingest(nats_server_module, pfx, "--partitions", "3", "--log-max-bytes", "100000")
    assert res.exit_code == 2 and "1073741824" in res.output and "100000" in res.output, res.output
    assert "--allow-shrink" in res.output
    res = _ingest(nats_server_module, pfx, "--partitions", "3", "--log-max-bytes", "100000", "--allow-shrink",
                  "--log-max-age", str(2 * week))
    assert res.exit_code == 0, res.output
    cfg = run(_stream_config(nats_server_module, pfx, "alerts"))
    assert (cfg.max_bytes, cfg.max_age) == (100000, 2 * week)
    # another partition count: refused naming both, unless --repartition
    res = _ingest(nats_server_module, pfx, "--partitions", "2")
    assert res.exit_code == 2 and "3" in res.output and "--partitions 2" in res.output, res.output
    # a detector of another P: exit 2 naming both counts (it would read a subject nobody splits by 2)
    res = _detect(nats_server_module, pfx, "--partition", "0/2", "--duration", "5")
    assert res.exit_code == 2, res.output
    assert "split into 3 partitions" in res.output and "0/2" in res.output
    res = _ingest(nats_server_module, pfx, "--partitions", "2", "--repartition")
    assert res.exit_code == 0, res.output
    from dropengine.bus.connect import recorded_partitions

    async def count() -> int | None:
        async with await bus_for(nats_server_module, pfx, streams=False) as bus:
            return recorded_partitions(await bus.js.stream_info(bus.config.quote_stream))

    assert run(count()) == 2


# -- #1: detect's defaults are the serve engine's, and recorded -------------------------------
def test_a_default_detector_detects_what_serve_detects_and_records_it(nats_server_module: NatsServer) -> None:
    """A 7-cent drop (below replay's default 10, above serve's 1) is in the log of a detector
    at detect's defaults, and the registry holds exactly serve's engine options (that the
    command's flags default to DETECT_DEFAULTS: tests/test_h13_busfix_units.py)."""
    from dropengine.bus.log import AlertLog, QuoteLog
    from dropengine.bus.registry import DetectorRecord, recorded_detectors
    from dropengine.server.ingest import ServeConfig

    pfx = prefix()

    async def detect() -> None:
        from dropengine.bus.detector import Detector
        from dropengine.cli.bus import DETECT_DEFAULTS

        async with await bus_for(nats_server_module, pfx) as bus:
            last = await QuoteLog(bus).publish(0, 5_000, [Quote("nba", "e1", "pin", "h2h_home", -110, 1_000),
                                                          Quote("nba", "e1", "pin", "h2h_home", -117, 2_000)])
            await Detector(bus, 0, 1, DETECT_DEFAULTS).run(until_seq=last)

    run(detect())

    async def look() -> tuple[list[DetectorRecord], list[tuple[float, float]]]:
        async with await bus_for(nats_server_module, pfx, streams=False) as bus:
            log = AlertLog(bus)
            info = await log.info()
            deltas = [(e.alert.prev, e.alert.new) async for e in log.read(1, info.last_seq)
                      if isinstance(e.alert, Drop)]
            return await recorded_detectors(bus), deltas

    records, got = run(look())
    assert [(r.partition, r.partitions) for r in records] == [(0, 1)]
    assert records[0].options == ServeConfig().detect_options()
    assert got == [(-110, -117)]


# -- #2: a recreated quote stream ---------------------------------------------------------------
def test_a_recreated_quote_stream_is_refused_at_start_and_fresh_detects_all_of_it(
        nats_server_module: NatsServer) -> None:
    from dropengine.bus.detector import Detector
    from dropengine.bus.log import AlertLog, QuoteLog
    from dropengine.core.errors import ConfigError
    from dropengine.core.options import DetectOptions

    async def go() -> tuple[str, str, str, list[tuple[str, tuple[int, int] | None, str | None]]]:
        async with await bus_for(nats_server_module, prefix()) as bus:
            quotes = QuoteLog(bus)
            await quotes.publish(0, 5_000, moves("e4", 1_000))
            last = await quotes.publish(0, 6_000, moves("e5", 3_000))
            a = Detector(bus, 0, 1, DetectOptions())
            assert (await a.run(until_seq=last)).published == 4  # a clean stop saves the checkpoint at 2
            old = a.quote_epoch
            await bus.js.delete_stream(bus.config.quote_stream)
            await ensure_streams(bus)
            new_last = await quotes.publish(0, 7_000, moves("e6", 10_000))
            assert new_last == 1  # numbered from 1 again
            with pytest.raises(ConfigError) as refused:  # before: read on from 3, skipping the new message
                await Detector(bus, 0, 1, DetectOptions()).run(until_seq=new_last)
            b = Detector(bus, 0, 1, DetectOptions(), fresh=True)
            stats = await b.run(until_seq=new_last)
            assert stats.published == 2 and stats.skipped == 0  # before: both skipped as "already in the log"
            log = AlertLog(bus)
            info = await log.info()
            entries = [(e.alert.event_id, e.source, e.source_epoch) async for e in log.read(1, info.last_seq)]
            return old, b.quote_epoch, str(refused.value), entries

    old, new, refused, entries = run(go())
    assert old != new and old in refused and new in refused and "--fresh" in refused
    assert [e[0] for e in entries] == ["e4", "e4", "e5", "e5", "e6", "e6"]
    assert [e[2] for e in entries] == [old] * 4 + [new] * 2
    assert [e[1] for e in entries][-2:] == [(1, 0), (1, 1)]


# -- #8: a recreated alert log ------------------------------------------------------------------
def test_a_recreated_alert_log_is_re_synced_not_taken_for_another_writer(nats_server_module: NatsServer) -> None:
    from dropengine.bus.detector import Detector
    from dropengine.bus.log import AlertLog, QuoteLog
    from dropengine.core.options import DetectOptions

    async def go() -> tuple[list[str], str, str]:
        async with await bus_for(nats_server_module, prefix()) as bus:
            quotes = QuoteLog(bus)
            await quotes.publish(0, 5_000, moves("e4", 1_000))
            d = Detector(bus, 0, 1, DetectOptions(), lease_ttl_s=60.0)
            stop = asyncio.Event()
            task = asyncio.ensure_future(d.run(stop))
            await _until(lambda: d.stats.published == 2 or task.done(), "the first two drops")
            before = await AlertLog(bus).epoch()
            await bus.js.delete_stream(bus.config.alert_stream)
            await ensure_streams(bus)
            await quotes.publish(0, 6_000, moves("e5", 3_000))
            await _until(lambda: d.stats.published == 4 or task.done(), "the next two drops")
            stop.set()
            await task  # FencedError ("another writer") before the fix
            log = AlertLog(bus)
            info = await log.info()
            return [e.alert.event_id async for e in log.read(1, info.last_seq)], before, info.epoch

    events, before, after = run(go())
    assert events == ["e5", "e5"] and before != after


async def _until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)
