"""review13 fixes on a real nats-server (one per module, a prefix per test): a renewal whose
write landed but whose answer was lost keeps the lease (#3); detectors record their options
(#1) and the partition count (#6); ingest changes only the stream settings it was given (#4);
a recreated alert log or quote stream is named as such, not taken for another writer (#8, #2)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

import msgspec
import pytest

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
