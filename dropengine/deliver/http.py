"""The network sinks: a signed webhook, Discord and Telegram, on :class:`~.base.QueuedSink`.

One request's outcome decides what happens next (:func:`~.rules.classify`): delivered; a
5xx, 408, timeout or network error is retried with exponential backoff and full jitter
(:class:`~.rules.RetrySchedule`; not a TLS certificate or protocol failure: no retry mends
it); a 429 waits for what it asked (Retry-After in seconds or
as an HTTP date, or the body's ``retry_after``) and retries, and so does a 503 that names a
Retry-After; any other status is rejected at once. What is not delivered goes to the
dead-letter file with the reason and the number of requests made. ``timeout_s`` bounds each
attempt whole (an answer trickled byte by byte is a timeout), and only an answer's status
matters: at most 64 KiB of its body is read, never inflated.

A retry after a timeout or a dropped connection may deliver an alert the receiver already
got (the first request may have arrived): the webhook's ``X-Dropengine-Delivery`` id is the
same on every attempt, so a receiver drops an id it has seen. A chat message carries no id:
such a retry may post the same lines twice in the channel (at least once, never lost).
Nothing else is ever sent twice.

The chat sinks send one readable line per alert (:func:`~.rules.alert_line`). Before each
message, and before each retry of one, they wait for the service's rate limit (:class:`~.rules.RateLimiter`; Discord 5
requests per 2 s per webhook and 30 a minute per channel, Telegram 1 message a second per chat and 20 a minute per
group); alerts that queue up meanwhile go out together, several lines in one message (up to
the service's message size), rather than being lost.

URLs and tokens are secrets here: a Discord webhook URL holds its token, a Telegram URL the
bot's, a webhook URL may hold a query token or a ``user:password@``; names, reasons and
errors show only the scheme and host (:func:`~.rules.display_url`), and httpx's own log
records of requests are masked while a sink is open.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import httpx
import msgspec

from ..core.alerts import encode_alert
from ..core.errors import ConfigError
from ..core.keys import Secret
from ..live.redaction import RedactingFilter
from .base import DEFAULT_QUEUE, DeadLetterFile, Queued, QueuedSink
from .rules import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    DISCORD_LIMIT,
    DISCORD_WINDOWS,
    SIGNATURE_HEADER,
    TELEGRAM_LIMIT,
    TIMESTAMP_HEADER,
    RateLimiter,
    RetrySchedule,
    alert_line,
    batch_text,
    classify,
    discord_escape,
    discord_payload,
    display_url,
    parse_sink_spec,
    retry_after_s,
    sign,
    telegram_payload,
    telegram_windows,
)

__all__ = ["TELEGRAM_BASE_URL", "ChatSink", "DiscordSink", "HttpSink", "TelegramSink", "WebhookSink"]

#: Telegram's Bot API (configurable: a test points it at a local receiver).
TELEGRAM_BASE_URL: Final = "https://api.telegram.org"
_USER_AGENT: Final = "dropengine-deliver"
_DECODE: Final = msgspec.json.Decoder()


class _UrlRedaction:
    """The sinks' URL secrets (a Discord webhook's token, a Telegram bot token, a webhook URL's
    query or user:password) masked in httpx's own log records: httpx logs every request's URL at
    INFO, which ``serve --log-level info`` shows. The masking is the live clients' one filter
    (:class:`~dropengine.live.redaction.RedactingFilter`); here it is counted per secret, since
    sinks open and close: attached to ``httpx`` while a sink is open, each sink's secrets
    registered on start and removed on close."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.filter = RedactingFilter()

    def add(self, secrets: Sequence[str]) -> None:
        with self._lock:
            if not self._counts:
                logging.getLogger("httpx").addFilter(self.filter)
            for s in secrets:
                self._counts[s] = self._counts.get(s, 0) + 1
                self.filter.add(s)

    def remove(self, secrets: Sequence[str]) -> None:
        with self._lock:
            for s in secrets:
                n = self._counts.get(s, 0) - 1
                if n > 0:
                    self._counts[s] = n
                else:
                    self._counts.pop(s, None)
                    self.filter.discard(s)
            if not self._counts:
                logging.getLogger("httpx").removeFilter(self.filter)


_REDACTION: Final = _UrlRedaction()


