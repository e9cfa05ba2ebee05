"""The whole scale-out deployment under faults, in ONE run (issue 13, "Tests").

Real processes on loopback: a 3-node JetStream cluster (streams and buckets with 3 replicas),
``dropengine ingest`` replaying a slice of the real NFL recording (2 partitions, paced so the
run lasts seconds), two ``dropengine detect`` processes (0/2 and 1/2), two ``dropengine serve
--bus`` frontends, and :data:`SUBSCRIBERS` SSE subscribers in this process that move between
the frontends at random points, resuming with ``Last-Event-ID``. During the run:

1. kill -9 of frontend A (its subscribers move to B), then A is started again on its port;
2. kill -9 of detector 0 once it has published alerts after its last checkpoint (it is
   frozen with SIGSTOP while we look, so it cannot move on between the look and the kill),
   then it is started again: it restores the checkpoint and skips what the killed one published;
3. kill -9 of the node that leads the alert stream, started again a moment later.

The faults come one after the other, and three known product bugs are kept out of this run's
way (each has its own strict xfail, so this run tests what the issue asks, every time): the
quote stream's leader is moved off the alert leader's node (ingest does not ride out an
election of its stream: test_h13_e2e_ingest.py); the restarted detector and frontend are up,
and both frontends have caught up with the log, before the leader is killed (a process that
starts during an election exits: test_h13_e2e_start.py; a lagging frontend that cannot read the
log resets a resuming client back: test_h13_e2e_resume.py); the detectors' buckets are created
before the detectors start (two detectors creating an R3 bucket together: test_h13_e2e_start.py).

After the ingest ended and both detectors have checkpointed their partition's last quote
message (so every alert is in the log) and the log's last sequence is stable:

- every subscriber saw the ids ``1..last`` of the log exactly once, in order (0 gaps,
  0 duplicates), each with the log's alert, and no ``reset`` (nothing was trimmed);
- the log is dense (``1..last``), each source position once, and its alerts equal, as a
  multiset of wire objects, what ONE DropEngine with the same options detects over the same
  quote messages (read back from the quote stream, which holds the recording's quotes in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from dropengine.core.alerts import SIGNALS, Alert
from dropengine.core.engine import DropEngine
from dropengine.core.errors import BusError
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.core.quote import Quote
from dropengine.io.replay import read_quotes

from . import natsutil
from .conftest import require_data
from .natsutil import NatsCluster, NatsServer, free_port

pytestmark = [pytest.mark.bus]
pytest.importorskip("nats")
pytest.importorskip("httpx_sse")

from httpx_sse import SSEError, aconnect_sse  # noqa: E402

from dropengine.bus import checkpoint as ckpt  # noqa: E402
from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import Bus, connect, ensure_streams  # noqa: E402
from dropengine.bus.lease import Lease  # noqa: E402
from dropengine.bus.log import AlertLog, LogEntry, QuoteLog  # noqa: E402

nats_cluster3 = natsutil.nats_cluster3

NFL = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
#: The snapshots of the recording replayed: 6 (8,766 quotes; the replay feeds them as ~1,500 batches, one
#: per run of equal ``last_update``, each published and acknowledged on its own) from the 17th on, where
#: every alert type fires (~75 alerts, both partitions).
FIRST, SNAPSHOTS = 16, 6
#: The replay's pace: each pause between recorded moments capped at this many seconds.
MAX_GAP = "0.6"
SUBSCRIBERS = 40
P = 2
TYPES = ",".join(SIGNALS)
PREFIX = "e2e"
KEY = "e2e-test-key"
PATH = "/v1/odds-drop/all"
#: Every subscriber asks for every alert the detectors publish (the lowest thresholds).
PARAMS = {"apiKey": KEY, "types": TYPES, "threshold": "1", "line_threshold": "0.25", "heartbeat_s": "1"}
ALERT_TYPES = frozenset(SIGNALS)
SEED = 13
T = TypeVar("T")


# -- processes ---------------------------------------------------------------------------
class Proc:
    """A ``python -m dropengine ...`` process, its output appended to ``{name}.log``."""

    def __init__(self, name: str, args: list[str], logs: Path) -> None:
        self.name, self.args = name, args
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Proc:
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.proc = subprocess.Popen([sys.executable, "-m", "dropengine", *self.args], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9 (and reap it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """The test's processes: every one killed at the end, whatever happened."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in started:
            p.signal(signal.SIGCONT)  # a frozen one too
            p.kill()


