"""``serve --sink``: server-wide sinks wired into the command and the app's lifespan (issue 15).

A real ``serve`` process (its sinks set in the ``--config`` file, the webhook secret in the
environment) replays a recording with every alert type to a real local webhook receiver
(tests/test_h15_sinks_webhook.py's, which checks the signature). Invariants: every alert the
server detects and the ``sink-query`` selects reaches the receiver exactly once, its delivery id
the alert's SSE id and its body the frame's JSON; ``/metrics`` and ``/healthz`` count them; a
SIGTERM drains and exits 0; the secret never shows in the server's output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from dropengine.cli import main

from . import test_h15_sinks_webhook as hooks
from .test_h15_deploy_asyncapi import ALL_TYPES, events, finished, recording
from .test_h15_sinks_webhook import SECRET, Receiver

receiver_server = hooks.receiver_server
receiver = hooks.receiver


@pytest.fixture
def serve_with_sink(tmp_path: Path, receiver: tuple[Receiver, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    _, rx_url = receiver
    rec = tmp_path / "rec.ndjson"
    recording(rec)
    config = tmp_path / "serve.toml"
    config.write_text(f'source = "replay:{rec}"\nspeed = "max"\nport = 0\nlog-level = "warning"\n'
                      f'sink = ["webhook:{rx_url}/hook"]\n'
                      f'sink-query = "threshold=1&line_threshold=0.25&types=odds_drop,line_move,steam"\n'
                      f'dead-letter = "{tmp_path / "dead.ndjson"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPENGINE_SERVE_")}
    env["DROPENGINE_WEBHOOK_SECRET"] = SECRET
    proc = subprocess.Popen([sys.executable, "-m", "dropengine", "serve", "--config", str(config)],
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert " at http://" in line, line
        yield line.split(" at ")[1].split()[0], proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_every_alert_reaches_the_webhook_once_with_its_sse_id(
        serve_with_sink: tuple[str, subprocess.Popen[str]], receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    url, proc = serve_with_sink
    rx, _ = receiver
    health = finished(url)
    produced = health["alerts_produced"]
    epoch = health["epoch"]
    _, frames = events(url, "/v1/odds-drop/all", last_event_id=f"{epoch}-0", **ALL_TYPES)
    alerts = {sse_id: frame for sse_id, frame in frames if frame["type"] in ("odds_drop", "line_move", "steam")}
    assert len(alerts) == produced > 0 and {f["type"] for f in alerts.values()} == {"odds_drop", "line_move", "steam"}
    deadline = time.monotonic() + 20
    while len(rx.processed) < produced and time.monotonic() < deadline:
        time.sleep(0.05)
    ids = [r.headers["x-dropengine-delivery"] for r in rx.processed]
    assert sorted(ids) == sorted(alerts) and len(set(ids)) == len(ids)  # each alert once, by its SSE id
    assert all(r.json == alerts[r.headers["x-dropengine-delivery"]] for r in rx.processed)
    assert rx.rejected_signatures == 0  # every request signed with the secret from the environment
    with httpx.Client(timeout=5) as c:
        text = c.get(url + "/metrics").text
        sinks = c.get(url + "/healthz").json()["sinks"]
    (name, counts), = sinks.items()
    assert name.startswith("webhook http://127.0.0.1") and counts["delivered"] == produced
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("dropengine_sink_alerts_total", (("outcome", "delivered"), ("sink", name)))] == produced
    assert samples[("dropengine_sink_offered_total", (("sink", name),))] == produced
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert SECRET not in err
    assert not (tmp_path / "dead.ndjson").exists() or not (tmp_path / "dead.ndjson").read_text()


def test_a_sink_with_bus_is_refused() -> None:
    r = CliRunner().invoke(main, ["serve", "--bus", "nats://127.0.0.1:1", "--sink", "ndjson:/tmp/x.ndjson"])
    assert r.exit_code == 2 and "--sink and --bus" in r.output


def test_a_bad_sink_query_names_it(tmp_path: Path) -> None:
    rec = tmp_path / "rec.ndjson"
    recording(rec)
    r = CliRunner().invoke(main, ["serve", "--source", f"replay:{rec}", "--port", "0", "--sink",
                                  f"ndjson:{tmp_path / 'out.ndjson'}", "--sink-query", "threshold=0"])
    assert r.exit_code == 2 and "threshold" in r.output, r.output
