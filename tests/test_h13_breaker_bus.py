"""Breaker (issue 13): hostile messages in the quote stream and the alert log, on a real
nats-server (one per module, a prefix per test).

Each test was a strict xfail naming what was wrong; all are fixed now and stay as regression tests.
Invariant under attack: a message in ``{prefix}.quotes.{i}`` or ``{prefix}.alerts.{i}`` that
is not what the writers write is skipped and counted; it never crashes or stalls the
detector or the frontend (the messages after it are still detected / served).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from dropengine.core.quote import MAX_MS, Quote

from .natsutil import NatsServer, nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")

from dropengine.bus.codec import decode_quotes, encode_alert, encode_quotes  # noqa: E402
from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import Bus, connect, ensure_streams  # noqa: E402
from dropengine.bus.detector import Detector  # noqa: E402
from dropengine.bus.log import AlertLog, QuoteLog  # noqa: E402
from dropengine.core.engine import DropEngine  # noqa: E402
from dropengine.core.errors import ConfigError, FeedError  # noqa: E402
from dropengine.core.options import DetectOptions  # noqa: E402

__all__ = ["nats_server_module"]

T = TypeVar("T")
_prefixes = itertools.count()
#: How long a healthy reader needs for three messages is well under a second; a stalled one never gets there.
STALL_S = 4.0


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def bus_for(server: NatsServer) -> Bus:
    bus = await connect(BusConfig((server.url,), prefix=f"brk{next(_prefixes)}"), name="breaker13")
    await ensure_streams(bus)
    return bus


def moves(event: str, t0: int, n: int = 2) -> list[Quote]:
    return [Quote("nba", event, "pin", "h2h_home", -110 - 20 * i, t0 + 1000 * i) for i in range(n + 1)]


def _drop(event: str, i: int = 0) -> Any:
    e = DropEngine()
    e.observe(Quote("nba", event, "x", "h2h_home", -110, 1))
    (alert,) = e.observe(Quote("nba", event, "x", "h2h_home", -150 - i, 2))
    return alert


async def followed(bus: Bus, want: int) -> list[int]:
    """The seqs ``AlertLog.follow(1)`` yields until ``want`` is reached or STALL_S passes."""
    got: list[int] = []

    async def go() -> None:
        async for e in AlertLog(bus).follow(1):
            got.append(e.seq)
            if e.seq >= want:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(go(), STALL_S)
    return got


async def alert_log_with(bus: Bus, subject_tail: str, payload: bytes | None, headers: dict[str, str]) -> None:
    """Alert 1 (partition 0), the hostile message at seq 2, alert 3 (partition 1)."""
    log = AlertLog(bus, partitions=2)
    assert await log.publish(0, _drop("e4"), qseq=1, k=0, produced_ms=1, expect_last=None) == 1
    subject = f"{bus.config.prefix}.alerts.{subject_tail}"
    ack = await bus.js.publish(subject, encode_alert(_drop("e5")) if payload is None else payload, headers=headers)
    assert ack.seq == 2
    assert await log.publish(1, _drop("e1"), qseq=2, k=0, produced_ms=1, expect_last=None) == 3


# found by breaker13 (was a strict xfail), fixed in 7c66e65
def test_an_alert_log_message_with_a_status_header_and_no_body_does_not_stall_follow(
        nats_server_module: NatsServer) -> None:
    async def go() -> list[int]:
        async with await bus_for(nats_server_module) as bus:
            await alert_log_with(bus, "0", b"", {"Status": "404"})
            return await followed(bus, 3)

    got = run(go())
    assert got[0] == 1 and got[-1] == 3  # the hostile message skipped (a hole the hub resets at), alert 3 follows


# found by breaker13 (was a strict xfail), fixed in 7c66e65
def test_a_quote_message_with_a_status_header_and_no_body_does_not_stall_the_detector(
        nats_server_module: NatsServer) -> None:
    async def go() -> tuple[Any, int]:
        async with await bus_for(nats_server_module) as bus:
            quotes = QuoteLog(bus)
            await quotes.publish(0, 5_000, moves("e4", 1_000))
            await bus.js.publish(bus.config.quote_subject(0), b"", headers={"Status": "100"})
            last = await quotes.publish(0, 20_000, moves("e5", 10_000))
            d = Detector(bus, 0, 2, DetectOptions())
            stop = asyncio.Event()
            task = asyncio.ensure_future(d.run(stop, until_seq=last))
            done, _ = await asyncio.wait({task}, timeout=STALL_S)
            if not done:
                stop.set()
            stats = await asyncio.wait_for(task, 10)
            return stats, last

    stats, last = run(go())
    assert stats.quote_seq == last and stats.bad_messages == 1 and stats.published == 4


@pytest.mark.parametrize("tail, headers", [
    pytest.param("0", {"Dropengine-Produced-Ms": "\u00b2"}, id="produced-ms-superscript-two"),
    pytest.param("\u00b2", {}, id="subject-token-superscript-two"),
])
# found by breaker13 (was a strict xfail), fixed in 7c66e65
def test_a_non_decimal_digit_in_a_header_or_subject_does_not_stop_follow(
        nats_server_module: NatsServer, tail: str, headers: dict[str, str]) -> None:
    async def go() -> list[int]:
        async with await bus_for(nats_server_module) as bus:
            await alert_log_with(bus, tail, None, headers)
            return await followed(bus, 3)

    got = run(go())
    assert got[0] == 1 and got[-1] == 3


@pytest.mark.parametrize("now_ms", [MAX_MS + 1, 2**64 - 1, 2**64])
# found by breaker13 (was a strict xfail), fixed in 7c66e65
def test_decode_quotes_refuses_what_encode_quotes_refuses(now_ms: int) -> None:
    with pytest.raises(ConfigError):
        encode_quotes(now_ms, [])  # the writer's rule
    data = b'{"now_ms":%d,"quotes":[]}' % now_ms
    with pytest.raises(FeedError):
        decode_quotes(data)


def test_detectors_with_fewer_partitions_than_the_ingest_do_not_silently_lose_events(
        nats_server_module: NatsServer) -> None:
    from dropengine.bus.ingest import BusIngest
    from dropengine.core.partition import partition_of

    events: dict[int, str] = {}
    for i in range(200):
        events.setdefault(partition_of(f"ev{i}", 4), f"ev{i}")
    assert sorted(events) == [0, 1, 2, 3]
    quotes = [q for e in events.values() for q in moves(e, 1_000)]

    async def go() -> tuple[list[Any], list[BaseException]]:
        async with await bus_for(nats_server_module) as bus:
            ingest = BusIngest(bus, 4)
            await ingest(quotes, 5_000)
            stats: list[Any] = []
            refused: list[BaseException] = []
            for i in range(2):
                try:
                    stats.append(await asyncio.wait_for(
                        Detector(bus, i, 2, DetectOptions()).run(until_seq=ingest.last_seqs[i]), STALL_S))
                except (ConfigError, TimeoutError) as exc:  # a refusal (or a wait for quotes it will never read)
                    refused.append(exc)
            return stats, refused

    stats, refused = run(go())
    expected = len(DropEngine().observe_many(quotes, now_ms=5_000))
    assert expected == 8
    told = [exc for exc in refused if isinstance(exc, ConfigError)] or [s for s in stats if s.foreign]
    assert sum(s.published for s in stats) == expected or told, (stats, refused)


def test_a_source_header_beyond_the_quote_stream_does_not_silence_the_partition(
        nats_server_module: NatsServer) -> None:
    from dropengine.bus.ingest import BusIngest

    async def go() -> Any:
        async with await bus_for(nats_server_module) as bus:
            ingest = BusIngest(bus, 1)
            await ingest(moves("e4", 1_000), 5_000)
            first = await Detector(bus, 0, 1, DetectOptions()).run(until_seq=ingest.last_seqs[0])
            assert first.published == 2
            await bus.js.publish(bus.config.alert_subject(0), encode_alert(_drop("e9")),
                                 headers={"Dropengine-Source": "9999999999999999999.0"})
            await ingest(moves("e5", 10_000), 20_000)
            return await asyncio.wait_for(Detector(bus, 0, 1, DetectOptions()).run(until_seq=ingest.last_seqs[0]),
                                          STALL_S)

    try:
        second = run(go())
    except ConfigError:
        return  # refusing to start on an impossible source position is a fix too
    assert second.published == 2, second


_GOOD_DROP = {"type": "odds_drop", "sport_key": "nba", "event_id": "e1", "bookmaker": "pin", "side": "h2h_home",
              "kind": "game", "market_key": "h2h", "prev": -110, "new": -150, "delta": -40,
              "direction": "toward_favorite", "last_update": 2, "timestamp": 2, "elapsed_ms": 1}


@pytest.mark.parametrize("change", [
    pytest.param({"event_id": ""}, id="empty-event-id"),
    pytest.param({"kind": "banana"}, id="unknown-kind"),
    pytest.param({"timestamp": -99, "last_update": -5}, id="negative-times"),
    pytest.param({"prev": 0, "new": 0, "delta": 999999}, id="zero-prices-and-a-delta-they-cannot-make"),
])
def test_an_alert_no_engine_can_produce_is_not_decoded_as_an_alert(change: dict[str, Any]) -> None:
    import json

    from dropengine.bus.codec import decode_alert

    decode_alert(json.dumps(_GOOD_DROP).encode())  # the control: a real drop decodes
    with pytest.raises(FeedError):
        decode_alert(json.dumps({**_GOOD_DROP, **change}).encode())


def test_a_frontend_of_one_prefix_never_serves_another_prefixs_alerts(nats_server_module: NatsServer) -> None:
    from dropengine.core.errors import BusError

    n = next(_prefixes)

    async def go() -> list[Any]:
        url = nats_server_module.url
        async with await connect(BusConfig((url,), prefix=f"brk{n}-x"), name="breaker13-a") as a:
            await ensure_streams(a)
            await AlertLog(a, partitions=1).publish(0, _drop("e4"), qseq=1, k=0, produced_ms=1, expect_last=None)
        async with await connect(BusConfig((url,), prefix=f"brk{n}_x"), name="breaker13-b") as b:
            log = AlertLog(b)
            try:
                info = await log.info()
                return [e.alert async for e in log.read(1, max(1, info.last_seq))]
            except BusError:
                return []  # refusing another deployment's log is a fix

    assert run(go()) == []
