"""The alert log and quote stream against a real nats-server (one node, loopback).

Invariants: an alert's id is its stream sequence, dense, and every reader sees the same epoch;
a republish with the same message id is stored once and answers the original sequence (also
when the first attempt's ack was lost and the publish was retried); a wrong expected subject
sequence is a FencedError; read() returns exactly the held part of a range; follow() yields
every held sequence once, in order, and a deleted one as a visible jump; a quote message that
is not a batch comes out as a FeedError in its place; no nats exception leaves the package.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.bus import AlertLog, Bus, BusConfig, QuoteBatch, QuoteLog, connect, ensure_streams
from dropengine.bus.codec import MSG_ID, SOURCE
from dropengine.bus.log import LogRewound
from dropengine.core.alerts import Drop
from dropengine.core.epoch import new_epoch
from dropengine.core.errors import BusError, ConfigError, DropEngineError, FeedError, FencedError
from dropengine.core.quote import Quote

from . import natsutil
from .natsutil import NatsServer, free_port

# the fixtures this module uses
nats_server = natsutil.nats_server
nats_server_module = natsutil.nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]

T = TypeVar("T")
_prefixes = itertools.count()


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def drop(i: int, event: str = "e") -> Drop:
    return Drop(sport_key="nfl", event_id=f"{event}{i}", bookmaker="b", side="h2h_home", kind="game",
                market_key="h2h", prev=-110, new=-130, delta=20, direction="toward_favorite", last_update=i,
                timestamp=i, elapsed_ms=0)


def config(server: NatsServer, **kw: Any) -> BusConfig:
    kw.setdefault("prefix", f"t{next(_prefixes)}")
    kw.setdefault("heartbeat_s", 0.5)
    return BusConfig((server.url,), **kw)


async def opened(cfg: BusConfig, name: str = "test") -> Bus:
    bus = await connect(cfg, name=name)
    await ensure_streams(bus)
    return bus


async def take(it: AsyncIterator[T], n: int, timeout: float = 10.0) -> list[T]:
    out: list[T] = []

    async def loop() -> None:
        async for x in it:
            out.append(x)
            if len(out) == n:
                return

    await asyncio.wait_for(loop(), timeout)
    return out


async def publish_n(log: AlertLog, n: int, partitions: int = 2, start: int = 0) -> list[int]:
    seqs = []
    for i in range(start, start + n):
        seqs.append(await log.publish(i % partitions, drop(i), qseq=i + 1, k=0, produced_ms=1000 + i,
                                      expect_last=None, partitions=partitions))
    return seqs


def test_ids_are_dense_stream_sequences_and_every_reader_sees_one_epoch(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg, "a") as a, await opened(cfg, "b") as b:
            empty = await AlertLog(a).info()
            assert empty.first_seq == empty.last_seq + 1 == 1
            seqs = await publish_n(AlertLog(a, partitions=3), 9, partitions=3)
            assert seqs == list(range(1, 10))  # dense over all partitions
            info_a, info_b = await AlertLog(a).info(), await AlertLog(b).info()
            assert info_a == info_b and (info_a.first_seq, info_a.last_seq) == (1, 9)
            si = await a.js.stream_info(cfg.alert_stream)
            assert si.created is not None
            created_us = int(si.created.timestamp()) * 10**6 + si.created.microsecond
            assert info_a.epoch == new_epoch(created_us) == await AlertLog(b).epoch()
            entries = [e async for e in AlertLog(b).read(1, 9)]
            assert [e.seq for e in entries] == seqs
            assert [e.partition for e in entries] == [i % 3 for i in range(9)]
            assert [e.alert for e in entries] == [drop(i) for i in range(9)]
            assert [e.source for e in entries] == [(i + 1, 0) for i in range(9)]
            assert [e.produced_ms for e in entries] == [1000 + i for i in range(9)]
            followed = await take(AlertLog(a).follow(1), 9)
            assert followed == entries
            # the epoch is the stream's: recreating the stream changes it
            await a.js.delete_stream(cfg.alert_stream)
            await ensure_streams(a)
            assert (await AlertLog(b).info()).epoch != info_a.epoch

    run(scenario())


def test_same_message_id_is_stored_once_and_answers_the_original_seq(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            log = AlertLog(bus, partitions=2)
            first = await log.publish(0, drop(0), qseq=5, k=1, produced_ms=1, expect_last=0)
            await log.publish(1, drop(1), qseq=6, k=0, produced_ms=1, expect_last=None)
            again = await log.publish(0, drop(0), qseq=5, k=1, produced_ms=2, expect_last=None)
            assert again == first == 1
            assert log.duplicates == 1
            assert (await log.info()).last_seq == 2
            # another k of the same quote message is another alert
            assert await log.publish(0, drop(2), qseq=5, k=2, produced_ms=1, expect_last=first) == 3
            raw = await bus.js.get_msg(cfg.alert_stream, 1)
            assert raw.headers is not None and raw.headers[MSG_ID] == "p0.2.5.1" and raw.headers[SOURCE] == "5.1"

    run(scenario())


def test_a_retried_publish_whose_first_ack_was_lost_is_stored_once(nats_server_module: NatsServer) -> None:
    """The first attempt lands but its ack is lost (a timeout); the retry (same message id,
    same expected sequence) answers the stored message's sequence: one message, not two."""
    import nats.errors

    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            log = AlertLog(bus, partitions=1)
            base = await log.publish(0, drop(0), qseq=1, k=0, produced_ms=1, expect_last=0)
            real = bus.js.publish
            attempts: list[dict[str, str]] = []

            async def lossy(subject: str, payload: bytes = b"", **kw: Any) -> Any:
                attempts.append(dict(kw["headers"]))
                ack = await real(subject, payload, **kw)
                if len(attempts) == 1:
                    raise nats.errors.TimeoutError  # stored, but the ack never reached us
                return ack

            bus.js.publish = lossy  # type: ignore[method-assign,assignment]
            for fenced in (True, False):
                attempts.clear()
                last = (await log.info()).last_seq
                seq = await log.publish(0, drop(len(attempts)), qseq=last + 1, k=0, produced_ms=1,
                                        expect_last=last if fenced else None)
                assert len(attempts) == 2 and attempts[0] == attempts[1]  # the same message id, twice
                assert seq == last + 1 and (await log.info()).last_seq == last + 1  # stored once
            assert base == 1

    run(scenario())