#: The most of an answer's body a sink reads (a 429's JSON is far smaller); beyond it the
#: connection is dropped rather than read.
_BODY_CAP: Final = 64 * 1024


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The answer's raw body when it is at most :data:`_BODY_CAP` bytes, else ``None`` (not
    read further: closing the response drops the connection)."""
    length = response.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > _BODY_CAP:
        return None
    buf = bytearray()
    async for chunk in response.aiter_raw():
        buf += chunk
        if len(buf) > _BODY_CAP:
            return None
    return bytes(buf)


class _Result:
    """How one request ended: ``answer`` (:data:`~.rules.Answer`, or ``retry`` for a timeout
    or network error), a reason for the dead-letter file, and the wait a 429 or 503 asked for."""

    __slots__ = ("answer", "reason", "wait_s")

    def __init__(self, answer: str, reason: str, wait_s: float | None = None) -> None:
        self.answer, self.reason, self.wait_s = answer, reason, wait_s


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS failure behind an httpx error that no retry can mend (a certificate that does
    not verify, TLS spoken to a plain-HTTP port), or ``None``. An abrupt end of a TLS stream
    (EOF) is a network error like any other."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return str(cause.reason or type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return None


def _userinfo_secrets(url: str) -> list[str]:
    """The password of a URL's ``user:password@`` (basic auth), as written and decoded: httpx
    logs each request's URL with it."""
    password = urlsplit(url).password
    if not password:
        return []
    return list(dict.fromkeys((password, unquote(password))))


