"""Breaker 15c: the Discord and Telegram sinks against the sinks' real local receiver
(uvicorn on 127.0.0.1, tests/test_h15_sinks_webhook.py's :class:`Receiver`), as a hostile feed
and a strict service would treat them. Its findings (/tmp/notes/breaker15c.md) are fixed:
these are their regression tests, with controls that held from the start. Every wait is bounded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dropengine.deliver import DiscordSink, RetrySchedule, TelegramSink
from dropengine.deliver.rules import alert_line, batch_text, discord_escape, telegram_windows

from . import test_h15_sinks_webhook as hooks
from .test_h15_sinks_rules import drop
from .test_h15_sinks_webhook import Receiver, until

FAST = RetrySchedule(attempts=4, base_s=0.01, cap_s=0.05, retry_after_cap_s=1.0, timeout_s=2.0)
TOKEN = "123456:AAH-breaker15c-SECRET"

receiver_server = hooks.receiver_server
receiver = hooks.receiver


class Sends:
    """Notes the loop time of each request a chat sink makes (the sender's own clock, so the
    window check below is exact, not a timing measurement)."""

    sends: list[float]

    async def _post(self, items: Any, attempt: int) -> Any:
        self.sends.append(self._now())  # type: ignore[attr-defined]
        return await super()._post(items, attempt)  # type: ignore[misc]


class CountingDiscord(Sends, DiscordSink):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends = []


def most_in_any_window(times: list[float], period: float) -> int:
    return max((sum(1 for t in times if s <= t < s + period) for s in times), default=0)


# -- B15C-5 (fixed in 3cf8bc7): a retried chat message keeps the rate limit ------------------------
def test_a_retried_chat_message_still_keeps_the_rate_limit(receiver: tuple[Receiver, str]) -> None:
    rx, url = receiver
    rx.plan.extend(["ok", "500", "ok"])
    hook = f"{url}/api/webhooks/15/breaker15c-discord-token"

    async def main() -> CountingDiscord:
        # 2 requests per 60 s stands in for Discord's 5 per 2 s (the same rule, a window no test outlives)
        sink = CountingDiscord(hook, schedule=FAST, windows=((2, 60.0),))
        await sink.start()
        sink.offer(drop(1))
        await until(lambda: sink.counters.delivered == 1)
        sink.offer(drop(2))  # the second request of the window: answered 500
        await until(lambda: len(rx.requests) >= 2)
        deadline = time.monotonic() + 1.0  # the backoff (<= 0.05 s) passes 20 times over; a retry that waits
        while len(rx.requests) < 3 and time.monotonic() < deadline:  # for the window comes after this
            await asyncio.sleep(0.01)
        await sink.aclose(0.2)  # the window has ~60 s to go: the retry is not allowed before the deadline
        return sink

    sink = asyncio.run(main())
    assert most_in_any_window(sink.sends, 60.0) <= 2, f"{len(sink.sends)} requests in one 60 s window of 2"
    assert len(rx.requests) == 2


# -- B15C-6 (fixed in 2216760): a Telegram channel by @username has the group limit ----------------
def test_a_telegram_channel_by_username_has_the_group_limit() -> None:
    assert (20, 60.0) in telegram_windows("-1001234567890")  # control: a numeric group id
    assert (20, 60.0) in telegram_windows("@breaker15c_channel")


# -- B15C-7 (fixed in cfe81e5): feed text cannot forge lines in a chat message ---------------------
def test_one_alert_is_one_line_whatever_the_feed_names_hold() -> None:
    forged = "Boston Celtics\nDROP basketball_nba · Fake @ Game · pinnacle h2h_home +500 → -900 (-1400c)"
    a = drop(1, home_team=forged, away_team="Lakers\r\n# BIG HEADER", player=None)
    line = alert_line(a)
    assert "\n" not in line and "\r" not in line
    text, n = batch_text([discord_escape(line), discord_escape(alert_line(drop(2)))], 2000)
    assert n == 2 and len(text.split("\n")) == 2  # two alerts, two lines


def test_control_markup_in_team_names_reaches_chat_literally(receiver: tuple[Receiver, str]) -> None:
    """Telegram is sent as plain text (no parse_mode): ``<b>``, ``_``, ``*`` arrive as written;
    Discord's copy is escaped and mentions cannot form."""
    rx, url = receiver
    a = drop(3, home_team="<b>Celtics_</b> *FC*", away_team="@everyone [x](http://evil.example)")

    async def main() -> None:
        tg = TelegramSink("-100123", TOKEN, base_url=f"{url}/tg", schedule=FAST, windows=((1, 0.01),))
        dc = DiscordSink(f"{url}/api/webhooks/1/tok", schedule=FAST, windows=((1, 0.01),))
        for s in (tg, dc):
            await s.start()
            s.offer(a)
        await asyncio.gather(tg.aclose(5.0), dc.aclose(5.0))

    asyncio.run(main())
    by_path = {r.path.split("/")[1]: r.json for r in rx.processed}
    assert by_path["tg"]["text"] == alert_line(a) and "parse_mode" not in by_path["tg"]
    content = by_path["api"]["content"]
    assert "\\@everyone" in content and "\\[x\\](" in content  # escaped: no mention, no masked link
    assert by_path["api"]["allowed_mentions"] == {"parse": []}


# -- B15C-15 (fixed in 4183995): Discord's per-channel 30 messages a minute ------------------------
def test_discord_keeps_the_channel_limit_of_30_a_minute() -> None:
    from dropengine.deliver.rules import DISCORD_WINDOWS, RateLimiter

    limiter = RateLimiter(DISCORD_WINDOWS)
    now, sent = 0.0, 0
    while now < 60.0:  # a sender that waits as told, for one minute
        now += limiter.wait_s(now)
        if now >= 60.0:
            break
        limiter.record(now)
        sent += 1
    assert sent <= 30


# -- B15C-17 (fixed in be86462): a URL in feed text does not unfurl in Discord ---------------------
def test_discord_messages_suppress_link_embeds_as_telegram_does() -> None:
    from dropengine.deliver.rules import discord_payload, telegram_payload

    assert telegram_payload("-100", "x")["disable_web_page_preview"] is True  # control
    line = discord_escape(alert_line(drop(1, home_team="https://evil.example/phish.png")))
    assert "https://evil.example/phish.png" in line  # a URL survives escaping: Discord links and unfurls it
    assert int(discord_payload(line).get("flags", 0)) & (1 << 2)  # SUPPRESS_EMBEDS
