"""The detect pieces that need no server: sources await a bus ingest (backpressure), the
ingest's split by partition (order kept, messages within the size limit), the checkpoint's
layout and its options check, and the lease's refusal text."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.engine import DropEngine
from dropengine.core.errors import ConfigError
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.core.quote import Quote
from dropengine.io.replay import read_quotes
from dropengine.server.sources import ReplaySource

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo_nba_frames.ndjson"


def test_a_replay_source_awaits_an_async_ingest_before_reading_on() -> None:
    """Backpressure: the next batch is handed over only when the previous call's awaitable
    is done (without the await the calls' bodies would never run at all)."""
    busy = False
    got: list[Quote] = []
    overlaps = 0

    async def ingest(quotes: list[Quote], now_ms: int) -> None:
        nonlocal busy, overlaps
        overlaps += busy
        busy = True
        await asyncio.sleep(0)  # the bus's acknowledgement
        await asyncio.sleep(0)
        got.extend(quotes)
        busy = False

    source = ReplaySource([DEMO], speed=None)
    asyncio.run(asyncio.wait_for(source.run(ingest, {}), 20))
    sent = [q for batch, _ in read_quotes([DEMO], line_only=True) for q in batch]
    assert got == sent and source.fed == len(sent) and overlaps == 0


def test_a_plain_ingest_is_still_called_as_before() -> None:
    got: list[Quote] = []
    source = ReplaySource([DEMO], speed=None)
    asyncio.run(asyncio.wait_for(source.run(lambda quotes, now: got.extend(quotes), {}), 20))
    assert len(got) == source.fed > 0


# -- BusIngest ---------------------------------------------------------------------------
pytest.importorskip("nats")  # bus.ingest imports the log module (which imports nats lazily only)

from dropengine.bus import checkpoint as ckpt  # noqa: E402
from dropengine.bus.codec import decode_quotes, encode_quotes  # noqa: E402
from dropengine.bus.ingest import BusIngest  # noqa: E402
from dropengine.bus.lease import LeaseHeld, LeaseValue  # noqa: E402


class _Log:
    """QuoteLog's publish, recorded (the real one is tested against a server)."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []

    async def publish(self, partition: int, now_ms: int, quotes: list[Quote], *, message_id: str | None = None) -> int:
        self.messages.append((partition, encode_quotes(now_ms, quotes)))
        return len(self.messages)


_quotes = st.lists(st.builds(
    lambda e, book, price, t: Quote("nba", f"ev{e}", f"b{book}", "h2h_home", price, t),
    st.integers(0, 12), st.integers(0, 3), st.sampled_from([-150, -120, 105, 130, None]), st.integers(0, 10**6)),
    max_size=40)


@settings(max_examples=60, deadline=None)
@given(_quotes, st.integers(1, 5), st.sampled_from([None, 700, 2000]), st.integers(0, 10**12))
def test_ingest_splits_by_partition_keeps_order_and_fits_messages(
        quotes: list[Quote], partitions: int, max_payload: int | None, now_ms: int) -> None:
    bus = SimpleNamespace(config=SimpleNamespace(), nc=SimpleNamespace(max_payload=max_payload))
    ingest = BusIngest(bus, partitions, record=False)  # type: ignore[arg-type]  # (a fake bus: no stream)
    log = _Log()
    ingest.log = log  # type: ignore[assignment]
    asyncio.run(ingest(quotes, now_ms))
    for i in range(partitions):
        mine = [decode_quotes(data) for p, data in log.messages if p == i]
        assert [q for m in mine for q in m.quotes] == [q for q in quotes if partition_of(q.event_id, partitions) == i]
        assert all(m.now_ms == now_ms and m.quotes for m in mine)
    assert all(len(data) <= ingest.max_bytes for _, data in log.messages)
    assert ingest.stats.quotes == len(quotes) and ingest.stats.messages == len(log.messages)
    assert sum(ingest.per_partition) == len(log.messages)


def test_ingest_refuses_a_bad_partition_count_and_time() -> None:
    bus: Any = SimpleNamespace(config=SimpleNamespace(), nc=SimpleNamespace(max_payload=None))
    with pytest.raises(ConfigError, match="partitions: 0"):
        BusIngest(bus, 0)
    with pytest.raises(ConfigError, match="now_ms: -1"):
        asyncio.run(BusIngest(bus, 2)([], -1))


# -- checkpoint and lease ------------------------------------------------------------------
def test_checkpoint_layout_is_the_contracts() -> None:
    engine = DropEngine(threshold=15)
    engine.observe(Quote("nba", "e1", "pin", "h2h_home", -110, 1))
    cp = ckpt.Checkpoint(ckpt.VERSION, 1, 4, 99, engine.snapshot(), engine.options.as_dict(), 123, "k3x")
    doc = msgspec.json.decode(msgspec.json.encode(cp))
    assert list(doc) == ["version", "partition", "partitions", "quote_seq", "engine", "options", "saved_ms",
                         "quote_epoch"]  # the quote stream's epoch: review13 #2
    assert doc["quote_epoch"] == "k3x"
    assert doc["version"] == 1 and doc["quote_seq"] == 99 and doc["options"]["threshold"] == 15
    assert DropEngine.restore(base64.b64decode(doc["engine"])).price_of("e1", "pin", "h2h_home") == -110
    assert ckpt.object_name(1, 4) == "p1.4"


@pytest.mark.parametrize(("saved", "now", "named"), [
    (DetectOptions(threshold=10), DetectOptions(threshold=12), "threshold: 10 in the checkpoint, 12 now"),
    (DetectOptions.build(types="odds_drop,steam"), DetectOptions(),
     "types: odds_drop,steam in the checkpoint, odds_drop now"),
    (DetectOptions.build(steam_groups="a+b"), DetectOptions.build(steam_groups="a+c"),
     "steam_groups: a+b in the checkpoint, a+c now"),
    (DetectOptions.build(sports="nba"), DetectOptions(), "sports: nba in the checkpoint, none now"),
])
def test_checkpoint_with_other_options_is_refused_naming_both(saved: DetectOptions, now: DetectOptions,
                                                              named: str) -> None:
    cp = ckpt.Checkpoint(1, 0, 2, 5, DropEngine.from_options(saved).snapshot(), saved.as_dict(), 0)
    with pytest.raises(ConfigError, match=r"checkpoint p0\.2") as info:
        ckpt.check_options(cp, now)
    assert named in str(info.value)
    ckpt.check_options(cp, saved)  # the same options: used
    ckpt.check_options(cp, DetectOptions.from_dict(saved.as_dict()))


def test_a_held_lease_names_its_holder_and_expiry() -> None:
    text = str(LeaseHeld("p0.2", LeaseValue("host:1:ab", 10_500), 10_000))
    assert "p0.2" in text and "host:1:ab" in text and "0.5 s" in text
