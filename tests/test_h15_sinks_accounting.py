"""The queue's accounting as a property: whatever the receiver answers (planned per request:
delivered, 5xx, 429, 4xx, network error), however many alerts are offered against whatever
queue size and attempts, once the sink is closed every alert is delivered, failed or dropped
exactly once (``offered == delivered + failed + dropped``), the dead-letter file holds one
line per failed or dropped alert (the same alerts), retries never exceed the attempts
allowed, and a rejected (4xx) alert is never retried. The sink's request is replaced by the
plan (the network is the other test files'); everything else is the real machinery."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.deliver import DeadLetterFile, RetrySchedule, WebhookSink
from dropengine.deliver.base import Queued
from dropengine.deliver.http import _Result

from .test_h15_sinks_rules import drop

ANSWERS = {"ok": _Result("ok", "HTTP 200"), "500": _Result("retry", "HTTP 500"),
           "429": _Result("rate_limited", "HTTP 429", 0.0), "404": _Result("reject", "HTTP 404"),
           "net": _Result("retry", "network error (ConnectError)")}


class Planned(WebhookSink):
    """A webhook sink whose requests are answered by a plan instead of a receiver."""

    def __init__(self, plan: list[str], **kwargs: object) -> None:
        super().__init__("http://127.0.0.1:9/never", "s", **kwargs)  # type: ignore[arg-type]
        self.plan = deque(plan)
        self.sent: list[tuple[str, int, str]] = []  # (event id, attempt, answer)

    async def _open(self) -> None:
        """No HTTP client: the plan answers."""

    async def _post(self, items: Sequence[Queued], attempt: int) -> _Result:
        self.counters.requests += 1
        answer = self.plan.popleft() if self.plan else "ok"
        self.sent.append((items[0].alert.event_id, attempt, answer))
        await asyncio.sleep(0)
        return ANSWERS[answer]


@settings(max_examples=40, deadline=None)
@given(plan=st.lists(st.sampled_from(sorted(ANSWERS)), max_size=60), n=st.integers(0, 25),
       queue_size=st.integers(1, 8), attempts=st.integers(1, 4), burst=st.integers(1, 25))
def test_every_alert_is_delivered_failed_or_dropped_exactly_once(tmp_path_factory: object, plan: list[str], n: int,
                                                                 queue_size: int, attempts: int, burst: int) -> None:
    dead_path: Path = tmp_path_factory.mktemp("acc") / "dead.ndjson"  # type: ignore[attr-defined]
    alerts = [drop(i) for i in range(n)]

    async def main() -> tuple[Planned, list[bool]]:
        sink = Planned(plan, queue_size=queue_size, dead_letter=DeadLetterFile(dead_path),
                       schedule=RetrySchedule(attempts=attempts, base_s=0.0, cap_s=0.0))
        await sink.start()
        accepted = []
        for i, a in enumerate(alerts):
            accepted.append(sink.offer(a))
            if (i + 1) % burst == 0:
                await asyncio.sleep(0)  # let the worker run between bursts
        await sink.aclose(5.0)
        return sink, accepted

    sink, accepted = asyncio.run(main())
    c = sink.counters
    assert c.offered == n == c.delivered + c.failed + c.dropped
    assert c.dropped == accepted.count(False)
    dead = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert len(dead) == c.dead_lettered == c.failed + c.dropped
    delivered = {e for e, _, answer in sink.sent if answer == "ok"}
    dead_ids = [d["alert"]["event_id"] for d in dead]
    assert len(delivered) == c.delivered and delivered.isdisjoint(dead_ids)
    assert sorted([*delivered, *dead_ids]) == sorted(a.event_id for a in alerts)  # each once, none lost
    by_alert: dict[str, list[tuple[int, str]]] = {}
    for e, attempt, answer in sink.sent:
        by_alert.setdefault(e, []).append((attempt, answer))
    for tries in by_alert.values():
        assert [t for t, _ in tries] == list(range(1, len(tries) + 1)) and len(tries) <= attempts
        assert all(answer not in ("ok", "404") for _, answer in tries[:-1])  # never retried after 2xx or 4xx
    assert c.retried == sum(len(t) - 1 for t in by_alert.values())
    for d in dead:
        if d["reason"] == "queue full":
            assert d["attempts"] == 0 and d["alert"]["event_id"] not in by_alert
        else:
            assert d["attempts"] == len(by_alert[d["alert"]["event_id"]])
