"""Breaker 15c: the sinks as an operator sets them up and a library user runs them: the
dead-letter file on a pipe, two sinks on one file, secrets in messages, the signature's
coverage, the sync facade from several threads and at interpreter exit. The findings of
/tmp/notes/breaker15c.md fixed are regression tests now (B15C-10, the unsigned delivery id, is by
design, as GitHub's delivery header: the README tells a receiver to dedupe by the body's hash
where a replay under a new id matters); the rest are controls that held from the start. Bounded waits."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dropengine.core.errors import ConfigError
from dropengine.deliver import BackgroundSinks, DeadLetterFile, RetrySchedule, WebhookSink
from dropengine.deliver.options import SinkOptions, build_sinks
from dropengine.deliver.rules import SinkSpec, parse_sink_spec

from . import test_h15_sinks_webhook as hooks
from .test_h15_sinks_rules import drop
from .test_h15_sinks_webhook import SECRET, Receiver, free_port

receiver_server = hooks.receiver_server
receiver = hooks.receiver


# -- B15C-8 (fixed in 169c2dd): offer() never waits for the dead-letter file -----------------------
def test_offer_never_blocks_on_a_slow_dead_letter_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "dead.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that is there but does not read (yet)
    offered = threading.Event()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", SECRET, queue_size=1,
                           dead_letter=DeadLetterFile(fifo))

        def detect() -> None:  # the detection loop: 2,000 alerts behind a full queue (not started)
            for i in range(2000):
                sink.offer(drop(i))
            offered.set()

        thread = threading.Thread(target=detect, daemon=True)
        thread.start()
        # 2,000 refused offers are a few milliseconds of work; 2 s is plenty unless offer() waits on the pipe
        blocked = not offered.wait(2.0)
    finally:
        while not offered.is_set():  # unblock the writer: drain the pipe
            try:
                os.read(reader, 1 << 16)
            except BlockingIOError:
                time.sleep(0.01)
        os.close(reader)
    assert not blocked, "offer() blocked on the dead-letter pipe: the caller (detection) waited"


# -- B15C-9 (fixed in fa21a9d): a URL without its scheme is not echoed -----------------------------
def test_a_url_without_scheme_is_refused_without_echoing_its_path() -> None:
    for spec in ("webhook:hooks.example.com/T0/B0/XYZ-S3CRET", "discord:discord.com/api/webhooks/12/TOKEN-S3CRET",
                 "webhook:https:/hooks.example.com/hook/S3CRET"):
        with pytest.raises(ConfigError) as err:
            parse_sink_spec(spec)
        assert "S3CRET" not in str(err.value), str(err.value)


# -- B15C-11 (fixed in 834bdc6): two sinks on one file are refused ---------------------------------
def test_sinks_sharing_a_file_lose_nothing_or_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "alerts.ndjson"
    try:
        sinks = build_sinks(SinkOptions(specs=(SinkSpec("ndjson", str(path)), SinkSpec("ndjson", str(path)))))
    except ConfigError as exc:  # refusing the second sink on the same file is a fix too
        assert "alerts.ndjson" in str(exc)
        return

    async def main() -> None:
        for s in sinks:
            await s.start()
        for i in range(3):
            for s in sinks:
                s.offer(drop(i))
        for s in sinks:
            await s.aclose(1.0)

    asyncio.run(main())
    assert len(path.read_text().splitlines()) == 6  # each sink's 3 lines


# -- control: the sync facade from several threads --------------------------------------------
def test_sync_facade_from_several_threads_delivers_each_alert_once(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    sink = WebhookSink(f"{url}/hook", SECRET, workers=2, schedule=RetrySchedule(attempts=3, base_s=0.01, cap_s=0.01))
    with BackgroundSinks(sink, drain_s=10.0) as bg:
        def producer(k: int) -> None:
            for i in range(25):
                bg.offer(drop(k * 100 + i))

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    got = sorted(r.json["event_id"] for r in rx.processed)
    assert got == sorted(f"ev{k * 100 + i}" for k in range(4) for i in range(25))
    c = sink.counters
    assert (c.offered, c.delivered, c.failed, c.dropped) == (100, 100, 0, 0)
    assert bg.offer(drop(1)) is False and sink.counters.dropped == 1  # after close: refused, counted


# -- B15C-12 (fixed in c1c83a5): the sync facade left open still accounts at exit ------------------
_EXIT_SCRIPT = """
from dropengine.core.alerts import Drop
from dropengine.deliver import BackgroundSinks, RetrySchedule, WebhookSink
def drop(i):
    return Drop(sport_key="basketball_nba", event_id=f"ev{{i}}", bookmaker="pinnacle", side="h2h_home", kind="game",
                market_key="h2h", prev=-110, new=-120, delta=-10, direction="toward_favorite",
                last_update=1_747_000_000_000 + i, timestamp=1_747_000_000_100 + i, elapsed_ms=61_000)
