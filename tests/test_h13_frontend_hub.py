"""The hub numbered by an alert log, with the frontend's resume logic (``catch_up``), against
an in-memory log: no server. Two frontends follow one log; clients move between them with
their last id while the log grows, loses messages (deleted: holes) and is trimmed.

Invariants (per client, over its whole life, every connection): ids strictly increasing (no
duplicate), no alert the client's filter accepts is skipped except behind an explicit
``reset`` frame, and with nothing deleted or trimmed there is no reset at all and the client
gets exactly the matching alerts, whichever frontend it resumes on, however old its cursor
(tiny rings: resumes older than the ring are served from the log).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import Drop
from dropengine.core.errors import ConfigError
from dropengine.core.filters import AlertFilter
from dropengine.server.busfeed import FeedCounters, catch_up, needs_log
from dropengine.server.hub import Cursor, Hub, ResetNotice

EPOCH = "ep"


def drop(i: int, delta: int, sport: str) -> Drop:
    direction = "toward_favorite" if delta < 0 else "toward_dog"
    return Drop(sport, f"e{i}", "pinnacle", "h2h_home", "game", "h2h", -110, -110 + delta, delta, direction,
                1000 + i, 1000 + i, 0)


@dataclass(frozen=True)
class _E:
    seq: int
    alert: Drop
    produced_ms: int


@dataclass
class FakeLog:
    """The alert log as the frontend sees it: dense seqs, some deleted, a trimmed head."""

    alerts: dict[int, Drop] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    first: int = 1
    last: int = 0

    def held(self, seq: int) -> bool:
        return self.first <= seq <= self.last and seq not in self.deleted

    async def info(self) -> object:
        from dropengine.bus.log import LogInfo

        return LogInfo(EPOCH, self.first if self.first <= self.last else self.last + 1, self.last)

    async def read(self, start: int, stop: int) -> AsyncIterator[_E]:
        for s in range(start, stop + 1):
            await asyncio.sleep(0)
            if self.held(s):
                yield _E(s, self.alerts[s], s)


def parse(frames: bytes) -> list[tuple[str, int]]:
    """(type, seq of its id) of each SSE event in ``frames``."""
    out = []
    for block in frames.split(b"\n\n"):
        if not block:
            continue
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n"))
        kind = json.loads(lines[b"data"])["type"]
        epoch, seq = lines[b"id"].decode().rsplit("-", 1)
        assert epoch == EPOCH
        out.append((kind, int(seq)))
    return out


class Client:
    def __init__(self, flt: AlertFilter) -> None:
        self.flt = flt
        self.got: list[tuple[str, int]] = []
        self.sub = None
        self.hub: Hub | None = None

    @property
    def last(self) -> int:
        return self.got[-1][1] if self.got else 0

    def read(self, limit: int = 100_000) -> None:
        if self.sub is not None and self.hub is not None:
            items = self.hub.take(self.sub, limit)
            self.got += parse(b"".join(i.frame for i in items))

    def connect(self, hub: Hub, log: FakeLog, counters: FeedCounters) -> None:
        if self.hub is not None and self.sub is not None:
            self.hub.unsubscribe(self.sub)  # cut: what it had not read yet is lost with the connection
        cursor = Cursor(EPOCH, self.last)
        if not needs_log(hub, cursor):
            self.sub, reason = hub.subscribe(self.flt, cursor)
            assert reason is None, reason  # the ring covers it: never a reset up front
        else:
            async def run() -> None:
                async for item in catch_up(hub, self.flt, cursor, lambda: None, log, counters, chunk=2):
                    if isinstance(item, bytes):
                        self.got += parse(item)
                    else:
                        self.sub, reason = item
                        if reason is not None:
                            self.got.append(("reset", hub.position(self.sub).seq))

            asyncio.run(run())
        self.hub = hub


def follow(hub: Hub, log: FakeLog) -> None:
    """A frontend catching up with the log: what it holds after the hub's newest, in order."""
    hub.publish_logged([(s, log.alerts[s], s) for s in range(hub.next_seq, log.last + 1) if log.held(s)], now_ms=0)