def _secret(value: Secret | str | None, field: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    try:
        return Secret(value)
    except ConfigError:
        raise ConfigError(f"{field}: must be a non-empty string without whitespace") from None


class HttpSink(QueuedSink):
    """A queued sink that POSTs JSON with retries (see the module docstring). ``schedule``:
    attempts, backoff, request timeout. :attr:`rand` draws the jitter (:func:`random.random`)."""

    def __init__(self, *, schedule: RetrySchedule | None = None, queue_size: int = DEFAULT_QUEUE,
                 dead_letter: DeadLetterFile | Path | str | None = None, workers: int = 1) -> None:
        super().__init__(queue_size=queue_size, dead_letter=dead_letter, workers=workers)
        self.schedule = schedule if schedule is not None else RetrySchedule()
        self._client: httpx.AsyncClient | None = None
        self.rand = random.random

    def _url_secrets(self) -> list[str]:
        """What of this sink's URL must never be logged."""
        return []

    async def _open(self) -> None:
        _REDACTION.add(self._url_secrets())
        self._client = httpx.AsyncClient(timeout=self.schedule.timeout_s, follow_redirects=False,
                                         headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})

    async def _release(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            _REDACTION.remove(self._url_secrets())

    def _request(self, items: Sequence[Queued], attempt: int) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and headers of one attempt at ``items``."""
        raise NotImplementedError

    async def _post(self, items: Sequence[Queued], attempt: int) -> _Result:
        client = self._client
        if client is None:  # released under a worker (a cancelled close): accounted, never an AssertionError
            return _Result("reject", "sink closed")
        url, body, headers = self._request(items, attempt)
        self.counters.requests += 1
        status: int | None = None  # set once the answer's head is in: the answer is known from then
        asked: str | None = None
        content: bytes | None = None
        try:
            # timeout_s bounds the whole attempt: httpx's timeouts are per read, so an answer
            # trickled a byte at a time would hold the sink's worker for ever
            async with asyncio.timeout(self.schedule.timeout_s):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    asked = response.headers.get("retry-after")
                    # only the status matters (and a 429's small JSON): at most _BODY_CAP bytes of
                    # the answer are read, raw (a compressed body is never inflated); a small body
                    # is read whole so the connection can be kept for the next request
                    content = await _read_capped(response)
        except httpx.TimeoutException as exc:
            if status is None:
                return _Result("retry", f"timeout ({type(exc).__name__})")
        except TimeoutError:
            if status is None:
                return _Result("retry", f"timeout (no answer within {self.schedule.timeout_s:g} s)")
        except httpx.HTTPError as exc:  # connection refused, reset, DNS: the request may not have arrived
            if status is None:
                tls = _tls_failure(exc)
                if tls is not None:  # a certificate or protocol mismatch cannot get better by retrying
                    return _Result("reject", f"TLS error ({tls})")
                return _Result("retry", f"network error ({type(exc).__name__})")
        except Exception as exc:  # anything else cannot get better by retrying: accounted, never lost
            return _Result("reject", f"error ({type(exc).__name__})")
        # (a body that stalls or breaks after the head changes nothing: the status was given)
        answer = classify(status)
        reason = f"HTTP {status}"
        wait = None
        if answer == "rate_limited" or status == 503:  # RFC 9110: a 503's Retry-After is the expected outage
            doc: Any = None
            if answer == "rate_limited" and content:
                try:
                    doc = _DECODE.decode(content)
                except msgspec.DecodeError:
                    doc = None
            wait = retry_after_s(asked, doc, time.time())
        return _Result(answer, reason, wait)

    async def _deliver(self, items: Sequence[Queued]) -> None:
        """Send ``items`` (one request) until delivered, rejected, out of attempts or past the
        close deadline; account for them either way."""
        attempt = 0
        try:
            while True:
                attempt += 1
                result = await self._post(items, attempt)
                if result.answer == "ok":
                    self._done(items)
                    return
                if result.answer == "reject":
                    self._fail(items, f"rejected: {result.reason} (not retried)", attempt)
                    return
                if attempt >= self.schedule.attempts:
                    self._fail(items, f"gave up after {attempt} attempts (last: {result.reason})", attempt)
                    return
                wait = self.schedule.wait_s(attempt, self.rand(), result.wait_s)
                if result.answer == "rate_limited" or result.wait_s is not None:  # (a 503 may ask too)
                    self._rate_limited(wait)
                wait = self._retry_wait(wait)
                left = self._time_left()
                if left is not None and wait >= left:
                    self._fail(items, f"not delivered before the close deadline (last: {result.reason})", attempt)
                    return
                self.counters.retried += 1
                await self._sleep(wait)
        except asyncio.CancelledError:
            self._fail(items, f"not delivered before the close deadline ({attempt} attempts)", attempt)
            raise

    def _retry_wait(self, wait_s: float) -> float:
        """The wait before a retry, given the backoff's (or the asked) ``wait_s``: chat sinks
        also keep their rate limit (a retry is a request like any other)."""
        return wait_s

    def _rate_limited(self, wait_s: float) -> None:
        """A 429 (or a 503's Retry-After) asked for ``wait_s``: chat sinks hold every message
        back, not only this one."""

    async def _sleep(self, wait_s: float) -> None:
        """Wait before a retry or a rate-limited send (one place, so a test can see each wait)."""
        await asyncio.sleep(wait_s)


class WebhookSink(HttpSink):
    """POST each alert's wire JSON (:func:`~dropengine.core.alerts.encode_alert`) to ``url``,
    signed with ``secret`` when one is given (see :mod:`.rules`). ``workers`` requests may be
    in flight at once (default 1: alerts arrive in order)."""

    def __init__(self, url: str, secret: Secret | str | None = None, *, schedule: RetrySchedule | None = None,
                 queue_size: int = DEFAULT_QUEUE, dead_letter: DeadLetterFile | Path | str | None = None,
                 workers: int = 1) -> None:
        parse_sink_spec(f"webhook:{url}", "url")  # one check of what a webhook URL is
        super().__init__(schedule=schedule, queue_size=queue_size, dead_letter=dead_letter, workers=workers)
        self._url = url
        self._secret = _secret(secret, "secret")
        self.name = f"webhook {display_url(url)}"

    def _url_secrets(self) -> list[str]:
        query = self._url.partition("?")[2]
        return ([query] if query else []) + _userinfo_secrets(self._url)

    def _request(self, items: Sequence[Queued], attempt: int) -> tuple[str, bytes, dict[str, str]]:
        item = items[0]
        body = encode_alert(item.alert)
        ts = int(time.time())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts), DELIVERY_HEADER: item.delivery,
                   ATTEMPT_HEADER: str(attempt)}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret.reveal(), ts, body)
        return self._url, body, headers

    async def _work_one(self) -> None:
        items = self._take(1)
        if items:
            await self._deliver(items)


class ChatSink(HttpSink):
    """A chat service: one line per alert, rate-limited, several lines per message when alerts
    queue up behind the limit (see the module docstring). ``limit``: characters per message."""

    limit: int = DISCORD_LIMIT

    def __init__(self, windows: Sequence[tuple[int, float]], *, schedule: RetrySchedule | None = None,
                 queue_size: int = DEFAULT_QUEUE, dead_letter: DeadLetterFile | Path | str | None = None) -> None:
        super().__init__(schedule=schedule, queue_size=queue_size, dead_letter=dead_letter, workers=1)
        self.limiter = RateLimiter(windows)
        #: messages sent holding more than one alert (batched behind the rate limit)
        self.batched = 0
        #: the message being sent (one worker: one message at a time)
        self._message = ""

    def _line(self, item: Queued) -> str:
        return alert_line(item.alert)

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _rate_limited(self, wait_s: float) -> None:
        self.limiter.block(self._now() + wait_s)

    def _retry_wait(self, wait_s: float) -> float:
        # one worker: nothing else sends meanwhile, so the limiter's wait now is the wait then
        return max(wait_s, self.limiter.wait_s(self._now()))

    async def _work_one(self) -> None:
        wait = self.limiter.wait_s(self._now())
        if wait > 0:
            left = self._time_left()
            if left is not None and wait >= left:
                items = self._take(len(self._items))
                self._fail(items, "not delivered before the close deadline (rate limit)", 0)
                return
            await self._sleep(wait)  # alerts offered meanwhile join the next message
        queued = self._peek()
        if not queued:
            return
        text, n = batch_text([self._line(i) for i in queued], self.limit)
        items = self._take(n)
        if n > 1:
            self.batched += 1
        self._message = text
        await self._deliver(items)

    async def _post(self, items: Sequence[Queued], attempt: int) -> _Result:
        self.limiter.record(self._now())
        return await super()._post(items, attempt)



class DiscordSink(ChatSink):
    """A Discord channel webhook (``https://discord.com/api/webhooks/ID/TOKEN``): ``{"content":
    ...}`` messages of at most 2000 characters, markdown escaped, mentions off; 5 requests per
    2 s and 30 a minute; a 429's ``retry_after`` honoured. ``windows``: the rate limit (tests shorten it)."""

    limit = DISCORD_LIMIT

    def __init__(self, url: Secret | str, *, schedule: RetrySchedule | None = None, queue_size: int = DEFAULT_QUEUE,
                 dead_letter: DeadLetterFile | Path | str | None = None,
                 windows: Sequence[tuple[int, float]] = DISCORD_WINDOWS) -> None:
        secret = _secret(url, "url")
        assert secret is not None
        parse_sink_spec(f"discord:{secret.reveal()}", "url")
        super().__init__(windows, schedule=schedule, queue_size=queue_size, dead_letter=dead_letter)
        self._url = secret
        self.name = f"discord {display_url(secret.reveal())}"

    def _line(self, item: Queued) -> str:
        return discord_escape(alert_line(item.alert))

    def _url_secrets(self) -> list[str]:
        url = self._url.reveal()
        return [url, url.split("?")[0].rstrip("/").rpartition("/")[2]]  # the URL, and its token

    def _request(self, items: Sequence[Queued], attempt: int) -> tuple[str, bytes, dict[str, str]]:
        body = msgspec.json.encode(discord_payload(self._message))
        return self._url.reveal(), body, {"Content-Type": "application/json"}


class TelegramSink(ChatSink):
    """A Telegram chat through a bot: ``POST {base_url}/bot{token}/sendMessage`` with
    ``chat_id`` and plain ``text`` (at most 4096 characters); 1 message a second per chat, 20 a
    minute per group; a 429's ``parameters.retry_after`` honoured. ``windows``: the rate limit
    (default :func:`~.rules.telegram_windows` of the chat; tests shorten it)."""

    limit = TELEGRAM_LIMIT

    def __init__(self, chat_id: str, token: Secret | str, *, base_url: str = TELEGRAM_BASE_URL,
                 schedule: RetrySchedule | None = None, queue_size: int = DEFAULT_QUEUE,
                 dead_letter: DeadLetterFile | Path | str | None = None,
                 windows: Sequence[tuple[int, float]] | None = None) -> None:
        chat = parse_sink_spec(f"telegram:{chat_id}", "chat_id").target
        parse_sink_spec(f"webhook:{base_url}", "base_url")
        secret = _secret(token, "token")
        if secret is None:
            raise ConfigError("token: a Telegram sink needs the bot token (DROPENGINE_TELEGRAM_TOKEN)")
        super().__init__(telegram_windows(chat) if windows is None else windows, schedule=schedule,
                         queue_size=queue_size, dead_letter=dead_letter)
        self.chat_id = chat
        self._token = secret
        self._base = base_url.rstrip("/")
        self.name = f"telegram {chat}"

    def _url_secrets(self) -> list[str]:
        return [self._token.reveal(), *_userinfo_secrets(self._base)]

    def _request(self, items: Sequence[Queued], attempt: int) -> tuple[str, bytes, dict[str, str]]:
        body = msgspec.json.encode(telegram_payload(self.chat_id, self._message))
        return f"{self._base}/bot{self._token.reveal()}/sendMessage", body, {"Content-Type": "application/json"}