sink = WebhookSink("http://127.0.0.1:{port}/hook", "s", dead_letter={dead!r},
                   schedule=RetrySchedule(attempts=50, base_s=5.0, cap_s=5.0, timeout_s=1.0))
bg = BackgroundSinks(sink, drain_s=0.5).start()
for i in range(3):
    bg.offer(drop(i))
print("offered", flush=True)
# the script ends without bg.close(): the daemon thread dies with the interpreter
"""


def test_background_sinks_account_for_the_queue_at_interpreter_exit(tmp_path: Path) -> None:
    dead = tmp_path / "dead.ndjson"
    script = _EXIT_SCRIPT.format(port=free_port(), dead=str(dead))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.strip() == "offered", done.stderr
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert len(lines) == 3, done.stderr


# -- B15C-13 (fixed in 2a30b35): --sink-drain/--sink-timeout refuse NaN and infinity ---------------
def test_sink_drain_and_timeout_refuse_non_finite_values_naming_the_flag(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dropengine.cli.group import main

    # a --dead-letter in a missing directory fails after the flags are read: reaching it means the value passed
    base = ["watch", "--sport", "x", "--base-url", "http://127.0.0.1:9", "--api-key", "k",
            "--sink", "webhook:http://127.0.0.1:9/h", "--dead-letter", str(tmp_path / "no" / "dead.ndjson")]
    env = {"DROPENGINE_TELEGRAM_TOKEN": None, "DROPENGINE_WEBHOOK_SECRET": None}
    for flag in ("--sink-drain", "--sink-timeout"):
        for value in ("nan", "inf"):
            r = CliRunner().invoke(main, [*base, flag, value], env=env)
            assert r.exit_code == 2, r.output
            assert flag in r.stderr and "--dead-letter" not in r.stderr, (flag, value, r.stderr)


# -- control: the signature is over the exact bytes sent (non-ASCII names, fractional prices) -
def test_the_signature_holds_over_non_ascii_and_fractional_prices(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    a = drop(7, home_team="Zürich Lions 🏒", away_team="Škoda \"Plzeň\" \\ ⚽", prev=-110.5, new=-120.25,
             delta=-9.75, player=None)

    async def main() -> None:
        sink = WebhookSink(f"{url}/hook", SECRET, schedule=RetrySchedule(attempts=1, timeout_s=5.0))
        await sink.start()
        sink.offer(a)
        await sink.aclose(5.0)

    asyncio.run(main())
    assert rx.rejected_signatures == 0  # the receiver's stdlib check, over the raw bytes
    [req] = rx.processed
    assert req.json == json.loads(a.to_json()) and "Zürich Lions 🏒".encode() in req.body


# -- B15C-16 (fixed in c1c83a5): a failed facade start leaves no thread ----------------------------
def test_a_failed_start_of_the_sync_facade_leaves_no_thread() -> None:
    def ours() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "dropengine sinks"}

    before = ours()
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", SECRET)
    # the same sink twice: its second start() refuses
    with pytest.raises(ConfigError, match="started already"), BackgroundSinks(sink, sink):
        pass
    left = ours() - before
    for t in left:
        t.join(1.0)
    assert not [t for t in left if t.is_alive()]


# -- control: one hanging receiver does not hold back another sink ---------------------------
def test_a_hanging_sink_does_not_hold_back_a_fast_one(receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    from .test_h15_breaker15c_http import RawReceiver, raw_receiver

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rx: RawReceiver) -> None:
        if await rx.read_request(reader) is not None:
            while not rx.stopping:
                await asyncio.sleep(0.02)

    fast_rx, url = receiver
    dead = tmp_path / "dead.ndjson"
    shared = DeadLetterFile(dead)
    with raw_receiver(hang) as slow_rx:
        fast = WebhookSink(f"{url}/hook", SECRET, dead_letter=shared)
        slow = WebhookSink(f"{slow_rx.url}/hook", SECRET, dead_letter=shared,
                           schedule=RetrySchedule(attempts=2, timeout_s=30.0))
        with BackgroundSinks(fast, slow, drain_s=0.5) as bg:
            assert bg.offer_many([drop(i) for i in range(10)]) == 10
            deadline = time.monotonic() + 10
            while len(fast_rx.processed) < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
    assert sorted(r.json["event_id"] for r in fast_rx.processed) == sorted(f"ev{i}" for i in range(10))
    assert (fast.counters.delivered, slow.counters.delivered, slow.counters.failed) == (10, 0, 10)
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert sorted(x["alert"]["event_id"] for x in lines) == sorted(f"ev{i}" for i in range(10))
    assert {x["sink"] for x in lines} == {slow.name}