_append = st.tuples(st.just("append"), st.lists(st.tuples(st.integers(-40, 40).filter(bool),
                                                        st.sampled_from(["nba", "nhl"])), min_size=1, max_size=6))
_follow = st.tuples(st.just("follow"), st.integers(0, 1))
_read = st.tuples(st.just("read"), st.integers(0, 2), st.integers(1, 4))  # a slow reader: a few at a time
_move = st.tuples(st.just("move"), st.integers(0, 2), st.integers(0, 1))
op = st.one_of(  # (repeats weigh the choice: the log grows, frontends follow, clients read and move)
    _append, _append, _follow, _follow, _read, _read, _move, _move,
    st.tuples(st.just("delete"), st.integers(0, 6)),  # how far back from the log's newest
    st.tuples(st.just("trim"), st.integers(1, 3)),
)


def run_model(ops: list[tuple], flts: list[AlertFilter], buffer_size: int, lossy: bool,
              trims: bool = True) -> tuple[FakeLog, list[Client], list[Hub]]:
    log = FakeLog()
    hubs = [Hub(EPOCH, buffer_size=buffer_size, logged=True, max_pending=100_000) for _ in range(2)]
    counters = FeedCounters()
    clients = [Client(f) for f in flts]
    for i, c in enumerate(clients):
        c.connect(hubs[i % 2], log, counters)
    for o in ops:
        if o[0] == "append":
            for delta, sport in o[1]:
                log.last += 1
                log.alerts[log.last] = drop(log.last, delta, sport)
        elif o[0] == "follow":
            follow(hubs[o[1]], log)
        elif o[0] == "read":
            clients[o[1]].read(o[2])
        elif o[0] == "move":
            clients[o[1]].connect(hubs[o[2]], log, counters)
        elif o[0] == "delete" and lossy and log.last - o[1] >= 1:
            log.deleted.add(log.last - o[1])
        elif o[0] == "trim" and lossy and trims:
            log.first = min(log.first + o[1], log.last + 1)
    for h in hubs:  # the end: every frontend caught up, every client reads it all
        follow(h, log)
    for c in clients:
        c.read()
    return log, clients, hubs


def check(log: FakeLog, client: Client) -> int:
    """The invariants; returns how many resets the client got."""
    prev = 0
    for kind, seq in client.got:
        assert seq > prev, f"id {seq} after {prev}: not strictly increasing in {client.got}"
        if kind != "reset":
            assert log.alerts[seq] is not None and client.flt.accepts(log.alerts[seq])
            silent = [t for t in range(prev + 1, seq) if client.flt.accepts(log.alerts[t])]
            assert not silent, f"{silent} skipped without a reset before {seq}: {client.got}"
        prev = seq
    assert prev <= log.last
    tail = [t for t in range(prev + 1, log.last + 1) if client.flt.accepts(log.alerts[t]) and log.held(t)]
    assert not tail, f"{tail} never delivered: {client.got}"
    return sum(1 for k, _ in client.got if k == "reset")


filters = st.lists(st.builds(lambda t, s: AlertFilter.build(threshold=t, sports=s), st.integers(1, 20),
                             st.sampled_from([None, None, frozenset({"nba"})])), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=8, max_size=50), filters, st.integers(1, 4))
def test_without_losses_every_resume_gets_exactly_the_missing_alerts(
        ops: list[tuple], flts: list[AlertFilter], buffer_size: int) -> None:
    log, clients, _ = run_model(ops, flts, buffer_size, lossy=False)
    for c in clients:
        assert check(log, c) == 0
        assert [s for _, s in c.got] == [s for s in range(1, log.last + 1) if c.flt.accepts(log.alerts[s])]


@settings(max_examples=150, deadline=None)
@given(st.lists(op, min_size=8, max_size=50), filters, st.integers(1, 4), st.booleans())
def test_holes_and_trims_are_resets_never_silent_gaps_or_duplicates(
        ops: list[tuple], flts: list[AlertFilter], buffer_size: int, trims: bool) -> None:
    log, clients, _ = run_model(ops, flts, buffer_size, lossy=True, trims=trims)
    for c in clients:
        check(log, c)