async def poll(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.05) -> None:
    """Until ``predicate()`` is true; a bus that does not answer (a node killed, a leader
    being elected, a loaded machine) is only "not yet"."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            if await predicate():
                return
        except (TimeoutError, BusError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last bus error: {last!r})")
        await asyncio.sleep(interval)


async def patiently(call: Callable[[], Awaitable[T]], what: str, timeout: float = 20.0) -> T:
    """``await call()``, again while the bus does not answer (this test's own looks at the bus:
    a node is killed, streams and buckets are new, the machine is loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except (BusError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"the bus did not answer for {timeout:g} s: {what}: {exc}") from exc
            await asyncio.sleep(0.1)


# -- subscribers -------------------------------------------------------------------------
@dataclass
class Subscriber:
    """One SSE client: its frames (alerts and resets: type, SSE id, data) in arrival order."""

    n: int
    rng: random.Random
    frames: list[tuple[str, str, str]] = field(default_factory=list)
    #: The frontend (0: A, 1: B) of each connection, in order.
    connects: list[int] = field(default_factory=list)
    #: The frontend it is connected to now (None between connections).
    on: int | None = None
    #: Connections that ended by an error (a killed frontend, a refused connection), and their kinds.
    failures: Counter[str] = field(default_factory=Counter)
    #: Voluntary moves (closed after a random number of alerts, resumed on the other frontend).
    moves: int = 0
    last_id: str = ""


@dataclass
class Run:
    urls: list[str]
    epoch: str
    #: The log's last sequence once everything was drained (the subscribers stop there).
    final: int | None = None


def _seq(sse_id: str) -> int:
    return int(sse_id.rsplit("-", 1)[1])


async def subscribe(sub: Subscriber, run: Run) -> None:
    """Read ``/all`` from a random frontend; after a random number of alerts, or when the
    connection fails, resume on the other frontend with the last id seen (as EventSource
    does: every frame's id counts). Ends once it is at ``run.final``."""
    last = f"{run.epoch}-0"
    at = sub.rng.randrange(2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=4)) as client:
        while True:
            sub.connects.append(at)
            budget = sub.rng.randint(3, 40)
            try:
                async with aconnect_sse(client, "GET", run.urls[at] + PATH, params=PARAMS,
                                        headers={"Last-Event-ID": last}) as es:
                    if es.response.status_code != 200:
                        sub.failures[f"status {es.response.status_code}"] += 1
                    else:
                        sub.on = at
                        async for ev in es.aiter_sse():
                            if ev.id:
                                last = sub.last_id = ev.id
                            kind = json.loads(ev.data)["type"]
                            if kind in ALERT_TYPES or kind == "reset":
                                sub.frames.append((kind, ev.id, ev.data))
                                budget -= 1
                            if run.final is not None and _seq(last) >= run.final:
                                return
                            if budget <= 0:
                                sub.moves += 1
                                break
            except (httpx.HTTPError, SSEError) as exc:
                sub.failures[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
            finally:
                sub.on = None
            if run.final is not None and _seq(last) >= run.final:
                return
            at = 1 - at


async def lead_elsewhere(bus: Bus, cluster: NatsCluster, stream: str, avoid: NatsServer) -> NatsServer:
    """Make ``stream``'s leader another node than ``avoid`` (a leader stepdown with a
    preferred node; a no-op when it is already elsewhere); its leader."""
    for _ in range(5):
        leader = await cluster.leader_of(stream)
        if leader is not avoid:
            return leader
        preferred = next(s.name for s in cluster.nodes if s is not avoid and s.running)
        with bus.translate(f"stepdown of {stream}"):
            await bus.nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                                 json.dumps({"placement": {"preferred": preferred}}).encode(), timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (await cluster.leader_of(stream)) is avoid:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{stream}: its leader stays on {avoid.name}")


# -- the expected alerts -----------------------------------------------------------------
async def quote_messages(bus: Bus) -> dict[int, list[tuple[int, int, list[Quote]]]]:
    """Each partition's quote messages as ``(seq, now_ms, quotes)``, in order."""
    qlog = QuoteLog(bus)
    out: dict[int, list[tuple[int, int, list[Quote]]]] = {}
    for i in range(P):
        last = await qlog.last_seq(i)
        got: list[tuple[int, int, list[Quote]]] = []
        if last:
            reader = qlog.read(i, 1)
            async for seq, batch in reader:
                assert not isinstance(batch, Exception), f"quote message {seq}: {batch}"
                got.append((seq, batch.now_ms, list(batch.quotes)))
                if seq >= last:
                    break
            await reader.aclose()
        out[i] = got
    return out


def one_engine(messages: dict[int, list[tuple[int, int, list[Quote]]]], options: DetectOptions) -> list[Alert]:
    """What ONE DropEngine with ``options`` detects over every quote message, in stream order."""
    engine = DropEngine.from_options(options)
    alerts: list[Alert] = []
    for _, now_ms, quotes in sorted((m for ms in messages.values() for m in ms), key=lambda m: m[0]):
        alerts.extend(engine.observe_many(quotes, now_ms=now_ms))
    return alerts


def recording_slice(tmp: Path) -> Path:
    """:data:`SNAPSHOTS` snapshots of the NFL recording from :data:`FIRST` on, as a recording of its own."""
    src = require_data("theoddsapi_nfl", NFL)
    path = tmp / "nfl_slice.ndjson"
    with gzip.open(src, "rt", encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for n, line in enumerate(f):
            if n >= FIRST + SNAPSHOTS:
                break
            if n >= FIRST:
                out.write(line)
    return path


def wire(alert: Alert) -> bytes:
    return msgspec.json.encode(alert)


# -- the run -----------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_subscribers_moving_between_frontends_through_kill_9_of_a_frontend_a_detector_and_the_log_leader(
        nats_cluster3: NatsCluster, procs: list[Proc], tmp_path: Path) -> None:
    cluster = nats_cluster3
    marks: dict[str, float] = {}
    t0 = time.monotonic()

    def mark(what: str) -> None:
        marks[what] = round(time.monotonic() - t0, 2)

    def diagnosis() -> str:
        return "; ".join(f"{k} at {v} s" for k, v in marks.items())

    slice_path = recording_slice(tmp_path)
    options = DetectOptions.build(types=TYPES)
    # this process's own look at the bus: patient (the machine is loaded, a node gets killed)
    config = BusConfig(cluster.urls, prefix=PREFIX, replicas=3, request_timeout_s=5.0)
    bus_args = ["--bus", ",".join(cluster.urls), "--bus-prefix", PREFIX]
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY} business 1000\n")
    ports = [free_port(), free_port()]
    fronts = [Proc(f"frontend-{name}", ["serve", *bus_args, "--port", str(port), "--keys", str(keys),
                                        "--log-level", "warning"], tmp_path)
              for name, port in zip("AB", ports, strict=True)]
    detectors = [Proc(f"detect-{i}", ["detect", *bus_args, "--replicas", "3", "--partition", f"{i}/{P}",
                                      "--types", TYPES, "--checkpoint-every", "0.5", "--lease-ttl", "1",
                                      "--status-every", "0", "--log-level", "info"], tmp_path) for i in range(P)]
    ingest = Proc("ingest", ["ingest", *bus_args, "--replicas", "3", "--source", f"replay:{slice_path}",
                             "--partitions", str(P), "--speed", "1", "--max-gap", MAX_GAP, "--status-every", "0"],
                  tmp_path)
    procs.extend([*fronts, *detectors, ingest])
    mark("set up")

    async def scenario() -> tuple[Run, list[Subscriber], list[LogEntry], dict[int, list[tuple[int, int, list[Quote]]]],
                                  dict[str, Any]]:
        facts: dict[str, Any] = {}
        async with await connect(config, name="e2e-test") as bus:
            mark("connected")
            # R3, as ingest creates them: the frontends need the log to exist
            await patiently(lambda: ensure_streams(bus), "streams")
            # and the detectors' buckets, through the detectors' own code: two detectors that
            # create an R3 bucket together can find it without a leader yet (a known start-up
            # failure, test_h13_e2e_start.py); this run is about the faults below
            assert await patiently(lambda: ckpt.load(bus, 0, P), "checkpoint bucket") is None
            lease = Lease(bus, "e2e-setup", "e2e-test", 1.0)
            await patiently(lease.acquire, "lease bucket")
            await lease.release()
            for stream in (config.alert_stream, config.quote_stream, f"OBJ_{config.checkpoint_bucket}",
                           f"KV_{config.lease_bucket}"):
                await cluster.leader_of(stream)
            # the alert log's leader node (killed below) must not lead the quote stream too:
            # ingest does not ride out an election of its stream (a known bug,
            # test_h13_e2e_ingest.py); this run kills the alert log's leader, as the issue asks
            alert_leader = await cluster.leader_of(config.alert_stream)
            await patiently(lambda: lead_elsewhere(bus, cluster, config.quote_stream, alert_leader), "stepdown")
            mark("streams and buckets")
            log = AlertLog(bus)
            epoch = await patiently(log.epoch, "epoch")

            async def last_seq() -> int:
                return (await patiently(log.info, "the log's end")).last_seq

            for p in (*detectors, *fronts, ingest):
                p.start()
            mark("started")
            urls = [f"http://127.0.0.1:{port}" for port in ports]

            async def ready(url: str) -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    async with httpx.AsyncClient(timeout=1) as c:
                        return (await c.get(url + "/healthz")).status_code == 200
                return False

            for k, url in enumerate(urls):
                await poll(lambda url=url: ready(url), 20, f"frontend {'AB'[k]} at {url}")  # type: ignore[misc]
            mark("frontends ready")
            run = Run(urls, epoch)
            subs = [Subscriber(n, random.Random(SEED * 1000 + n)) for n in range(SUBSCRIBERS)]
            tasks = [asyncio.ensure_future(subscribe(s, run)) for s in subs]

            async def alerts_flowing() -> bool:
                assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
                return (await log.info()).last_seq >= 3 and all(s.frames for s in subs)

            await poll(alerts_flowing, 30, "alerts reaching every subscriber")
            mark("alerts flowing")

            # 1. kill -9 of frontend A
            facts["log at A's kill"] = await last_seq()
            facts["on A at its kill"] = sum(1 for s in subs if s.on == 0)
            facts["where at A's kill"] = Counter(s.on for s in subs)
            fronts[0].kill()
            mark("frontend A killed")

            # 2. kill -9 of detector 0 after it published alerts its checkpoint does not cover
            d0 = detectors[0]

            async def past_checkpoint() -> bool:
                assert d0.alive(), d0.text()
                d0.signal(signal.SIGSTOP)
                _, source = await log.last_for(0)
                with contextlib.suppress(Exception):
                    cp = await asyncio.wait_for(ckpt.load(bus, 0, P), 2)
                    if cp is not None and source is not None and source[0] > cp.quote_seq:
                        facts["detector 0 killed at"] = (cp.quote_seq, source)
                        return True
                d0.signal(signal.SIGCONT)
                return False

            await poll(past_checkpoint, 20, "detector 0 publishing past its checkpoint", interval=0.1)
            d0.kill()
            mark("detector 0 killed")
            facts["log at detector 0's kill"] = await last_seq()
            d0.start()
            fronts[0].start()  # A again, on its port
            mark("detector 0 and frontend A restarted")

            async def restored() -> bool:
                assert d0.alive(), d0.text()
                return "engine checkpoint at quote message" in d0.text().split("--- start 2", 1)[1]

            await poll(restored, 30, "detector 0 restored from its checkpoint")
            mark("detector 0 restored")
            # (a process that starts while the log's leader is being elected exits: a known
            # start-up failure, test_h13_e2e_start.py; so the leader is killed once both are up)
            await poll(lambda: ready(urls[0]), 30, "frontend A started again")
            mark("frontend A ready again")

            # (a frontend behind the log while the log cannot be read resets a client resuming
            # ahead of it BACK to its own position: a known bug, test_h13_e2e_resume.py; so the
            # leader is killed once both frontends have caught up with the log)
            async def caught_up() -> bool:
                last = (await log.info()).last_seq
                async with httpx.AsyncClient(timeout=2) as c:
                    for url in urls:
                        if _seq((await c.get(url + "/healthz")).json()["high_water"]) < last:
                            return False
                return True

            await poll(caught_up, 20, "both frontends following the log's end")
            mark("frontends caught up")

            # 3. kill -9 of the alert stream's leader node, started again a moment later
            leader: NatsServer = await cluster.leader_of(config.alert_stream)
            facts["leaders"] = {config.alert_stream: leader.name,
                                config.quote_stream: (await patiently(lambda: lead_elsewhere(
                                    bus, cluster, config.quote_stream, leader), "stepdown")).name}
            facts["log at the leader's kill"] = await last_seq()
            leader.kill()
            mark(f"log leader {leader.name} killed")
            facts["in ingest at the leader kill"] = ingest.alive()
            await asyncio.sleep(1.0)
            leader.restart(wait=False)
            mark(f"{leader.name} restarted")

            # drained: the ingest ended, each detector checkpointed its partition's last quote
            # message (so all its alerts are in the log), and the log's end stays put
            async def ingest_ended() -> bool:
                return not ingest.alive()

            await poll(ingest_ended, 60, "the ingest to end")
            mark("ingest ended")
            assert ingest.proc is not None and ingest.proc.returncode == 0, ingest.text()
            qlog = QuoteLog(bus)

            async def drained() -> bool:
                for i, d in enumerate(detectors):
                    assert d.alive(), d.text()
                    with contextlib.suppress(Exception):
                        cp = await asyncio.wait_for(ckpt.load(bus, i, P), 2)
                        if cp is None or cp.quote_seq != await qlog.last_seq(i):
                            return False
                        continue
                    return False
                return True

            await poll(drained, 60, "both detectors to checkpoint their last quote message", interval=0.2)
            mark("detectors drained")
            last = await last_seq()
            await asyncio.sleep(0.5)
            assert await last_seq() == last, "the log grew after both detectors were drained"
            run.final = last
            done, pending = await asyncio.wait(tasks, timeout=30)
            assert not pending, [(s.n, s.last_id, len(s.frames)) for s in subs if s.last_id != f"{epoch}-{last}"]
            for t in done:
                t.result()
            mark("subscribers at the end")
            for d in detectors:
                d.signal(signal.SIGTERM)
            for d in detectors:
                assert d.proc is not None
                assert await asyncio.to_thread(d.proc.wait, 15) == 0, d.text()
            async def read_log() -> list[LogEntry]:
                return [e async for e in log.read(1, last)]

            entries = await patiently(read_log, "reading the log")
            messages = await patiently(lambda: quote_messages(bus), "reading the quote stream")
            facts["new leader"] = (await cluster.leader_of(config.alert_stream)).name
            await asyncio.to_thread(leader.wait_ready, 20)
            return run, subs, entries, messages, facts

    try:
        run, subs, entries, messages, facts = asyncio.run(asyncio.wait_for(scenario(), 55))
    except BaseException as exc:
        exc.add_note(f"e2e timeline: {diagnosis()}; process logs in {tmp_path}")
        raise
    mark("done")
    last = run.final
    assert last is not None and last > 0
    why = diagnosis()

    # the log: dense, each source position once, exactly what one engine detects over the same quotes
    assert [e.seq for e in entries] == list(range(1, last + 1)), why
    positions = Counter((e.partition, e.source) for e in entries)
    assert all(n == 1 for n in positions.values()), [p for p, n in positions.items() if n > 1]
    assert all(partition_of(e.alert.event_id, P) == e.partition for e in entries)
    recorded = [q for batch, _ in read_quotes([slice_path], line_only=True) for q in batch]
    for i in range(P):  # the quote stream holds the recording's quotes, each partition's in order
        assert [q for _, _, qs in messages[i] for q in qs] == [q for q in recorded if partition_of(q.event_id, P) == i]
    expected = one_engine(messages, options)
    got, want = Counter(wire(e.alert) for e in entries), Counter(wire(a) for a in expected)
    assert got == want, (f"{sum((want - got).values())} missing, {sum((got - want).values())} extra of {len(expected)}"
                         f"; {why}")
    assert {json.loads(w)["type"] for w in want} == ALERT_TYPES  # every type fired

    # every subscriber: 1..last exactly once, in order, each with the log's alert, no reset
    data = {e.seq: e.alert.to_dict() for e in entries}
    parsed: dict[str, Any] = {}
    for s in subs:
        assert [k for k, _, _ in s.frames if k == "reset"] == [], (s.n, [f for f in s.frames if f[0] == "reset"])
        seqs = [_seq(sid) for _, sid, _ in s.frames]
        missing = sorted(set(range(1, last + 1)) - set(seqs))
        repeated = sorted(q for q, n in Counter(seqs).items() if n > 1)
        assert seqs == list(range(1, last + 1)), (
            f"subscriber {s.n}: {len(seqs)} alerts, missing {missing[:10]}, repeated {repeated[:10]}; "
            f"connects {s.connects}; {why}")
        assert all(sid.startswith(f"{run.epoch}-") for _, sid, _ in s.frames)
        for _, sid, text in s.frames:  # each with the log's alert
            if text not in parsed:
                parsed[text] = json.loads(text)
            assert parsed[text] == data[_seq(sid)], (s.n, sid)
        assert {0, 1} <= set(s.connects), (s.n, s.connects)  # it moved between the frontends
        assert not any(k.startswith("status") for k in s.failures), (s.n, s.failures)

    # the faults happened as planned, each with alerts still to come
    assert facts["log at A's kill"] < last and facts["log at detector 0's kill"] < last, why
    assert facts["log at the leader's kill"] < last, why
    assert facts["on A at its kill"] > 0, why
    assert sum(s.failures.total() for s in subs) >= facts["on A at its kill"], why
    second = detectors[0].text().split("--- start 2", 1)[1]
    assert "engine checkpoint at quote message" in second, second
    skipped = re.search(r"([0-9,]+) already in the log", second)
    assert skipped is not None and int(skipped.group(1).replace(",", "")) > 0, second
    print(f"\ne2e: {last} alerts, {SUBSCRIBERS} subscribers, {sum(s.moves for s in subs)} moves, "
          f"{sum(s.failures.total() for s in subs)} failed connections; {facts}; {why}")