def test_a_second_writer_is_fenced(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            mine, theirs = AlertLog(bus, partitions=2), AlertLog(bus, partitions=2)
            s1 = await mine.publish(0, drop(1), qseq=1, k=0, produced_ms=1, expect_last=0)
            await theirs.publish(0, drop(2), qseq=9, k=0, produced_ms=1, expect_last=s1)  # another writer
            with pytest.raises(FencedError) as err:
                await mine.publish(0, drop(3), qseq=2, k=0, produced_ms=1, expect_last=s1)
            assert "p0.2.2.0" in str(err.value) and f"expected last sequence {s1}" in str(err.value)
            # a subject BELOW the expected sequence was recreated or purged, not moved by a writer
            # (review13 #8): LogRewound, a BusError that is not a FencedError
            with pytest.raises(LogRewound) as rewound:
                await mine.publish(1, drop(4), qseq=3, k=0, produced_ms=1, expect_last=7)
            assert not isinstance(rewound.value, FencedError) and rewound.value.last_seq == 0
            # other partitions' subjects do not fence this one
            s3 = await mine.publish(1, drop(5), qseq=4, k=0, produced_ms=1, expect_last=0)
            assert await mine.last_for(0) == (2, (9, 0))
            assert await mine.last_for(1) == (s3, (4, 0))
            assert (await mine.info()).last_seq == 3

    run(scenario())


def test_read_gives_exactly_the_held_part_of_the_range(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module, log_max_bytes=4096)  # retention by bytes trims the start

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            log = AlertLog(bus, partitions=2)
            await publish_n(log, 12)
            seqs = [e.seq async for e in log.read(3, 7)]
            assert seqs == [3, 4, 5, 6, 7]
            assert [e.seq async for e in log.read(12, 100)] == [12]
            assert [e.seq async for e in log.read(13, 100)] == []
            assert [e.seq async for e in log.read(5, 4)] == []
            await publish_n(log, 40, start=12)
            info = await log.info()
            assert info.first_seq > 1 and info.last_seq == 52  # trimmed
            held = [e.seq async for e in log.read(1, 52)]
            assert held == list(range(info.first_seq, 53))
            assert [e.seq async for e in log.read(1, info.first_seq - 1)] == []
            # deleted messages are absent, the rest exact
            await bus.js.delete_msg(cfg.alert_stream, 50)
            assert [e.seq async for e in log.read(48, 52)] == [48, 49, 51, 52]
            await bus.js.delete_msg(cfg.alert_stream, 52)
            assert [e.seq async for e in log.read(52, 52)] == []
            for bad in (0, -1, "1"):
                with pytest.raises(ConfigError, match="start_seq"):
                    [e async for e in log.read(bad, 5)]  # type: ignore[arg-type]

    run(scenario())


def test_follow_is_contiguous_live_and_shows_holes(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg, "pub") as pub, await opened(cfg, "sub") as sub:
            log = AlertLog(pub, partitions=2)
            await publish_n(log, 5)
            follow = AlertLog(sub).follow(1)
            got = await take(follow, 5)
            assert [e.seq for e in got] == [1, 2, 3, 4, 5]
            # live: what is published after the reader caught up arrives, in order
            await publish_n(log, 5, start=5)
            assert [e.seq for e in await take(follow, 5)] == [6, 7, 8, 9, 10]
            # deleted and purged messages show as jumps of the sequence the caller sees
            await publish_n(log, 6, start=10)  # 11..16
            assert [e.seq for e in await take(follow, 6)] == list(range(11, 17))
            await follow.aclose()
            await publish_n(log, 4, start=16)  # 17..20
            await pub.js.delete_msg(cfg.alert_stream, 18)
            await pub.js.purge_stream(cfg.alert_stream, seq=3)  # keeps 3.. (drops 1, 2)
            seqs = [e.seq for e in await take(AlertLog(sub).follow(1), 17)]
            assert seqs == [*range(3, 18), 19, 20]
            # a follow from beyond the end waits for the next one
            tail = AlertLog(sub).follow(21)
            waiting = asyncio.ensure_future(take(tail, 1))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await publish_n(log, 1, start=20)
            assert [e.seq for e in await waiting] == [21]
            await tail.aclose()

    run(scenario())


def test_follow_and_publish_survive_a_server_kill_and_restart(nats_server: NatsServer) -> None:
    cfg = config(nats_server, publish_attempts=40, request_timeout_s=0.5)
    n = 60

    async def scenario() -> None:
        async with await opened(cfg, "pub") as pub, await opened(cfg, "sub") as sub:
            log = AlertLog(pub, partitions=1)
            seen: list[int] = []

            async def follower() -> None:
                async for e in AlertLog(sub).follow(1):
                    seen.append(e.seq)
                    if e.seq >= n:
                        return

            task = asyncio.ensure_future(follower())
            last = 0
            for i in range(n):
                if i == n // 2:
                    nats_server.kill()
                    asyncio.get_running_loop().call_later(0.3, nats_server.restart)
                seq = await log.publish(0, drop(i), qseq=i + 1, k=0, produced_ms=i, expect_last=last)
                assert seq == last + 1
                last = seq
            await asyncio.wait_for(task, 20)
            assert seen == list(range(1, n + 1))  # no gap, no duplicate
            assert pub.reconnects >= 1 and sub.reconnects >= 1

    run(scenario(), timeout=45)


def test_quote_log_round_trip_and_bad_messages_in_place(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)
    q = [Quote("nfl", f"e{i}", "b", "h2h_home", -110 - i, 1_700_000_000_000 + i) for i in range(4)]

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            ql = QuoteLog(bus)
            assert await ql.last_seq(0) == 0
            s1 = await ql.publish(0, 10, q[:2])
            s2 = await ql.publish(1, 11, q[2:3])
            await bus.js.publish(cfg.quote_subject(0), b'{"now_ms": 1, "quotes": [{"x": 1}]}')  # not a batch
            s4 = await ql.publish(0, 12, q[3:])
            assert (s1, s2, s4) == (1, 2, 4)
            assert await ql.last_seq(0) == 4 and await ql.last_seq(1) == 2
            got = await take(ql.read(0, 1), 3)
            assert got[0] == (1, QuoteBatch(10, q[:2]))
            assert got[1][0] == 3 and isinstance(got[1][1], FeedError) and "sport_key" in str(got[1][1])
            assert got[2] == (4, QuoteBatch(12, q[3:]))
            assert ql.bad_messages == 1
            assert await take(ql.read(1, 1), 1) == [(2, QuoteBatch(11, q[2:3]))]
            assert await take(ql.read(0, 4), 1) == [(4, QuoteBatch(12, q[3:]))]

    run(scenario())


def test_a_bad_alert_message_is_skipped_with_its_sequence(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            log = AlertLog(bus, partitions=1)
            await publish_n(log, 1, partitions=1)
            await bus.js.publish(cfg.alert_subject(0), b'{"type": "mystery"}')
            await publish_n(log, 1, partitions=1, start=1)
            assert [e.seq for e in await take(log.follow(1), 2)] == [1, 3]  # the caller sees the hole
            assert log.bad_messages == 1

    run(scenario())


def _no_nats(exc: BaseException) -> None:
    assert isinstance(exc, DropEngineError)
    shown = [exc, exc.__cause__] + ([] if exc.__suppress_context__ else [exc.__context__])
    for e in shown:  # what a traceback would show
        assert e is None or not type(e).__module__.startswith("nats"), repr(e)


def test_nats_exceptions_never_leak(nats_server_module: NatsServer) -> None:
    async def dead_port() -> None:
        port = free_port()
        cfg = BusConfig((f"nats://127.0.0.1:{port}",), connect_timeout_s=0.5)
        with pytest.raises(BusError) as err:
            await connect(cfg, name="x")
        assert f"127.0.0.1:{port}" in str(err.value)
        _no_nats(err.value)

    run(dead_port())
    cfg = config(nats_server_module)

    async def refused() -> None:
        async with await connect(cfg, name="x") as bus:
            with pytest.raises(BusError) as err:  # no stream yet
                await AlertLog(bus).info()
            _no_nats(err.value)
            with pytest.raises(BusError) as err:
                [e async for e in AlertLog(bus).read(1, 5)]
            _no_nats(err.value)
            with pytest.raises(BusError, match=cfg.alert_stream) as err:
                await anext(AlertLog(bus).follow(1))
            _no_nats(err.value)
            # a stream of that name with other subjects: named
            await bus.js.add_stream(name=cfg.alert_stream, subjects=["elsewhere.>"])
            with pytest.raises(BusError, match=f"{cfg.alert_stream}.*elsewhere") as err:
                await ensure_streams(bus)
            _no_nats(err.value)
            # a publish no stream takes, after bounded attempts
            await bus.js.delete_stream(cfg.alert_stream)
            short = AlertLog(bus, partitions=1)
            bus.config = BusConfig(cfg.servers, prefix=cfg.prefix, publish_attempts=2, request_timeout_s=0.2)
            with pytest.raises(BusError) as err:
                await short.publish(0, drop(0), qseq=1, k=0, produced_ms=1, expect_last=None)
            assert "2 attempts" in str(err.value)
            _no_nats(err.value)
        # a closed connection
        with pytest.raises(BusError) as err:
            await short.publish(0, drop(0), qseq=1, k=0, produced_ms=1, expect_last=None)
        _no_nats(err.value)
        with pytest.raises(ConfigError, match="partitions"):
            await AlertLog(bus).publish(0, drop(0), qseq=1, k=0, produced_ms=1, expect_last=None)

    run(refused())


def test_ensure_streams_is_idempotent_and_applies_settings(nats_server_module: NatsServer) -> None:
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg) as bus:
            epoch = await AlertLog(bus).epoch()
            await ensure_streams(bus)
            assert await AlertLog(bus).epoch() == epoch  # not recreated
            si = await bus.js.stream_info(cfg.alert_stream)
            assert (si.config.max_age, si.config.max_bytes, si.config.duplicate_window) == (86400, 1 << 30, 120)
            bus.config = BusConfig(cfg.servers, prefix=cfg.prefix, log_max_age_s=3600, log_max_bytes=1 << 20)
            await ensure_streams(bus, shrink=True)  # lowering limits is asked for explicitly (review13 #4)
            si = await bus.js.stream_info(cfg.alert_stream)
            assert (si.config.max_age, si.config.max_bytes) == (3600, 1 << 20)
            assert await AlertLog(bus).epoch() == epoch  # updated in place, same log

    run(scenario())



def test_a_delivery_lost_in_transit_is_read_again_never_skipped(nats_server_module: NatsServer) -> None:
    """The client drops a delivery once (as a slow consumer or a reconnect would): one in the
    middle (the next delivery's consumer sequence shows it), or the last one (only the idle
    heartbeat's last-delivered count shows it). follow() still yields every sequence once."""
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg, "pub") as pub, await opened(cfg, "sub") as sub:
            await publish_n(AlertLog(pub, partitions=2), 8)
            real = sub.nc.subscribe
            lose: set[int] = set()
            lost: list[int] = []

            async def lossy_subscribe(subject: str, *args: Any, cb: Any = None, **kw: Any) -> Any:
                async def lossy(msg: Any) -> None:
                    if msg.data and msg.reply:
                        seq = int(msg.reply.split(".")[5])
                        if seq in lose and seq not in lost:
                            lost.append(seq)
                            return
                    await cb(msg)

                return await real(subject, *args, cb=lossy if cb else None, **kw)

            sub.nc.subscribe = lossy_subscribe  # type: ignore[method-assign]
            for missing in (3, 8):
                lose, lost[:] = {missing}, []
                follow = AlertLog(sub).follow(1)
                assert [e.seq for e in await take(follow, 8)] == list(range(1, 9)), missing
                assert lost == [missing]
                await follow.aclose()

    run(scenario())


