"""The detectors' registry (review13 #1): each detector's options recorded in the bus, read
back exactly (hypothesis over options), an absent bucket is no detectors, a corrupt entry
is skipped and logged. One module-scoped nats-server; a prefix per test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import SIGNALS
from dropengine.core.options import DetectOptions

from .natsutil import NatsServer, nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")

from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import Bus, connect  # noqa: E402
from dropengine.bus.registry import DetectorRecord, record_detector, recorded_detectors  # noqa: E402

__all__ = ["nats_server_module"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def open_bus(server: NatsServer, prefix: str) -> Bus:
    return await connect(BusConfig((server.url,), prefix=prefix), name=f"test-{prefix}")


options_st = st.builds(
    lambda threshold, types, line, direction, reference, books, cooldown: DetectOptions.build(
        threshold=threshold, direction=direction, reference=reference, types=types, line_threshold=line,
        steam_books=books, cooldown_ms=cooldown),
    st.sampled_from([1, 5, 10, 12.5]),
    st.lists(st.sampled_from(sorted(SIGNALS)), min_size=1, unique=True).map(",".join),
    st.sampled_from([0.25, 0.5, 1.0]),
    st.sampled_from(["both", "toward_favorite", "toward_dog"]),
    st.sampled_from(["last", "anchor"]),
    st.integers(2, 5),
    st.sampled_from([0, 60_000]),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=st.lists(options_st, min_size=1, max_size=3))
def test_recorded_as_given(nats_server_module: NatsServer, opts: list[DetectOptions]) -> None:
    """Each partition's record reads back with exactly its options (compared as DetectOptions)."""
    async def go() -> list[DetectorRecord]:
        async with await open_bus(nats_server_module, "reg") as bus:
            for i, o in enumerate(opts):
                await record_detector(bus, i, len(opts), o, 1000 + i)
            return [r for r in await recorded_detectors(bus) if r.partitions == len(opts)]

    got = run(go())
    assert got == [DetectorRecord(i, len(opts), o, 1000 + i) for i, o in enumerate(opts)]


def test_absent_and_corrupt(nats_server_module: NatsServer, caplog: pytest.LogCaptureFixture) -> None:
    """No bucket: no detectors (and reading creates none); a corrupt entry is skipped, logged
    with its key; a replaced record is the newest."""
    async def go() -> tuple[list[DetectorRecord], list[DetectorRecord], bool]:
        async with await open_bus(nats_server_module, "regabs") as bus:
            none = await recorded_detectors(bus)
            import nats.js.errors
            try:
                await bus.js.key_value(bus.config.detector_bucket)
                created = True
            except nats.js.errors.BucketNotFoundError:
                created = False
            await record_detector(bus, 0, 2, DetectOptions(), 1)
            await record_detector(bus, 1, 2, DetectOptions(), 2)
            await record_detector(bus, 1, 2, DetectOptions(threshold=3), 3)
            kv = await bus.js.key_value(bus.config.detector_bucket)
            await kv.put("p0.2", b'{"partition": 0, "partitions": 2, "options": {"threshold": "x"}, "saved_ms": 1}')
            await kv.put("p5.9", b"not json")
            return none, await recorded_detectors(bus), created

    with caplog.at_level(logging.WARNING, logger="dropengine.bus.registry"):
        none, got, created = run(go())
    assert none == [] and not created
    assert got == [DetectorRecord(1, 2, DetectOptions(threshold=3), 3)]
    text = caplog.text
    assert "p0.2" in text and "p5.9" in text and "skipped" in text
