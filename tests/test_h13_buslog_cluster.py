"""The alert log on a 3-node R3 JetStream cluster: kill -9 the stream leader while one task
publishes (fenced, with retries) and two readers follow, one connected to the leader itself.

Invariants: every follower ends with every sequence 1..N exactly once (0 gaps, 0 duplicates);
the publisher's retries (same message id) succeed once a new leader is elected and never store
a message twice: the log holds N messages with N distinct message ids and sources 1..N.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from dropengine.bus import AlertLog, BusConfig, connect, ensure_streams
from dropengine.bus.codec import MSG_ID
from dropengine.core.alerts import Drop

from . import natsutil
from .natsutil import NatsCluster

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]

nats_cluster3 = natsutil.nats_cluster3

N = 150


def drop(i: int) -> Drop:
    return Drop(sport_key="nfl", event_id=f"e{i}", bookmaker="b", side="h2h_home", kind="game", market_key="h2h",
                prev=-110, new=-130, delta=20, direction="toward_favorite", last_update=i, timestamp=i, elapsed_ms=0)


def test_kill_the_stream_leader_while_publishing_and_following(nats_cluster3: NatsCluster) -> None:
    settings: dict[str, Any] = dict(replicas=3, heartbeat_s=0.5, request_timeout_s=1.0, publish_attempts=40)
    cfg = BusConfig(nats_cluster3.urls, **settings)

    async def scenario() -> None:
        async with await connect(cfg, name="publisher") as pub:
            await ensure_streams(pub)
            leader = await nats_cluster3.leader_of(cfg.alert_stream)
            other = next(s for s in nats_cluster3.nodes if s is not leader)
            # one reader knows only the leader's address (it fails over to the servers the cluster
            # advertised), one reads through another node
            on_leader = await connect(BusConfig((leader.url,), **settings), name="reader-on-leader")
            elsewhere = await connect(BusConfig((other.url,), **settings), name="reader-elsewhere")
            seen: dict[str, list[int]] = {"on_leader": [], "elsewhere": []}

            async def follow(name: str, log: AlertLog) -> None:
                async for e in log.follow(1):
                    seen[name].append(e.seq)
                    if e.seq >= N:
                        return

            readers = [asyncio.ensure_future(follow("on_leader", AlertLog(on_leader))),
                       asyncio.ensure_future(follow("elsewhere", AlertLog(elsewhere)))]
            attempts = 0
            real = pub.js.publish

            async def counted(*args: Any, **kw: Any) -> Any:
                nonlocal attempts
                attempts += 1
                return await real(*args, **kw)

            pub.js.publish = counted  # type: ignore[method-assign]
            log = AlertLog(pub, partitions=1)
            last = 0
            killed_at = 0.0
            for i in range(N):
                if i == N // 3:
                    # let the readers be mid-stream, then kill -9 the leader
                    while len(seen["elsewhere"]) < i or len(seen["on_leader"]) < i:
                        await asyncio.sleep(0.01)
                    leader.kill()
                    killed_at = time.monotonic()
                seq = await log.publish(0, drop(i), qseq=i + 1, k=0, produced_ms=i, expect_last=last)
                assert seq == last + 1
                last = seq
            assert killed_at
            await asyncio.wait_for(asyncio.gather(*readers), 30)
            for name, seqs in seen.items():
                assert seqs == list(range(1, N + 1)), name  # 0 gaps, 0 duplicates, in order
            assert attempts > N  # publishes were retried across the election ...
            entries = [e async for e in log.read(1, 10 * N)]
            assert [e.seq for e in entries] == list(range(1, N + 1))  # ... and nothing stored twice
            assert [e.source for e in entries] == [(i + 1, 0) for i in range(N)]
            ids = set()
            for seq in (1, N // 3, N // 3 + 1, N):
                raw = await pub.js.get_msg(cfg.alert_stream, seq)
                ids.add((raw.headers or {})[MSG_ID])
            assert len(ids) == 4
            new_leader = await nats_cluster3.leader_of(cfg.alert_stream)
            assert new_leader is not leader
            await on_leader.close()
            await elsewhere.close()

    asyncio.run(asyncio.wait_for(scenario(), 55))
