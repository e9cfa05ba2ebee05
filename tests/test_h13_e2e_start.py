"""A JetStream request that times out while ``dropengine detect`` or ``dropengine serve --bus``
starts is waited out (retried with backoff, as while running), not the end of the process.

Seen in the integrated fault run (test_h13_e2e_faults.py) on a 3-node R3 cluster on this
loaded machine, before the fix: a detector started together with the other one found the
checkpoint bucket the other had just created without a leader yet (``Error: checkpoint p1.2
(bucket e2e_checkpoints) failed ...: TimeoutError: nats: timeout``, exit status 1), and a
frontend restarted while the alert log's leader was being elected exited with status 2 saying
``info of E2E_ALERTS failed ...: TimeoutError: nats: timeout (no alert log E2E_ALERTS yet?
...)``. Once running, both ride out the same outage, so an orchestrator restarting them during
a leader election - when it is most likely to - lost them.

Reproduced deterministically: each real process gets :data:`TIMEOUTS` injected ``nats:
timeout`` answers on its first JetStream API requests (a ``sitecustomize`` wrapping nats-py's
``JetStreamManager._api_request``, the call every JetStream API request goes through), on a
real nats-server; each then does its whole job (the detector's alerts in the log exactly once,
the frontend serving the log's ids). These were strict xfails before the fix (exit 1 / exit 2
at the first timed-out request). The runs with 0 injected timeouts (the control while these
failed) were dropped: the same scenario with timeouts covers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from dropengine.core.alerts import SIGNALS, Drop
from dropengine.core.engine import DropEngine
from dropengine.core.options import DetectOptions
from dropengine.io.replay import read_quotes

from . import natsutil
from .conftest import require_data
from .natsutil import NatsServer, free_port

pytestmark = [pytest.mark.bus, pytest.mark.timeout(60)]
pytest.importorskip("nats")
pytest.importorskip("httpx_sse")

from httpx_sse import connect_sse  # noqa: E402

from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import connect, ensure_streams  # noqa: E402
from dropengine.bus.ingest import BusIngest  # noqa: E402
from dropengine.bus.log import AlertLog  # noqa: E402

nats_server_module = natsutil.nats_server_module

NFL = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
TYPES = ",".join(SIGNALS)
_prefixes = itertools.count()

#: Injected into the child process (PYTHONPATH): its first ``DROPENGINE_TEST_JS_TIMEOUTS``
#: JetStream API requests fail with nats-py's own timeout, as a request to a stream without a
#: leader does.
SITECUSTOMIZE = '''
import os

_left = [int(os.environ.get("DROPENGINE_TEST_JS_TIMEOUTS", "0"))]
if _left[0]:
    import nats.errors
    from nats.js.manager import JetStreamManager

    _real = JetStreamManager._api_request

    async def _api_request(self, req_subject, req=b"", timeout=5):
        if _left[0] > 0:
            _left[0] -= 1
            raise nats.errors.TimeoutError
        return await _real(self, req_subject, req, timeout)

    JetStreamManager._api_request = _api_request
'''

#: JetStream requests answered with a timeout at start (each process): more than one, so a
#: retried request that times out again is waited out too.
TIMEOUTS = 3


@contextlib.contextmanager
def child(args: list[str], tmp: Path, timeouts: int) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m dropengine ARGS`` with ``timeouts`` injected JetStream timeouts; killed at the end."""
    inject = tmp / "inject"
    inject.mkdir(exist_ok=True)
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": str(inject), "DROPENGINE_TEST_JS_TIMEOUTS": str(timeouts),
           "PYTHONUNBUFFERED": "1"}
    log = tmp / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dropengine", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def output(tmp: Path) -> str:
    return (tmp / "child.log").read_text(errors="replace")


def wait_for(cond: object, proc: subprocess.Popen[bytes], tmp: Path, what: str, timeout: float = 20.0) -> None:
    """Until ``cond()``; fails at once (with its output) when the process has exited."""
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert proc.poll() is None, f"exited with status {proc.returncode} before {what}: {output(tmp)}"
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}: {output(tmp)}"
        time.sleep(0.05)