def test_a_hole_resets_only_the_subscribers_that_had_not_got_past_it() -> None:
    hub = Hub(EPOCH, logged=True)
    flt = AlertFilter.build(threshold=1)
    live, _ = hub.subscribe(flt)
    ahead, _ = hub.subscribe(flt, Cursor(EPOCH, 5), log_last=6)  # another frontend gave it up to 5
    assert ahead.floor == 5 and hub.position(ahead) == Cursor(EPOCH, 5)
    hub.publish_logged([(1, drop(1, 10, "nba"), 1), (4, drop(4, 10, "nba"), 4), (6, drop(6, 10, "nba"), 6)], 0)
    items = hub.take(live)
    got = [(type(i).__name__, i.seq) for i in items]
    assert got == [("Entry", 1), ("ResetNotice", 3), ("Entry", 4), ("ResetNotice", 5), ("Entry", 6)]
    assert [(type(i).__name__, i.seq) for i in hub.take(ahead)] == [("Entry", 6)]  # holes up to 5: it has them
    assert hub.counters.holes == 2 and hub.counters.hole_alerts == 3 and live.delivered == 3
    # a duplicate (the log re-delivering 6) is dropped, never sent twice
    hub.publish_logged([(6, drop(6, 10, "nba"), 6)], 0)
    assert hub.take(live) == [] and hub.counters.duplicates == 1
    # resuming before the holes: the same resets, at the same places
    again, reason = hub.subscribe(flt, Cursor(EPOCH, 1))
    assert reason is None
    assert [(type(i).__name__, i.seq) for i in hub.take(again)] == [("ResetNotice", 3), ("Entry", 4),
                                                                     ("ResetNotice", 5), ("Entry", 6)]
    inside, _ = hub.subscribe(flt, Cursor(EPOCH, 2))  # it had 2 (from a frontend that saw it), not 3
    assert [i.seq for i in hub.take(inside)] == [3, 4, 5, 6]
    notice = items[1]
    assert isinstance(notice, ResetNotice) and b'"type":"reset"' in notice.frame and b"ep-2..ep-3" in notice.frame
    assert notice.frame.startswith(b"id: ep-3\n")


def test_log_resets_name_why() -> None:
    hub = Hub(EPOCH, next_seq=10, logged=True, evicted_ms=0)
    flt = AlertFilter.build(threshold=1)
    assert "trimmed" in (hub.subscribe(flt, Cursor(EPOCH, 3), log_first=6, log_last=20)[1] or "")
    assert "ahead of the alert log" in (hub.subscribe(flt, Cursor(EPOCH, 21), log_first=6, log_last=20)[1] or "")
    assert "another epoch" in (hub.subscribe(flt, Cursor("other", 12), log_first=6, log_last=20)[1] or "")
    sub, reason = hub.subscribe(flt, Cursor(EPOCH, 15), log_first=6, log_last=20)
    assert reason is None and sub.floor == 15
    hub.rebase("newer", 3, now_ms=7)
    [notice] = hub.take(sub)
    assert isinstance(notice, ResetNotice) and b"recreated" in notice.frame and b"id: newer-2" in notice.frame
    assert sub.floor == 0 and hub.position(sub) == Cursor("newer", 2)


def test_the_two_numberings_do_not_mix() -> None:
    with pytest.raises(ConfigError, match="publish_logged"):
        Hub(EPOCH, logged=True).publish([drop(1, 10, "nba")], 0)
    with pytest.raises(ConfigError, match="publish"):
        Hub(EPOCH).publish_logged([(1, drop(1, 10, "nba"), 0)], 0)
    with pytest.raises(ConfigError, match="reserve"):
        Hub(EPOCH, logged=True, reserve=lambda n: True)
    with pytest.raises(ConfigError, match="backfill"):
        Hub(EPOCH).backfill(0, 1, [], AlertFilter.build(threshold=1), 0)
