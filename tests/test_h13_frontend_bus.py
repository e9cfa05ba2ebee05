"""``dropengine serve --bus``: stateless frontends of the alert log, for real.

A real nats-server (one per module; one of its own for the test that stops it), real uvicorn
on 127.0.0.1 (in-process :class:`BusServer`s, and real ``dropengine serve --bus`` processes
for the kill -9 test), real SSE clients (httpx-sse) resuming with ``Last-Event-ID``. Alerts
are published into the log directly (:meth:`AlertLog.publish`), so every id is known.

Invariants: two frontends give an alert the same id; a client moved between frontends with
its last id gets exactly the rest; a cursor in the log but older than the ring gets exactly
the missing alerts (read from the log); a cursor trimmed from the log, from another epoch or
ahead of the log gets a ``reset``; a message deleted from the log is a ``reset`` at its place;
20 subscribers of a frontend killed with SIGKILL move to the other one and end at the log's
last id with no gap and no duplicate. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from click.testing import CliRunner
from httpx_sse import connect_sse

from dropengine.bus import AlertLog, BusConfig, connect, ensure_streams
from dropengine.core.alerts import Drop
from dropengine.server.asgi import BackgroundServer
from dropengine.server.busfeed import BusServer
from dropengine.server.ingest import ServeConfig

from . import natsutil
from .natsutil import NatsServer

nats_server = natsutil.nats_server
nats_server_module = natsutil.nats_server_module

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]

T = TypeVar("T")
KEY = "frontend-test-key"
_prefixes = itertools.count()
PATH = "/v1/odds-drop/all"


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def drop(i: int) -> Drop:
    return Drop(sport_key="americanfootball_nfl", event_id=f"e{i}", bookmaker="pinnacle", side="h2h_home",
                kind="game", market_key="h2h", prev=-110, new=-130, delta=-20, direction="toward_favorite",
                last_update=1000 + i, timestamp=1000 + i, elapsed_ms=0)


def new_log(server: NatsServer) -> BusConfig:
    """A fresh deployment (its own prefix) on ``server``, streams created."""
    cfg = BusConfig((server.url,), prefix=f"fe{next(_prefixes)}")

    async def create() -> None:
        async with await connect(cfg, name="test-setup") as bus:
            await ensure_streams(bus)

    run(create())
    return cfg


def publish(cfg: BusConfig, start: int, n: int, partitions: int = 2) -> list[int]:
    """Alerts ``start..start+n-1`` into the log (partition i % P); their seqs."""

    async def go() -> list[int]:
        async with await connect(cfg, name="test-publisher") as bus:
            log = AlertLog(bus, partitions=partitions)
            return [await log.publish(i % partitions, drop(i), qseq=i + 1, k=0, produced_ms=int(time.time() * 1000),
                                      expect_last=None) for i in range(start, start + n)]

    return run(go())


def js(cfg: BusConfig, what: Callable[[Any], Awaitable[object]]) -> None:
    """Run ``what(js)`` against the log's JetStream (delete a message, purge, ...)."""

    async def go() -> None:
        async with await connect(cfg, name="test-admin") as bus:
            await what(bus.js)

    run(go())


@contextlib.contextmanager
def frontend(cfg: BusConfig, **kw: Any) -> Iterator[tuple[str, BusServer]]:
    """An in-process ``serve --bus`` on uvicorn (127.0.0.1, a free port)."""
    srv = BusServer(cfg, ServeConfig(**kw), info_every_s=0.2)
    with BackgroundServer(srv.app) as url:
        yield url, srv


