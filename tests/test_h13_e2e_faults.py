"""The whole scale-out deployment under faults, in ONE run (issue 13, "Tests").

Real processes on loopback: a 3-node JetStream cluster (streams and buckets with 3 replicas),
``dropengine ingest`` replaying a slice of the real NFL recording (2 partitions, paced so the
run lasts seconds), two ``dropengine detect`` processes (0/2 and 1/2, every detection option
given explicitly), two ``dropengine serve --bus`` frontends (a ring of only :data:`RING` alerts, so
most resumes are backfilled from the log), and :data:`SUBSCRIBERS` SSE subscribers in this
process that move between the frontends all the time (after a random number of alerts or a
random fraction of a few seconds, whichever comes first, and whenever a connection fails),
resuming with ``Last-Event-ID``. While alerts flow, the faults overlap:

1. kill -9 of frontend A (its subscribers move to B, those moving to A are refused);
2. with A still down, kill -9 of detector 0 once it has published alerts after its last
   checkpoint (frozen with SIGSTOP while we look, so it cannot move on between the look and
   the kill; the ingest frozen with it until the leader's kill, so that what the replay has not
   published by then still comes after that kill however slow the machine is);
3. at once, with A and detector 0 both down, kill -9 of the node that leads the alert stream
   AND the quote stream (the quote stream's leader is placed on that node before the run), while
   the ingest is still publishing; :data:`LATE` subscribers connect for the first time right
   then (``Last-Event-ID: {epoch}-0``): their resume needs the log while it cannot be read;
4. A and detector 0 are started again during the election (each waits the bus out; detector 0
   restores its checkpoint and skips what the killed one published), and the killed node a
   second later. A comes up behind the log while subscribers keep resuming on it.

After the ingest ended and both detectors have checkpointed their partition's last quote
message (so every alert is in the log) and the log's last sequence is stable:

- every subscriber saw the ids ``1..last`` of the log exactly once, in order (0 gaps,
  0 duplicates), each with the log's alert, and no ``reset`` (nothing was trimmed);
- the log is dense (``1..last``), each source position once, and its alerts equal, as a
  multiset of wire objects, what ONE DropEngine with the detectors' options (read back from
  their checkpoints: the ones this test gave) detects over the same quote messages (read back
  from the quote stream, which holds the recording's quotes once, in order per partition).
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
from dropengine.core.options import DetectOptions, KeyNumbers
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
from dropengine.bus.log import AlertLog, LogEntry, QuoteLog  # noqa: E402

nats_cluster3 = natsutil.nats_cluster3

NFL = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
#: The snapshots of the recording replayed: 5 (the replay feeds them as ~1,250 batches, one per run of
#: equal ``last_update``, each published and acknowledged on its own; ~7 s of recorded pace) from the
#: 17th on, where every alert type fires (64 alerts, both partitions; partition 0's in three bursts,
#: the last ones near the end).
FIRST, SNAPSHOTS = 16, 5
#: The replay's pace: each pause between recorded moments capped at this many seconds.
MAX_GAP = "0.6"
SUBSCRIBERS = 40
#: Of these, the last LATE connect for the first time (``Last-Event-ID: {epoch}-0``) right after the
#: leader's kill: their first resume needs the log while it cannot be read.
LATE = 5
#: The frontends' ring (``--buffer-size``): tiny, so that most resumes are backfilled from the log.
RING = 2
#: How long one connection lasts at most (seconds, drawn per connection): moves go on while no
#: alert comes (an election), not only after a number of alerts.
HOLD = (0.3, 2.5)
P = 2
#: The detectors' ``--checkpoint-every`` (seconds): after each alert detector 0 publishes, the
#: window in which the test can catch it past its checkpoint (below) lasts up to this long; 1 s
#: was missed burst after burst on a loaded machine (8 s to catch it, the replay over by then).
CHECKPOINT_EVERY = "2"
TYPES = ",".join(SIGNALS)
KEY_NUMBERS = "americanfootball_*:spreads=3,4,6,7,10,14"
#: Every detection option of ``dropengine detect``, given explicitly (the run must not depend on
#: the command's defaults): all three types.
DETECT = {"threshold": "10", "direction": "both", "reference": "last", "unit": "cents", "types": TYPES,
          "line-threshold": "0.5", "steam-books": "3", "steam-window": "300", "steam-threshold": "10",
          "cooldown": "0", "key-numbers": KEY_NUMBERS}
#: The same options as a DetectOptions.
OPTIONS = DetectOptions.build(10, "both", "last", "cents", types=TYPES, line_threshold=0.5, steam_books=3,
                              steam_window_ms=300_000, steam_threshold=10, cooldown_ms=0,
                              key_numbers=KeyNumbers.parse(KEY_NUMBERS))
PREFIX = "e2e"
KEY = "e2e-test-key"
PATH = "/v1/odds-drop/all"
#: Every subscriber asks for every alert the detectors publish: their thresholds, every type.
PARAMS = {"apiKey": KEY, "types": TYPES, "threshold": DETECT["threshold"],
          "line_threshold": DETECT["line-threshold"], "heartbeat_s": "1"}
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
    #: Voluntary moves (closed after a random number of alerts or a random time, resumed on the
    #: other frontend).
    moves: int = 0
    #: Alerts received per (frontend, its start number).
    served: Counter[tuple[int, int]] = field(default_factory=Counter)
    #: Set when a late subscriber may connect (None: from the start).
    late: asyncio.Event | None = None
    #: Heartbeats at ``{epoch}-0`` before the first alert: a frontend holding the resume while the
    #: log cannot be read (a frontend's own heartbeats carry its position, past 0 once alerts flow).
    held: int = 0
    last_id: str = ""


@dataclass
class Run:
    urls: list[str]
    epoch: str
    #: How often each frontend was started (a connection is counted to its frontend's start).
    starts: list[int] = field(default_factory=lambda: [1, 1])
    #: The log's last sequence once everything was drained (the subscribers stop there).
    final: int | None = None


def _seq(sse_id: str) -> int:
    return int(sse_id.rsplit("-", 1)[1])


async def subscribe(sub: Subscriber, run: Run) -> None:
    """Read ``/all`` from a random frontend; after a random number of alerts or a random time
    (:data:`HOLD`), whichever comes first, or when the connection fails, resume on the other
    frontend with the last id seen (as EventSource does: every frame's id counts; a frame is
    handled whole or not at all). Ends once it is at ``run.final``."""
    last = f"{run.epoch}-0"
    at = sub.rng.randrange(2)
    if sub.late is not None:
        await sub.late.wait()
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=4)) as client:
        while True:
            sub.connects.append(at)
            budget = sub.rng.randint(3, 40)
            hold = sub.rng.uniform(*HOLD)
            life = (at, run.starts[at])
            try:
                async with aconnect_sse(client, "GET", run.urls[at] + PATH, params=PARAMS,
                                        headers={"Last-Event-ID": last}) as es:
                    if es.response.status_code != 200:
                        sub.failures[f"status {es.response.status_code}"] += 1
                    else:
                        sub.on = at
                        try:
                            async with asyncio.timeout(hold):
                                async for ev in es.aiter_sse():
                                    if ev.id:
                                        last = sub.last_id = ev.id
                                    kind = json.loads(ev.data)["type"]
                                    if kind == "heartbeat" and not sub.frames and _seq(last) == 0:
                                        sub.held += 1
                                    if kind in ALERT_TYPES or kind == "reset":
                                        sub.frames.append((kind, ev.id, ev.data))
                                        sub.served[life] += 1
                                        budget -= 1
                                    if run.final is not None and _seq(last) >= run.final:
                                        return
                                    if budget <= 0:
                                        sub.moves += 1
                                        break
                        except TimeoutError:  # held long enough: move
                            sub.moves += 1
            except (httpx.HTTPError, SSEError) as exc:
                sub.failures[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
            finally:
                sub.on = None
            if run.final is not None and _seq(last) >= run.final:
                return
            at = 1 - at


async def lead_on(bus: Bus, cluster: NatsCluster, stream: str, node: NatsServer) -> None:
    """Make ``node`` lead ``stream`` (a leader stepdown naming it as the preferred node; a no-op
    when it leads already)."""
    for _ in range(5):
        if await cluster.leader_of(stream) is node:
            return
        with bus.translate(f"stepdown of {stream}"):
            await bus.nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                                 json.dumps({"placement": {"preferred": node.name}}).encode(), timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if await cluster.leader_of(stream) is node:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{stream}: {node.name} does not become its leader")


async def metrics(url: str) -> dict[str, float]:
    """A frontend's ``/metrics`` as ``{name: value}`` (empty when it does not answer)."""
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=2) as c:
            text = (await c.get(url + "/metrics")).text
        return {k: float(v) for k, _, v in (line.partition(" ") for line in text.splitlines())
                if k and not k.startswith("#") and " " not in v}
    return {}


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
@pytest.mark.timeout(75)
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
    # this process's own look at the bus: patient (the machine is loaded, a node gets killed)
    config = BusConfig(cluster.urls, prefix=PREFIX, replicas=3, request_timeout_s=5.0)
    bus_args = ["--bus", ",".join(cluster.urls), "--bus-prefix", PREFIX]
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY} business 1000\n")
    ports = [free_port(), free_port()]
    fronts = [Proc(f"frontend-{name}", ["serve", *bus_args, "--port", str(port), "--keys", str(keys),
                                        "--buffer-size", str(RING), "--log-level", "warning"], tmp_path)
              for name, port in zip("AB", ports, strict=True)]
    detect_args = [a for k, v in DETECT.items() for a in (f"--{k}", v)]
    detectors = [Proc(f"detect-{i}", ["detect", *bus_args, "--replicas", "3", "--partition", f"{i}/{P}",
                                      *detect_args, "--checkpoint-every", CHECKPOINT_EVERY, "--lease-ttl", "1",
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
            # R3, as ingest creates them: a frontend exits at once when there is no alert log
            # yet (a definite answer), so the log exists before anything starts; the detectors
            # create their buckets themselves, together
            await patiently(lambda: ensure_streams(bus), "streams")
            # the node killed below leads both streams: the alert log's election and the quote
            # stream's (the ingest publishing through it) in the same fault
            alert_leader = await cluster.leader_of(config.alert_stream)
            await patiently(lambda: lead_on(bus, cluster, config.quote_stream, alert_leader), "stepdown")
            mark("streams")
            log = AlertLog(bus)
            qlog = QuoteLog(bus)
            epoch = await patiently(log.epoch, "epoch")

            async def last_seq() -> int:
                return (await patiently(log.info, "the log's end")).last_seq

            async def quotes_published() -> int:
                async def ends() -> int:  # the quote stream's position
                    return max([await qlog.last_seq(i) for i in range(P)])

                return await patiently(ends, "the quote stream's end")

            for p in (*detectors, *fronts):
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
            # the replay (the run's clock) from here: the faults below come at the same point
            # of it however long the processes took to start on a loaded machine
            ingest.start()
            run = Run(urls, epoch)
            late = asyncio.Event()
            subs = [Subscriber(n, random.Random(SEED * 1000 + n), late=late if n >= SUBSCRIBERS - LATE else None)
                    for n in range(SUBSCRIBERS)]
            tasks = [asyncio.ensure_future(subscribe(s, run)) for s in subs]

            down: set[str] = set()  # the processes killed on purpose, until started again

            def running() -> None:
                """Every process runs (the ingest may have ended, with status 0), every subscriber too."""
                for p in (*fronts, *detectors):
                    assert p.alive() or p.name in down, f"{p.name} exited: {p.text()[-3000:]}"
                assert ingest.alive() or (ingest.proc is not None and ingest.proc.returncode == 0), ingest.text()
                assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]

            async def alerts_flowing() -> bool:
                running()
                if (await log.info()).last_seq < 3:
                    return False
                if all(s.frames for s in subs if s.late is None):
                    return True
                # pacing: the replay waits (frozen) while the subscribers reach the first alerts,
                # which takes seconds on a loaded machine: the faults below need it unfinished
                ingest.signal(signal.SIGSTOP)
                return False

            try:
                await poll(alerts_flowing, 30, "alerts reaching every subscriber")
            finally:
                ingest.signal(signal.SIGCONT)
            mark("alerts flowing")

            # 1. kill -9 of frontend A (down until after the leader's kill)
            facts["log at A's kill"] = await last_seq()
            facts["on A at its kill"] = sum(1 for s in subs if s.on == 0)
            fronts[0].kill()
            down.add(fronts[0].name)
            mark("frontend A killed")

            # 2. kill -9 of detector 0 after it published alerts its checkpoint does not cover
            d0 = detectors[0]

            async def beyond() -> tuple[int, tuple[int, int]] | None:
                """(its checkpoint's quote message, the source of its last alert in the log)
                when that alert is past the checkpoint."""
                _, source = await log.last_for(0)
                with contextlib.suppress(Exception):
                    cp = await asyncio.wait_for(ckpt.load(bus, 0, P), 2)
                    if cp is not None and source is not None and source[0] > cp.quote_seq:
                        return cp.quote_seq, source
                return None

            async def past_checkpoint() -> bool:
                running()
                if await beyond() is None:  # a look while it runs, then the same look frozen
                    return False
                # the ingest frozen too, from here until the leader's kill (the pacing of the
                # plan): however long the looks, the stepdown and the leader's lookup take on a
                # loaded machine, the replay does not move on meanwhile, so what it has not
                # published yet when detector 0 is caught comes after the leader's kill
                d0.signal(signal.SIGSTOP)
                ingest.signal(signal.SIGSTOP)
                seen = None
                try:
                    await asyncio.sleep(0.2)  # what it sent before the freeze lands
                    seen = await beyond()
                finally:
                    if seen is None:
                        d0.signal(signal.SIGCONT)
                        ingest.signal(signal.SIGCONT)
                facts["detector 0 killed at"] = seen
                return seen is not None

            await poll(past_checkpoint, 20, "detector 0 publishing past its checkpoint", interval=0.1)
            d0.kill()
            down.add(d0.name)
            mark("detector 0 killed")

            # 3. at once, A and detector 0 still down: kill -9 of the node leading the alert log
            # and the quote stream (placed there again if a leader moved meanwhile)
            leader: NatsServer = await cluster.leader_of(config.alert_stream)
            await patiently(lambda: lead_on(bus, cluster, config.quote_stream, leader), "stepdown")
            facts["leader"] = leader.name
            facts["log at the leader's kill"] = await last_seq()
            facts["quotes at the leader's kill"] = await quotes_published()
            leader.kill()
            ingest.signal(signal.SIGCONT)  # it publishes through the election
            late.set()
            mark(f"leader {leader.name} killed")
            facts["ingest running at the leader's kill"] = ingest.alive()

            # 4. A and detector 0 start again during the election, the node a second later
            d0.start()
            run.starts[0] += 1
            fronts[0].start()  # on its port
            down.clear()
            mark("detector 0 and frontend A restarted")
            await asyncio.sleep(1.0)
            leader.restart(wait=False)
            mark(f"{leader.name} restarted")
            async def a_ready() -> bool:
                running()
                return await ready(urls[0])

            await poll(a_ready, 30, "frontend A started again")
            mark("frontend A ready again")

            # drained: the ingest ended, each detector checkpointed its partition's last quote
            # message (so all its alerts are in the log), and the log's end stays put
            async def ingest_ended() -> bool:
                running()
                return not ingest.alive()

            await poll(ingest_ended, 60, "the ingest to end")
            mark("ingest ended")
            assert ingest.proc is not None and ingest.proc.returncode == 0, ingest.text()
            used: dict[int, dict[str, Any]] = {}

            async def drained() -> bool:
                for i, d in enumerate(detectors):
                    assert d.alive(), d.text()
                    with contextlib.suppress(Exception):
                        cp = await asyncio.wait_for(ckpt.load(bus, i, P), 2)
                        if cp is None or cp.quote_seq != await qlog.last_seq(i):
                            return False
                        used[i] = cp.options
                        continue
                    return False
                return True

            await poll(drained, 60, "both detectors to checkpoint their last quote message", interval=0.2)
            mark("detectors drained")
            facts["options"] = used
            last = await last_seq()
            await asyncio.sleep(0.5)
            assert await last_seq() == last, "the log grew after both detectors were drained"
            facts["quotes at the end"] = await quotes_published()
            run.final = last
            done, pending = await asyncio.wait(tasks, timeout=30)
            assert not pending, [(s.n, s.last_id, len(s.frames)) for s in subs if s.last_id != f"{epoch}-{last}"]
            for t in done:
                t.result()
            mark("subscribers at the end")
            facts["frontends"] = {name: {k.removeprefix("dropengine_"): v for k, v in (await metrics(url)).items()
                                         if k.split("_total")[0].endswith(("backfills", "resumes_ended",
                                                                           "follow_restarts", "slow_clients_cut"))}
                                  for name, url in zip("AB", urls, strict=True)}
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
        run, subs, entries, messages, facts = asyncio.run(asyncio.wait_for(scenario(), 70))
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
    # the detectors ran with the options given (their checkpoints say so), and the one engine
    # with exactly theirs. The one setting no flag gives, the line move that counts for steam,
    # is detect's default: none (every detected line move) or the serve engine's 0.5, the same
    # thing at --line-threshold 0.5
    used = {i: DetectOptions.from_dict(o) for i, o in facts.pop("options").items()}
    assert sorted(used) == list(range(P)) and used[0] == used[1], used
    options = used[0]
    assert options.steam_line_threshold in (None, OPTIONS.line_threshold), options
    assert options.replace(steam_line_threshold=None) == OPTIONS, (options, OPTIONS)
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

    # the faults happened as planned, during the run: alerts still to come after the last
    # kill, the ingest publishing through the election, A serving again after its restart
    assert facts["log at A's kill"] <= facts["log at the leader's kill"] < last, why
    assert facts["ingest running at the leader's kill"], why
    assert facts["quotes at the leader's kill"] < facts["quotes at the end"], why
    assert facts["on A at its kill"] > 0, why
    assert sum(s.failures.total() for s in subs) >= facts["on A at its kill"], why
    assert sum(s.served[(0, 2)] for s in subs) > 0, why
    assert sum(m.get("backfills_total", 0) for m in facts["frontends"].values()) > 0, why  # resumes from the log
    assert sum(s.held for s in subs if s.late) > 0, why  # a resume held while the log could not be read
    second = detectors[0].text().split("--- start 2", 1)[1]
    assert "engine checkpoint at quote message" in second, second
    skipped = re.search(r"([0-9,]+) already in the log", second)
    assert skipped is not None and int(skipped.group(1).replace(",", "")) > 0, second
    print(f"\ne2e: {last} alerts, {SUBSCRIBERS} subscribers, {sum(s.moves for s in subs)} moves, "
          f"{sum(s.failures.total() for s in subs)} failed connections, "
          f"{sum(s.served[(0, 2)] for s in subs)} alerts from A after its restart, "
          f"{[s.held for s in subs if s.late]} heartbeats at 0 before the first alert (late ones); {facts}; {why}")