@pytest.fixture(scope="module")
def held_log(nats_server_module: NatsServer) -> tuple[BusConfig, list[int]]:
    """A log of 30 alerts of which a few were deleted and the first 4 purged."""
    cfg = config(nats_server_module)

    async def build() -> list[int]:
        async with await opened(cfg) as bus:
            await publish_n(AlertLog(bus, partitions=3), 30, partitions=3)
            for seq in (7, 8, 15, 30):
                await bus.js.delete_msg(cfg.alert_stream, seq)
            await bus.js.purge_stream(cfg.alert_stream, seq=5)
        return [s for s in range(5, 31) if s not in (7, 8, 15, 30)]

    return cfg, run(build())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(1, 35), stop=st.integers(0, 40))
def test_read_is_exactly_the_held_entries_in_range(held_log: tuple[BusConfig, list[int]], start: int,
                                                    stop: int) -> None:
    cfg, held = held_log

    async def scenario() -> list[int]:
        async with await connect(cfg, name="reader") as bus:
            return [e.seq async for e in AlertLog(bus).read(start, stop)]

    assert run(scenario()) == [s for s in held if start <= s <= stop]


def test_follow_ends_with_a_bus_error_when_the_log_is_recreated(nats_server_module: NatsServer) -> None:
    """Sequences of a recreated stream (another epoch) are other messages: following stops
    with a BusError naming both epochs instead of yielding them as the old log's."""
    cfg = config(nats_server_module)

    async def scenario() -> None:
        async with await opened(cfg, "pub") as pub, await opened(cfg, "sub") as sub:
            await publish_n(AlertLog(pub, partitions=1), 2, partitions=1)
            old = await AlertLog(pub).epoch()
            follow = AlertLog(sub).follow(1)
            assert [e.seq for e in await take(follow, 2)] == [1, 2]
            await pub.js.delete_stream(cfg.alert_stream)
            await ensure_streams(pub)
            await publish_n(AlertLog(pub, partitions=1), 3, partitions=1)  # seqs 1..3 of the new log
            new = await AlertLog(pub).epoch()
            with pytest.raises(BusError, match=f"recreated \\(epoch {old} -> {new}\\)"):
                await take(follow, 1)

    run(scenario())