def wait(cond: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    natsutil.wait_until(cond, timeout, what)


def events(url: str, n: int, last_id: str | None = None, **params: Any) -> list[tuple[str, dict[str, Any]]]:
    """The first ``n`` events after ``connected`` as (SSE id, data), resuming from ``last_id``."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    out: list[tuple[str, dict[str, Any]]] = []
    with httpx.Client(timeout=httpx.Timeout(5, read=5)) as c, \
            connect_sse(c, "GET", url + PATH, params={"apiKey": KEY, "threshold": 1, "heartbeat_s": 1, **params},
                        headers=headers) as es:
        assert es.response.status_code == 200, es.response.read()
        for ev in es.iter_sse():
            data = json.loads(ev.data)
            if data["type"] == "connected":
                continue
            if data["type"] == "heartbeat":
                continue
            out.append((ev.id, data))
            if len(out) >= n:
                break
    return out


def seqs(got: list[tuple[str, dict[str, Any]]]) -> list[int]:
    return [int(i.rsplit("-", 1)[1]) for i, _ in got]


def test_two_frontends_give_the_same_ids_and_a_moved_client_gets_exactly_the_rest(
        nats_server_module: NatsServer) -> None:
    cfg = new_log(nats_server_module)
    publish(cfg, 0, 20)
    with frontend(cfg) as (a, sa), frontend(cfg) as (b, sb):
        wait(lambda: sa.hub.next_seq == sb.hub.next_seq == 21, "both frontends following the log")
        assert sa.hub.epoch == sb.hub.epoch
        page, health = httpx.get(a + "/", timeout=5), httpx.get(b + "/healthz", timeout=5)
        assert page.status_code == 200 and "EventSource" in page.text  # the live page, as today
        assert health.status_code == 200 and health.json()["high_water"] == f"{sa.hub.epoch}-20"
        assert httpx.get(a + PATH, timeout=5).status_code == 401  # keys as today
        first = events(a, 8, last_id=f"{sa.hub.epoch}-0")
        assert seqs(first) == list(range(1, 9))
        rest = events(b, 12, last_id=first[-1][0])  # moved to B with its last id from A
        assert seqs(rest) == list(range(9, 21))
        assert [d for _, d in first + rest] == [drop(i).to_dict() for i in range(20)]
        both = [events(u, 20, last_id=f"{sa.hub.epoch}-0") for u in (a, b)]
        assert both[0] == both[1]  # the same ids, the same alerts, from either frontend
        # live: a client on each frontend sees the newly published alerts with the same ids
        got: list[list[tuple[str, dict[str, Any]]]] = [[], []]
        readers = [threading.Thread(target=lambda k=k, u=u: got[k].extend(events(u, 5, last_id=f"{sa.hub.epoch}-20")))
                   for k, u in enumerate((a, b))]
        for t in readers:
            t.start()
        wait(lambda: len(sa.hub.subscribers) == len(sb.hub.subscribers) == 1, "both clients subscribed")
        assert publish(cfg, 20, 5) == list(range(21, 26))
        for t in readers:
            t.join(10)
        assert got[0] == got[1] and seqs(got[0]) == list(range(21, 26))


def test_retention_trimmed_cursors_reset_and_cursors_older_than_the_ring_are_read_from_the_log(
        nats_server_module: NatsServer) -> None:
    cfg = new_log(nats_server_module)
    publish(cfg, 0, 40)
    with frontend(cfg, buffer_size=5) as (url, srv):
        wait(lambda: srv.hub.next_seq == 41, "the frontend following the log")
        epoch = srv.hub.epoch
        assert [e.seq for e in srv.hub.buffer] == [36, 37, 38, 39, 40]  # a tiny ring: the log's tail
        # in the log, not in the ring: exactly the missing alerts (read from the log), no reset
        got = events(url, 30, last_id=f"{epoch}-10")
        assert seqs(got) == list(range(11, 41)) and all(d["type"] == "odds_drop" for _, d in got)
        assert srv.feed is not None and srv.feed.counters.backfills == 1
        # a filter applies to the backfill as to the live stream
        only = events(url, 1, last_id=f"{epoch}-10", event_id="e25")
        assert seqs(only) == [26]
        # trimmed from the log (purged up to 20): a reset, then what comes next, never a silent gap
        js(cfg, lambda j: j.purge_stream(cfg.alert_stream, seq=21))
        wait(lambda: srv.feed is not None and srv.feed.info.first_seq == 21, "the frontend seeing the trim")
        wait(lambda: not srv.hub.subscribers, "the earlier clients gone")  # (so the next count is the new one)
        reader: list[tuple[str, dict[str, Any]]] = []
        t = threading.Thread(target=lambda: reader.extend(events(url, 2, last_id=f"{epoch}-10")))
        t.start()
        wait(lambda: len(srv.hub.subscribers) == 1, "the trimmed client subscribed")
        publish(cfg, 40, 1)
        t.join(10)
        (rid, reset), (aid, alert) = reader
        assert reset["type"] == "reset" and "trimmed" in reset["reason"] and rid == f"{epoch}-40"
        assert aid == f"{epoch}-41" and alert == drop(40).to_dict()
        # just at the trim (the first kept seq is 21): no reset, exactly the rest
        assert seqs(events(url, 21, last_id=f"{epoch}-20")) == list(range(21, 42))
        # another epoch, ahead of the log: resets that say so
        for cursor, why in ((f"zz{epoch}-3", "another epoch"), (f"{epoch}-99", "ahead of the alert log")):
            (rid, reset), = events(url, 1, last_id=cursor)
            assert reset["type"] == "reset" and why in reset["reason"] and rid == f"{epoch}-41"
        metrics = httpx.get(url + "/metrics", timeout=5).text
        assert "dropengine_backfills_total 3" in metrics and "dropengine_log_lag 0" in metrics


def test_a_message_deleted_from_the_log_is_a_reset_at_its_place(nats_server_module: NatsServer) -> None:
    cfg = new_log(nats_server_module)
    publish(cfg, 0, 12)
    js(cfg, lambda j: j.delete_msg(cfg.alert_stream, 7))
    with frontend(cfg) as (a, sa), frontend(cfg, buffer_size=2) as (b, sb):
        wait(lambda: sa.hub.next_seq == sb.hub.next_seq == 13, "the frontends following the log")
        epoch = sa.hub.epoch
        assert sa.hub.counters.holes == 1 and sa.hub.holes == [(6, 7)]  # seen while following
        for url in (a, b):  # from the ring (a) and from the log (b: its ring holds 11 and 12)
            got = events(url, 7, last_id=f"{epoch}-4")
            assert [(i, d["type"]) for i, d in got] == [
                (f"{epoch}-5", "odds_drop"), (f"{epoch}-6", "odds_drop"), (f"{epoch}-7", "reset"),
                (f"{epoch}-8", "odds_drop"), (f"{epoch}-9", "odds_drop"), (f"{epoch}-10", "odds_drop"),
                (f"{epoch}-11", "odds_drop")]
            assert "missing from the alert log" in got[2][1]["reason"] and f"{epoch}-7" in got[2][1]["reason"]
        # a client that has 7 (from a frontend that saw it before it was deleted) gets no reset
        assert seqs(events(a, 5, last_id=f"{epoch}-7")) == [8, 9, 10, 11, 12]
        assert "dropengine_log_holes_total 1" in httpx.get(a + "/metrics", timeout=5).text


def test_healthz_is_degraded_while_the_bus_is_unreachable(nats_server: NatsServer) -> None:
    cfg = new_log(nats_server)
    publish(cfg, 0, 3)
    with frontend(cfg) as (url, srv):
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        got = events(url, 3, last_id=f"{srv.hub.epoch}-0")
        nats_server.kill()
        wait(lambda: httpx.get(url + "/healthz", timeout=5).status_code == 503, "/healthz 503")
        body = httpx.get(url + "/healthz", timeout=5).json()
        assert body["status"] == "degraded" and "unreachable" in body["reason"] and not body["bus"]["connected"]
        assert events(url, 3, last_id=f"{srv.hub.epoch}-0") == got  # the ring is still served
        nats_server.restart()
        wait(lambda: httpx.get(url + "/healthz", timeout=5).status_code == 200, "/healthz 200 again", 15)
        publish(cfg, 3, 2)
        assert seqs(events(url, 2, last_id=f"{srv.hub.epoch}-3")) == [4, 5]


def test_the_flags(nats_server_module: NatsServer, tmp_path: Path) -> None:
    from dropengine.cli.group import main as cli

    runner = CliRunner()
    both = runner.invoke(cli, ["serve", "--source", "replay:x", "--bus", nats_server_module.url])
    assert both.exit_code == 2 and "exactly one of --source" in both.output
    neither = runner.invoke(cli, ["serve"])
    assert neither.exit_code == 2 and "exactly one of --source" in neither.output
    state = runner.invoke(cli, ["serve", "--bus", nats_server_module.url, "--state", str(tmp_path / "s")])
    assert state.exit_code == 2 and "--state and --bus" in state.output
    steam = runner.invoke(cli, ["serve", "--bus", nats_server_module.url, "--steam-books", "3", "--speed", "2"])
    assert steam.exit_code == 2 and "--speed" in steam.output and "--steam-books" in steam.output
    bad = runner.invoke(cli, ["serve", "--bus", "http://x"])
    assert bad.exit_code == 2 and "--bus" in bad.output
    # no alert log there yet (no detector created it): exit 2 naming it, at once
    missing = runner.invoke(cli, ["serve", "--bus", nats_server_module.url, "--bus-prefix", "nothing", "--port", "0"])
    assert missing.exit_code == 2 and "NOTHING_ALERTS" in missing.output, missing.output


class Frontend:
    """A real ``dropengine serve --bus`` process."""

    def __init__(self, cfg: BusConfig, keys: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dropengine", "serve", "--bus", ",".join(cfg.servers), "--bus-prefix", cfg.prefix,
             "--port", "0", "--keys", str(keys), "--log-level", "warning"],
            stderr=subprocess.PIPE, text=True)
        self.url = ""

    def ready(self) -> str:
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # (bounded by the test's timeout)
        assert " at http://" in line, line
        self.url = line.split(" at ")[1].split()[0]
        return self.url

    @classmethod
    def both(cls, cfg: BusConfig, keys: Path) -> list[Frontend]:
        """Two frontends, started together."""
        procs = [cls(cfg, keys), cls(cfg, keys)]
        try:
            for p in procs:
                p.ready()
        except BaseException:
            for p in procs:
                p.stop()
            raise
        return procs

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Subscriber(threading.Thread):
    """Reads ``/all`` from the first URL, moving to the next one (with its last id) whenever a
    connection ends, until it has the id ``until``."""

    def __init__(self, urls: list[str], last: str, until: Callable[[], str | None], deadline: float) -> None:
        super().__init__(daemon=True)
        self.urls, self.last, self.until, self.deadline = urls, last, until, deadline
        self.got: list[tuple[str, str]] = []  # (type, id) of alerts and resets
        self.connects: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        last = self.last
        k = 0
        try:
            while time.monotonic() < self.deadline:
                url = self.urls[min(k, len(self.urls) - 1)]
                self.connects.append(url)
                try:
                    with httpx.Client(timeout=httpx.Timeout(3, read=3)) as c, connect_sse(
                            c, "GET", url + PATH, params={"apiKey": KEY, "threshold": 1, "heartbeat_s": 1},
                            headers={"Last-Event-ID": last}) as es:
                        for ev in es.iter_sse():
                            kind = json.loads(ev.data)["type"]
                            if kind in ("odds_drop", "reset"):
                                self.got.append((kind, ev.id))
                            if ev.id:
                                last = ev.id
                            if last == self.until():
                                return
                except httpx.HTTPError:
                    k += 1  # this frontend is gone: the next one, with the last id
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.timeout(60)
def test_kill_9_of_a_frontend_process_moves_20_subscribers_with_no_gap_and_no_duplicate(
        nats_server_module: NatsServer, tmp_path: Path) -> None:
    cfg = new_log(nats_server_module)
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY} business 100\n")
    publish(cfg, 0, 1)
    procs = Frontend.both(cfg, keys)
    try:
        a, b = procs[0].url, procs[1].url
        with httpx.Client(timeout=5) as c:
            epoch = c.get(a + "/healthz").json()["epoch"]
        final: list[str | None] = [None]
        # every subscriber starts from the beginning of the log, on A
        subs = [Subscriber([a, b], f"{epoch}-0", lambda: final[0], time.monotonic() + 40) for _ in range(20)]
        for s in subs:
            s.start()
        killed = threading.Event()
        published: list[int] = []

        async def produce() -> None:  # 30 alerts, A killed, 30 more
            async with await connect(cfg, name="test-publisher") as bus:
                log = AlertLog(bus, partitions=2)
                for i in range(1, 61):
                    if i == 31:
                        await asyncio.to_thread(killed.wait, 20)
                    published.append(await log.publish(i % 2, drop(i), qseq=i + 1, k=0, produced_ms=i,
                                                       expect_last=None))
                    if i % 8 == 0:
                        await asyncio.sleep(0.01)

        producer = threading.Thread(target=lambda: run(produce(), 40), daemon=True)
        producer.start()
        wait(lambda: all(len(s.got) >= 10 for s in subs), "every subscriber reading from A", 20)
        procs[0].proc.send_signal(signal.SIGKILL)  # kill -9 of frontend A mid-stream
        procs[0].proc.wait(10)
        killed.set()
        producer.join(30)
        last = published[-1]
        assert published == list(range(2, last + 1)) and last == 61
        final[0] = f"{epoch}-{last}"
        for s in subs:
            s.join(max(0.1, s.deadline - time.monotonic()))
        for s in subs:
            assert s.error is None, s.error
            assert not s.is_alive(), f"a subscriber did not reach {final[0]}: {len(s.got)} alerts"
            assert s.got == [("odds_drop", f"{epoch}-{n}") for n in range(1, last + 1)]  # no gap, no duplicate
            assert s.connects[0] == a and b in s.connects  # it moved to B
    finally:
        for p in procs:
            p.stop()


def test_a_recreated_log_is_a_reset_then_the_new_epoch(nats_server_module: NatsServer) -> None:
    cfg = new_log(nats_server_module)
    publish(cfg, 0, 3)
    with frontend(cfg) as (url, srv):
        wait(lambda: srv.hub.next_seq == 4, "the frontend following the log")
        old = srv.hub.epoch
        got: list[tuple[str, dict[str, Any]]] = []
        t = threading.Thread(target=lambda: got.extend(events(url, 6, last_id=f"{old}-0")))
        t.start()
        wait(lambda: len(srv.hub.subscribers) == 1, "the client reading")

        js(cfg, lambda j: j.delete_stream(cfg.alert_stream))
        run(_ensure(cfg))  # the same deployment, a new log: another creation time, another epoch
        wait(lambda: srv.hub.epoch != old, "the frontend seeing the new log")
        publish(cfg, 10, 2)
        t.join(10)
        new = srv.hub.epoch
        assert [i for i, _ in got[:3]] == [f"{old}-1", f"{old}-2", f"{old}-3"]
        (rid, reset), *after = got[3:]
        assert reset["type"] == "reset" and "recreated" in reset["reason"] and rid == f"{new}-0"
        assert [(i, d) for i, d in after] == [(f"{new}-1", drop(10).to_dict()), (f"{new}-2", drop(11).to_dict())]
        # an old cursor on the new log: another epoch
        (rid, reset), = events(url, 1, last_id=f"{old}-3")
        assert "another epoch" in reset["reason"] and rid == f"{new}-2"


async def _ensure(cfg: BusConfig) -> None:
    async with await connect(cfg, name="test-setup") as bus:
        await ensure_streams(bus)
