"""Transient bus failures are waited out, definite ones are not (real nats-server).

- ``ingest``: a publish whose acknowledgement is lost again and again (more often than the
  log's own bounded attempts) is retried with the SAME message id until the bus answers:
  each message stored once; a deleted quote stream is a definite refusal (BusError).
- ``Detector``: a request that times out in any start-up step (lease, checkpoint, the log's
  position) is retried; the detector then publishes exactly one engine's alerts.
- ``detect``, ``serve --bus`` and ``ingest`` started against a server that answers connects
  but no JetStream request (as a cluster without a leader): each waits, warning once, and
  stops cleanly (exit 0) on SIGTERM; the frontend's start-up wait in uvicorn's lifespan
  (``_unless_signalled``) ends on a signal too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dropengine.core.engine import DropEngine
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.io.replay import read_quotes

from . import natsutil
from .conftest import FIXTURES
from .natsutil import NatsServer, free_port

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")

import nats.errors  # noqa: E402
from nats.js.manager import JetStreamManager  # noqa: E402

from dropengine.bus import AlertLog, BusConfig, QuoteLog, connect, ensure_streams  # noqa: E402
from dropengine.bus.connect import StreamNotFound  # noqa: E402
from dropengine.bus.detector import Detector  # noqa: E402
from dropengine.bus.ingest import BusIngest  # noqa: E402
from dropengine.server.busfeed import _unless_signalled  # noqa: E402

nats_server_module = natsutil.nats_server_module

DEMO = FIXTURES / "demo_nba_frames.ndjson"


def batches(n: int) -> list[tuple[list[Any], int]]:
    out = []
    for quotes, stamp in read_quotes([DEMO], line_only=True):
        out.append((quotes, stamp if stamp is not None else max(q.last_update for q in quotes)))
        if len(out) == n:
            break
    return out


def test_ingest_retries_a_lost_ack_with_the_same_message_id(nats_server_module: NatsServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # one attempt per publish in the log: every lost ack reaches BusIngest (before the fix: BusError, exit 1)
    config = BusConfig((nats_server_module.url,), prefix="rlost", publish_attempts=1)
    (quotes, now_ms), = batches(1)
    lost = [4]  # the next 4 publishes land, but their acks are "lost"

    async def run() -> tuple[dict[int, list[Any]], int]:
        async with await connect(config, name="test") as bus:
            await ensure_streams(bus)
            real = bus.js.publish

            async def publish(*args: Any, **kw: Any) -> Any:
                ack = await real(*args, **kw)
                if lost[0] > 0:
                    lost[0] -= 1
                    raise nats.errors.TimeoutError
                return ack

            monkeypatch.setattr(bus.js, "publish", publish)
            ingest = BusIngest(bus, 3)  # (the demo's 3 events: partitions 0 and 2 of 3)
            await ingest(quotes, now_ms)
            monkeypatch.undo()
            held: dict[int, list[Any]] = {}
            qlog = QuoteLog(bus)
            for i in (0, 2):
                held[i] = []
                last = await qlog.last_seq(i)
                reader = qlog.read(i, 1)
                async for seq, batch in reader:
                    assert not isinstance(batch, Exception)
                    held[i].append(batch.quotes)
                    if seq >= last:
                        break
                await reader.aclose()
            return held, ingest.stats.retries

    held, retries = asyncio.run(asyncio.wait_for(run(), 30))
    assert retries == 4 and lost == [0]
    for i in (0, 2):  # each partition's message stored ONCE (the same message id every attempt)
        assert held[i] == [[q for q in quotes if partition_of(q.event_id, 3) == i]] != [[]]


def test_ingest_ends_on_a_deleted_quote_stream(nats_server_module: NatsServer) -> None:
    config = BusConfig((nats_server_module.url,), prefix="rgone", publish_attempts=1)
    (quotes, now_ms), = batches(1)

    async def run() -> None:
        async with await connect(config, name="test") as bus:
            await ensure_streams(bus)
            await bus.js.delete_stream(config.quote_stream)
            await BusIngest(bus, 1)(quotes, now_ms)

    with pytest.raises(StreamNotFound, match=r"RGONE_QUOTES .*deleted"):
        asyncio.run(asyncio.wait_for(run(), 20))


#: Which JetStream API requests (1-based) time out: spaced wider and wider, so that every
#: start-up step (lease bucket and key, checkpoint bucket and object, streams, the log's end,
#: the reader's consumer) meets some, and each retried step gets through.
FAIL_AT = frozenset({1, 2, 4, 7, 11, 16, 22, 29, 37})


def test_a_detector_starts_through_timeouts_in_each_start_step(nats_server_module: NatsServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = BusConfig((nats_server_module.url,), prefix="rdet")
    options = DetectOptions.build(types="odds_drop,line_move")
    data = batches(3)
    engine = DropEngine.from_options(options)
    expected = [msgspec.json.encode(a) for quotes, now_ms in data for a in engine.observe_many(quotes, now_ms=now_ms)]
    assert expected
    failed: list[str] = []
    calls = [0]
    real = JetStreamManager._api_request

    async def flaky(self: Any, subject: str, req: bytes = b"", timeout: float = 5) -> Any:
        calls[0] += 1
        if calls[0] in FAIL_AT:  # requests of the start-up, further and further apart, time out
            failed.append(subject.split(".")[4] if subject.count(".") >= 4 else subject)
            raise nats.errors.TimeoutError
        return await real(self, subject, req, timeout)

    async def run() -> list[bytes]:
        async with await connect(config, name="test") as bus:
            await ensure_streams(bus)
            publish = BusIngest(bus, 1)
            for quotes, now_ms in data:
                await publish(quotes, now_ms)
            monkeypatch.setattr(JetStreamManager, "_api_request", flaky)
            detector = Detector(bus, 0, 1, options, lease_ttl_s=2.0, checkpoint_every_s=0.2)
            await detector.run(until_seq=publish.stats.last_seq)
            monkeypatch.undo()
            log = AlertLog(bus)
            last = (await log.info()).last_seq
            return [msgspec.json.encode(e.alert) async for e in log.read(1, last)]

    got = asyncio.run(asyncio.wait_for(run(), 40))
    assert len(failed) >= 5, failed  # (before the fix the first of them ended the detector: BusError)
    assert got == expected


class _NoJetStream(NatsServer):
    """A nats-server WITHOUT JetStream: it accepts clients, but no JetStream request gets an
    answer (no responders), as a cluster whose JetStream has no leader."""

    def _args(self) -> list[str]:
        return [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.http_port), "-n", self.name]


@pytest.fixture
def no_jetstream(tmp_path: Path) -> Iterator[NatsServer]:
    server = _NoJetStream(tmp_path / "nojs")
    server.start(wait=False)
    try:
        server.wait_ready(jetstream=False)
        yield server
    finally:
        server.kill()


def test_commands_wait_for_a_bus_that_does_not_answer_until_stopped(no_jetstream: NatsServer,
                                                                    tmp_path: Path) -> None:
    url = no_jetstream.url
    runs = {
        "detect": ["detect", "--bus", url, "--partition", "0/1", "--status-every", "0"],
        "serve": ["serve", "--bus", url, "--port", str(free_port())],
        "ingest": ["ingest", "--bus", url, "--source", f"replay:{DEMO}", "--partitions", "1", "--status-every", "0"],
    }
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for name, args in runs.items():
            out = tmp_path / f"{name}.log"
            with open(out, "wb") as f:
                procs[name] = (subprocess.Popen([sys.executable, "-m", "dropengine", *args, "--log-level", "warning"],
                                                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env={**os.environ, "PYTHONUNBUFFERED": "1"}), out)
        for name, (proc, out) in procs.items():
            natsutil.wait_until(lambda proc=proc, out=out: proc.poll() is not None
                                or "does not answer" in out.read_text(), 20, f"{name} waiting for the bus")
            assert proc.poll() is None, f"{name} exited with {proc.returncode}: {out.read_text()}"
        time.sleep(0.5)  # a few more attempts: still one warning
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, (proc, out) in procs.items():
            said = out.read_text()
            assert proc.wait(15) == 0, f"{name}: {out.read_text()}"
            said = out.read_text()
            assert said.count("does not answer") == 1, f"{name}: {said}"
            assert not [line for line in said.splitlines() if line.startswith("Error")], f"{name}: {said}"
            assert "no alert log" not in said and "disconnected" not in said, f"{name}: {said}"
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def test_the_frontends_start_up_wait_ends_on_a_signal() -> None:
    """In uvicorn's lifespan a signal does not interrupt the start-up: ``_unless_signalled``
    makes SIGTERM end the wait for the bus, and still hands it to the handler it found
    (uvicorn's), then puts that handler back."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        async def never() -> Any:
            await asyncio.Event().wait()

        async def run() -> Any:
            asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signal.SIGTERM)
            return await _unless_signalled(never())

        assert asyncio.run(asyncio.wait_for(run(), 10)) is None
        assert seen == [signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)  # the previous handler is back
        assert seen == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
