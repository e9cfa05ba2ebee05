"""Sinks where users meet them: ``watch --sink`` against the real ``mock-upstream`` delivering
to the real local receiver (the receiver gets exactly the alerts stdout prints, signed), the
``--sink`` flags' usage errors (naming the flag, never echoing a secret), the sync facade
for library code (a background thread; ``offer`` returns while the receiver hangs), and the
server-wide sinks tapping a real ``DropServer``'s hub (each alert once, its SSE id as the
delivery id, the ``--sink-query`` filter applied)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from dropengine.cli.group import main
from dropengine.core.alerts import Alert
from dropengine.core.errors import ConfigError
from dropengine.core.keys import KeyTable
from dropengine.core.quote import Quote
from dropengine.deliver import BackgroundSinks, RetrySchedule, WebhookSink
from dropengine.deliver.rules import alert_line, discord_escape
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.app import DropServer
from dropengine.server.asgi import BackgroundServer
from dropengine.server.delivery import ServerDelivery, sink_filter
from dropengine.server.sources import ManualSource

from . import test_h15_sinks_webhook as hooks
from .test_h12_cli_replay import ALL, nfl_frames
from .test_h15_sinks_rules import drop
from .test_h15_sinks_webhook import SECRET, Receiver, dead_lines

KEY = "CANARY-H15-SINKS-5e2b"
CLI = [sys.executable, "-m", "dropengine"]

# the receiver fixtures (a real uvicorn receiver, one per module)
receiver_server = hooks.receiver_server
receiver = hooks.receiver


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DROPENGINE_API_KEY": KEY, "DROPENGINE_WEBHOOK_SECRET": SECRET}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h15sinks") / "nfl.ndjson"
    path.write_text("".join(json.dumps(f, separators=(",", ":")) + "\n" for f in nfl_frames()))
    return path


@pytest.fixture
def upstream(recording: Path) -> Iterator[str]:
    mock = MockUpstream(load_timeline([recording]), speed=3000.0, max_gap=0.003, keys=KeyTable.single(KEY))
    with BackgroundServer(mock.app, secrets=mock.secrets()) as url:
        yield url


def test_watch_delivers_to_a_signed_webhook_and_discord_what_it_prints(upstream: str, recording: Path,
                                                                         receiver: tuple[Receiver, str],
                                                                         tmp_path: Path) -> None:
    rx, url = receiver
    rx.plan_for["/hook/watch"] = deque(["500"])  # one failure on the way: retried, still delivered once
    expected = CliRunner().invoke(main, ["replay", "--types", ALL, str(recording)]).stdout.splitlines()
    assert len(expected) == 10
    dead = tmp_path / "dead.ndjson"
    watch = run(["watch", "--sport", "americanfootball_nfl", "--base-url", upstream, "--stamp", "data",
                 "--heartbeat-s", "1", "--retry-scale", "0.02", "--status-every", "0", "--duration", "30",
                 "--types", ALL, "--max-alerts", "10",
                 "--sink", f"webhook:{url}/hook/watch", "--sink", f"discord:{url}/api/webhooks/9/DISCORD-TOKEN",
                 "--sink", f"ndjson:{tmp_path / 'copy.ndjson'}",
                 "--dead-letter", str(dead), "--sink-retry-scale", "0.01"])
    assert watch.returncode == 0, watch.stderr
    assert watch.stdout.splitlines() == expected
    hooks = [r for r in rx.processed if r.path == "/hook/watch"]
    assert [json.loads(r.body) for r in hooks] == [json.loads(line) for line in expected]  # each once, in order
    assert rx.rejected_signatures == 0
    assert sum(r.path == "/hook/watch" and r.action == "500" for r in rx.requests) == 1
    chat = [line for r in rx.processed if r.path.startswith("/api/webhooks/") for line in r.json["content"].split("\n")]
    alerts = [msgspec.json.decode(line, type=Alert) for line in expected]
    assert chat == [discord_escape(alert_line(a)) for a in alerts]
    assert not dead.read_text()
    assert (tmp_path / "copy.ndjson").read_text().splitlines() == expected
    assert f"webhook {url}: delivered 10 of 10 (failed 0, dropped 0, retried 1)" in watch.stderr
    assert "discord" in watch.stderr and "delivered 10 of 10" in watch.stderr.split("discord", 1)[1]
    for secret in (SECRET, KEY, "DISCORD-TOKEN"):
        assert secret not in watch.stdout + watch.stderr


def test_watch_reports_undelivered_alerts_and_their_dead_letter_file(upstream: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed: nothing listens
    dead = tmp_path / "dead.ndjson"
    watch = run(["watch", "--sport", "americanfootball_nfl", "--base-url", upstream, "--stamp", "data",
                 "--heartbeat-s", "1", "--retry-scale", "0.02", "--status-every", "0", "--duration", "30", "-q",
                 "--max-alerts", "2", "--sink", f"webhook:http://127.0.0.1:{port}/x", "--dead-letter", str(dead),
                 "--sink-attempts", "2", "--sink-retry-scale", "0.001"])
    assert watch.returncode == 0, watch.stderr
    printed = [json.loads(line) for line in watch.stdout.splitlines()]
    lines = dead_lines(dead)
    assert [x["alert"] for x in lines] == printed and len(printed) == 2
    assert {x["reason"] for x in lines} == {"gave up after 2 attempts (last: network error (ConnectError))"}
    assert "delivered 0 of 2 (failed 2, dropped 0, retried 2), 2 to the dead-letter file" in watch.stderr  # with -q
    assert f"undelivered alerts: {dead}" in watch.stderr


def test_sink_flags_usage_errors_name_the_flag_and_hide_secrets(tmp_path: Path) -> None:
    base = ["watch", "--sport", "x", "--base-url", "http://127.0.0.1:9", "--api-key", "k"]
    env = {"DROPENGINE_TELEGRAM_TOKEN": None, "DROPENGINE_WEBHOOK_SECRET": None}
    cases = [
        (["--sink", "slack:https://hooks.example/SECRETPATH"], "--sink", "'slack'"),
        (["--sink", "webhook:ftp://example.com/SECRETPATH"], "--sink", "http://"),
        (["--sink", "telegram:12345"], "DROPENGINE_TELEGRAM_TOKEN", "--telegram-token"),
        (["--sink", "webhook:http://127.0.0.1:9/h", "--dead-letter", str(tmp_path / "no" / "dir.ndjson")],
         "--dead-letter", "cannot write"),
        (["--sink", "ndjson:out.csv"], "--sink", ".ndjson"),
        (["--webhook-secret", "has space SECRETPATH"], "--webhook-secret", "not shown"),
    ]
    for args, flag, shown in cases:
        r = CliRunner().invoke(main, [*base, *args], env=env)
        assert r.exit_code == 2, (args, r.output)
        assert flag in r.stderr and shown in r.stderr, r.stderr
        assert "SECRETPATH" not in r.stderr


def test_sync_facade_delivers_from_sync_code_and_never_blocks_on_a_hanging_receiver(
        receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    rx, url = receiver
    alerts = [drop(i) for i in range(12)]
    with BackgroundSinks(WebhookSink(f"{url}/hook/sync", SECRET)) as sinks:
        assert sinks.offer_many(alerts) == 12
    assert sorted(r.json["event_id"] for r in rx.processed) == sorted(a.event_id for a in alerts)
    c = sinks.counters[f"webhook {url}"]
    assert (c.offered, c.delivered, c.failed, c.dropped) == (12, 12, 0, 0)

    rx.plan.extend(["hang"] * 3)
    dead = tmp_path / "dead.ndjson"
    slow = WebhookSink(f"{url}/hook/sync", SECRET, queue_size=2, dead_letter=dead,
                       schedule=RetrySchedule(attempts=1, timeout_s=30.0))
    bg = BackgroundSinks(slow, drain_s=0.3).start()
    try:
        assert bg.offer(alerts[0])
        deadline = time.monotonic() + 10
        while len(rx.requests) < 13 and time.monotonic() < deadline:  # the first is in flight, held
            time.sleep(0.005)
        accepted = [bg.offer(a) for a in alerts[1:6]]  # from this thread, while the receiver hangs
    finally:
        bg.close()
    assert accepted == [True, True, False, False, False]
    c = slow.counters
    assert (c.offered, c.delivered, c.failed, c.dropped, c.dead_lettered) == (6, 0, 3, 3, 6)
    assert len(dead_lines(dead)) == 6


def _q(event: str, price: int, lu: int, book: str = "pinnacle") -> Quote:
    return Quote("basketball_nba", event, book, "h2h_home", price, lu)


def test_server_wide_sinks_get_each_alert_once_with_its_sse_id(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    delivery = ServerDelivery([WebhookSink(f"{url}/hook/serve", SECRET)], "threshold=15&bookmakers=pinnacle",
                              drain_s=5.0)

    class Serving(DropServer):
        @contextlib.asynccontextmanager
        async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:  # as deploy wires it in app.py
            async with super()._lifespan(app), delivery.running(self.hub):
                yield

    src = ManualSource()
    srv = Serving(src)
    t0 = 1_747_000_000_000
    with BackgroundServer(srv.app):
        src.push([_q("e1", -110, t0), _q("e2", -110, t0), _q("e1", -110, t0, "fanduel")], t0)
        src.push([_q("e1", -130, t0 + 1), _q("e2", -115, t0 + 1), _q("e1", -150, t0 + 1, "fanduel")], t0 + 1)
        src.push([_q("e2", -140, t0 + 2)], t0 + 2)
        produced = srv.hub.counters.produced
    # the hub numbered 4 alerts (1 cent and up, every book); the sinks' filter passed 2
    assert produced == 4
    got = [(r.json["event_id"], r.json["delta"], r.headers["x-dropengine-delivery"]) for r in rx.processed]
    epoch = srv.hub.epoch
    assert got == [("e1", -20, f"{epoch}-1"), ("e2", -25, f"{epoch}-4")]
    assert rx.rejected_signatures == 0
    assert delivery.offered == 2 and delivery.status()[f"webhook {url}"]["delivered"] == 2


def test_sinks_sharing_a_host_keep_names_apart(tmp_path: Path) -> None:
    from dropengine.cli.sinks import SinkOptions, sinks_from_options
    from dropengine.deliver.rules import parse_sink_spec

    specs = tuple(parse_sink_spec(f"webhook:https://hooks.example.com/{p}") for p in ("a", "b", "c"))
    built = sinks_from_options(SinkOptions(specs))
    assert [s.name for s in built] == ["webhook https://hooks.example.com", "webhook https://hooks.example.com #2",
                                       "webhook https://hooks.example.com #3"]
    delivery = ServerDelivery([WebhookSink("https://x.example/1"), WebhookSink("https://x.example/2")])
    assert list(delivery.status()) == ["webhook https://x.example", "webhook https://x.example #2"]


def test_sink_query_is_read_as_a_connections_query() -> None:
    flt = sink_filter("threshold=25&types=odds_drop,steam&direction=toward_dog")
    assert (flt.threshold, flt.types, flt.direction) == (25, frozenset({"odds_drop", "steam"}), "toward_dog")
    assert sink_filter("").threshold == 10
    assert sink_filter("sports=basketball_nba,soccer_epl").sports == frozenset({"basketball_nba", "soccer_epl"})
    for bad, name in (("threshold=0", "threshold"), ("types=nope", "types"), ("last_event_id=a-1", "last_event_id"),
                      ("since=5", "since")):
        with pytest.raises(ConfigError, match=f"--sink-query: .*{name}"):
            sink_filter(bad)
