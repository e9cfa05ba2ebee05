"""Discord and Telegram sinks against the real local receiver (uvicorn on 127.0.0.1): the
services' request shapes, one readable line per alert, 429 ``retry_after`` honoured (from
the JSON body as each service sends it), the rate limit respected with the alerts that queue
behind it sent together in one message (none lost, none twice), tokens never shown."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from dropengine.deliver import DiscordSink, RetrySchedule, TelegramSink
from dropengine.deliver.rules import alert_line, discord_escape

from . import test_h15_sinks_webhook as hooks
from .test_h15_sinks_rules import drop
from .test_h15_sinks_webhook import Receiver, dead_lines, until

FAST = RetrySchedule(attempts=4, base_s=0.01, cap_s=0.05, retry_after_cap_s=1.0, timeout_s=2.0)
TOKEN = "123456:AAH-h15-telegram-token-SECRET"

# the receiver fixtures (a real uvicorn receiver, one per module)
receiver_server = hooks.receiver_server
receiver = hooks.receiver


class Waits:
    """Notes each wait a sink takes (retries and rate-limit waits)."""

    waits: list[float]

    async def _sleep(self, wait_s: float) -> None:
        self.waits.append(wait_s)
        await asyncio.sleep(wait_s)


class RecordingDiscord(Waits, DiscordSink):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits = []


class RecordingTelegram(Waits, TelegramSink):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits = []


def test_discord_one_line_per_alert_429_retry_after_and_batching_behind_the_limit(
        receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.plan.extend(["ok", '429json:{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}'])
    hook = f"{url}/api/webhooks/42/SECRET-discord-token"
    a, b, c, d = (drop(i, side="spread_home@-3", market_key="spreads") for i in range(4))

    async def main() -> RecordingDiscord:
        # a window of 1 message per 0.3 s stands in for Discord's 5 per 2 s (same rule, shorter)
        sink = RecordingDiscord(hook, schedule=FAST, windows=((1, 0.3),))
        await sink.start()
        sink.offer(a)
        await until(lambda: sink.counters.delivered == 1)
        for x in (b, c, d):  # behind the limit: they wait together
            sink.offer(x)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert [r.path for r in rx.requests] == ["/api/webhooks/42/SECRET-discord-token"] * 3
    first, limited, batch = (r.json for r in rx.requests)
    assert first == {"content": discord_escape(alert_line(a)), "allowed_mentions": {"parse": []},
                     "flags": 4}  # SUPPRESS_EMBEDS (B15C-17)
    assert "spread\\_home@-3" in first["content"].replace("\\@", "@")  # markdown escaped, the side readable
    assert limited == batch  # the 429'd message is sent again as it was
    assert batch["content"].split("\n") == [discord_escape(alert_line(x)) for x in (b, c, d)]
    # the body's retry_after (longer than the window's rest here: a retry keeps both, B15C-5)
    assert 0.5 in sink.waits
    assert sink.batched == 1
    cnt = sink.counters
    assert (cnt.offered, cnt.delivered, cnt.failed, cnt.retried, cnt.requests) == (4, 4, 0, 1, 3)
    assert "SECRET" not in sink.name + repr(sink)


def test_telegram_send_message_shape_429_parameters_and_group_limits(receiver: tuple[Receiver, str],
                                                                     tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")  # httpx logs each request's URL (serve --log-level info)
    rx, url = receiver
    rx.plan.extend(['429json:{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", '
                    '"parameters": {"retry_after": 0.1}}', "ok", "404"])
    dead = tmp_path / "dead.ndjson"
    a, b = drop(1), drop(2)

    async def main() -> RecordingTelegram:
        sink = RecordingTelegram("-100123", TOKEN, base_url=url, schedule=FAST, dead_letter=dead,
                                 windows=((1, 0.05),))
        await sink.start()
        sink.offer(a)
        await until(lambda: sink.counters.delivered == 1)
        sink.offer(b)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    assert [r.path for r in rx.requests] == [f"/bot{TOKEN}/sendMessage"] * 3
    assert rx.requests[0].json == {"chat_id": "-100123", "text": alert_line(a), "disable_web_page_preview": True}
    assert 0.1 in sink.waits
    [line] = dead_lines(dead)
    assert line["alert"] == json.loads(b.to_json()) and line["reason"] == "rejected: HTTP 404 (not retried)"
    assert line["sink"] == "telegram -100123" and TOKEN not in json.dumps(line) + repr(sink)
    assert "/bot***/sendMessage" in caplog.text and TOKEN not in caplog.text
    cnt = sink.counters
    assert (cnt.offered, cnt.delivered, cnt.failed, cnt.dead_lettered) == (2, 1, 1, 1)


def test_a_burst_behind_the_telegram_limit_arrives_whole_in_few_messages(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    alerts = [drop(i) for i in range(30)]

    async def main() -> TelegramSink:
        sink = TelegramSink("777", TOKEN, base_url=url, schedule=FAST, windows=((1, 0.2),))
        await sink.start()
        for x in alerts:
            sink.offer(x)
        await sink.aclose(5.0)
        return sink

    sink = asyncio.run(main())
    lines = [line for r in rx.processed for line in r.json["text"].split("\n")]
    assert lines == [alert_line(x) for x in alerts]  # all, once each, in order
    assert len(rx.processed) < len(alerts) and sink.counters.delivered == 30
    assert all(len(r.json["text"]) <= 4096 for r in rx.processed)