def test_detect_starts_through_a_timed_out_bus_request(nats_server_module: NatsServer, tmp_path: Path) -> None:
    config = BusConfig((nats_server_module.url,), prefix=f"start{next(_prefixes)}")
    batches = []
    for n, (quotes, stamp) in enumerate(read_quotes([require_data("theoddsapi_nfl", NFL)], line_only=True)):
        if n == 2:
            break
        batches.append((quotes, stamp if stamp is not None else max(q.last_update for q in quotes)))
    engine = DropEngine.from_options(DetectOptions.build(types=TYPES))
    expected = [a for quotes, now_ms in batches for a in engine.observe_many(quotes, now_ms=now_ms)]
    assert expected  # the second snapshot moves prices

    async def ingest() -> None:
        async with await connect(config, name="test-ingest") as bus:
            await ensure_streams(bus)
            publish = BusIngest(bus, 1)
            for quotes, now_ms in batches:
                await publish(quotes, now_ms)

    async def log_alerts() -> list[bytes]:
        async with await connect(config, name="test-read") as bus:
            log = AlertLog(bus)
            info = await log.info()
            return [msgspec.json.encode(e.alert) async for e in log.read(1, info.last_seq)] if info.last_seq else []

    asyncio.run(asyncio.wait_for(ingest(), 20))
    args = ["detect", "--bus", config.servers[0], "--bus-prefix", config.prefix, "--partition", "0/1", "--types",
            TYPES, "--threshold", "10", "--line-threshold", "0.5",
            "--checkpoint-every", "0.2", "--lease-ttl", "1", "--status-every", "0", "--log-level", "warning"]
    with child(args, tmp_path, TIMEOUTS) as proc:
        wait_for(lambda: len(asyncio.run(log_alerts())) >= len(expected), proc, tmp_path, "the alerts in the log")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, output(tmp_path)
    assert Counter(asyncio.run(log_alerts())) == Counter(msgspec.json.encode(a) for a in expected)
    said = output(tmp_path)
    assert said.count("does not answer") == 1, said  # one warning for the outage, not one per attempt
    assert "disconnected" not in said, said  # its own close() at the end is no lost connection


def test_serve_bus_starts_through_a_timed_out_bus_request(nats_server_module: NatsServer, tmp_path: Path) -> None:
    config = BusConfig((nats_server_module.url,), prefix=f"start{next(_prefixes)}")
    alerts = [Drop(sport_key="americanfootball_nfl", event_id=f"e{i}", bookmaker="pinnacle", side="h2h_home",
                   kind="game", market_key="h2h", prev=-110, new=-130, delta=-20, direction="toward_favorite",
                   last_update=1000 + i, timestamp=1000 + i, elapsed_ms=0) for i in range(3)]

    async def publish() -> str:
        async with await connect(config, name="test-publisher") as bus:
            await ensure_streams(bus)
            log = AlertLog(bus, partitions=1)
            for i, a in enumerate(alerts):
                await log.publish(0, a, qseq=i + 1, k=0, produced_ms=int(time.time() * 1000), expect_last=None)
            return await log.epoch()

    epoch = asyncio.run(asyncio.wait_for(publish(), 20))
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        return False

    args = ["serve", "--bus", config.servers[0], "--bus-prefix", config.prefix, "--port", str(port),
            "--log-level", "warning"]
    with child(args, tmp_path, TIMEOUTS) as proc:
        wait_for(healthy, proc, tmp_path, "the frontend to serve")
        got = []
        with httpx.Client(timeout=5) as c, connect_sse(c, "GET", url + "/v1/odds-drop/all",
                                                       params={"apiKey": "k", "heartbeat_s": 1},
                                                       headers={"Last-Event-ID": f"{epoch}-0"}) as es:
            for ev in es.iter_sse():
                data = json.loads(ev.data)
                if data["type"] == "odds_drop":
                    got.append((ev.id, data))
                    if len(got) == len(alerts):
                        break
        assert got == [(f"{epoch}-{i + 1}", a.to_dict()) for i, a in enumerate(alerts)]
    said = output(tmp_path)
    assert said.count("does not answer") == 1 and "no alert log" not in said, said  # precise: a timeout
