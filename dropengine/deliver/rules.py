"""The pure rules of delivery: signatures, delivery ids, what an HTTP answer means, retry
delays, the chat services' rate limits, and the one readable line per alert.

No clock, no randomness, no I/O: the sinks (:mod:`.http`) pass the time and a uniform random
number in, so every rule is testable exactly.

Signature (webhooks): ``X-Dropengine-Signature: sha256=<hex HMAC-SHA256(secret,
f"{timestamp}.{body}")>`` with ``X-Dropengine-Timestamp: <unix seconds>`` of the attempt (a
retry is signed again with its own timestamp, so a receiver can refuse stale requests), and
``X-Dropengine-Delivery: <id>``, the same on every attempt of one alert: a receiver drops a
delivery id it already processed (the retry duplicates of :data:`RETRYABLE`, below).

Rate limits (chat services) are sliding windows, not a token bucket: a bucket of 5 tokens
refilling at 2.5/s lets 9 requests through in 2 s, while Discord allows 5 per 2 s per webhook
(and 30 a minute per channel);
a window of "at most N sends in any span of P seconds" is exactly the documented limit.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import unicodedata
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec

from ..core.alerts import Alert, Drop, LineMove, Steam
from ..core.errors import ConfigError, short_repr
from ..core.retry import full_jitter, parse_retry_after

__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERY_HEADER",
    "DISCORD_LIMIT",
    "DISCORD_WINDOWS",
    "SIGNATURE_HEADER",
    "SINK_KINDS",
    "TELEGRAM_LIMIT",
    "TIMESTAMP_HEADER",
    "Answer",
    "RateLimiter",
    "RetrySchedule",
    "SinkSpec",
    "alert_line",
    "batch_text",
    "classify",
    "dead_letter_record",
    "delivery_id",
    "discord_escape",
    "discord_payload",
    "display_url",
    "drain_seconds",
    "parse_sink_spec",
    "retry_after_s",
    "sign",
    "telegram_payload",
    "telegram_windows",
    "verify",
]

TIMESTAMP_HEADER: Final = "X-Dropengine-Timestamp"
SIGNATURE_HEADER: Final = "X-Dropengine-Signature"
DELIVERY_HEADER: Final = "X-Dropengine-Delivery"
ATTEMPT_HEADER: Final = "X-Dropengine-Attempt"

#: A Discord message's ``content`` holds at most this many characters.
DISCORD_LIMIT: Final = 2000
#: A Telegram message's ``text`` holds at most this many characters.
TELEGRAM_LIMIT: Final = 4096
#: Discord webhooks: 5 requests per 2 seconds per webhook, and 30 messages a minute per channel
#: (a limit of the channel itself, discord-api-docs#367: a steady flow at 5 per 2 s meets 429s
#: every minute; the sink batches lines instead, 30 messages of up to 2000 characters a minute).
DISCORD_WINDOWS: Final[tuple[tuple[int, float], ...]] = ((5, 2.0), (30, 60.0))

SINK_KINDS: Final = ("webhook", "discord", "telegram", "ndjson")

_ENC: Final = msgspec.json.Encoder()


# -- signatures and ids --------------------------------------------------------------------
def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of
    ``f"{timestamp}.".encode() + body`` under ``secret``."""
    mac = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str | bytes, timestamp: str | None, body: bytes, signature: str | None, now_s: float,
           tolerance_s: float = 300.0) -> bool:
    """What a receiver checks: the signature matches (constant-time) and the timestamp is
    within ``tolerance_s`` of ``now_s`` (a replayed old request fails)."""
    if timestamp is None or signature is None or not (timestamp.strip().isascii() and timestamp.strip().isdigit()):
        return False
    ts = int(timestamp.strip())
    if abs(now_s - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature.strip())


def delivery_id(body: bytes) -> str:
    """A delivery id derived from the alert's JSON (the first 32 hex digits of its SHA-256):
    the same alert always gets the same id, on every attempt and after a restart."""
    return hashlib.sha256(body).hexdigest()[:32]


# -- answers and retries -------------------------------------------------------------------
Answer = Literal["ok", "retry", "rate_limited", "reject"]


def classify(status: int) -> Answer:
    """What an HTTP status means to a sender: 2xx delivered; 429 rate-limited (wait as told,
    then retry); 5xx and 408 retry with backoff; any other status (4xx, and 3xx: redirects are
    not followed, a webhook that moved is a configuration to fix) rejects without a retry."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 408:
        return "retry"
    return "reject"


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def retry_after_s(header: str | None, body: Any = None, now_s: float | None = None) -> float | None:
    """The wait a 429 (or a 503) asks for: the JSON body's ``retry_after`` (Discord, seconds,
    may be fractional) or ``parameters.retry_after`` (Telegram), else the ``Retry-After``
    header: seconds, or an HTTP date (RFC 9110), read against ``now_s`` (unix seconds, passed
    in: no clock here; a date in the past is 0, and without ``now_s`` a date is not read).
    ``None`` when none is given. The header is read by the one parser,
    :func:`~dropengine.core.retry.parse_retry_after`."""
    if isinstance(body, dict):
        found = _seconds(body.get("retry_after"))
        params = body.get("parameters")
        if found is None and isinstance(params, dict):
            found = _seconds(params.get("retry_after"))
        if found is not None:
            return found
    return parse_retry_after(header, now_s)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """How a sink retries one delivery: at most ``attempts`` requests; before retry ``n``
    (1 = the first retry) it waits ``u * min(cap_s, base_s * 2**(n-1))`` for a uniform ``u``
    in [0, 1) (exponential backoff with full jitter), or what a 429 or 503 asked for
    (Retry-After), at most ``retry_after_cap_s``. ``timeout_s`` bounds each request whole:
    connecting, sending and the answer (a receiver that trickles its answer is given up)."""

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    retry_after_cap_s: float = 60.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigError(f"attempts: {self.attempts!r} must be a positive integer")
        for name in ("base_s", "cap_s", "retry_after_cap_s", "timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0 or (name == "timeout_s" and value == 0):
                raise ConfigError(f"{name}: {value!r} must be a finite number of seconds"
                                  + (" above 0" if name == "timeout_s" else " (0 or more)"))

    def backoff_s(self, retry: int, u: float) -> float:
        """The wait before retry number ``retry`` (1-based) for the random draw ``u``."""
        if retry < 1:
            raise ConfigError(f"retry: {retry!r} must be 1 or more")
        return full_jitter(self.base_s, self.cap_s, retry - 1, min(1.0, max(0.0, u)))

    def wait_s(self, retry: int, u: float, asked_s: float | None) -> float:
        """The wait before retry ``retry``: a 429's or 503's ``asked_s`` (capped), else the backoff."""
        if asked_s is not None:
            return min(asked_s, self.retry_after_cap_s)
        return self.backoff_s(retry, u)

    def scaled(self, factor: float) -> RetrySchedule:
        """Every wait (not the request timeout) times ``factor``: tests and demos."""
        if not (isinstance(factor, int | float) and 0 < factor <= 1):
            raise ConfigError(f"retry scale: {factor!r} must be in (0, 1]")
        return replace(self, base_s=self.base_s * factor, cap_s=self.cap_s * factor,
                       retry_after_cap_s=self.retry_after_cap_s * factor)


def drain_seconds(value: Any, field: str = "drain_s") -> float:
    """``value`` as a drain time (how long a close lets queued alerts go out): a finite number
    of seconds, 0 or more. NaN would mean no drain at all and infinity a close that never
    ends while a receiver hangs: a :class:`ConfigError` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{field}: {value!r} must be a finite number of seconds (0 or more)")
    return float(value)


# -- rate limits ---------------------------------------------------------------------------
def telegram_windows(chat_id: str) -> tuple[tuple[int, float], ...]:
    """Telegram's limits for one chat: about 1 message a second, and at most 20 a minute in a
    group or channel: a numeric id that is negative (``-100...``), or an ``@username`` (only a
    channel or a public supergroup can be addressed by its username, never a user)."""
    if chat_id.startswith(("-", "@")):
        return ((1, 1.0), (20, 60.0))
    return ((1, 1.0),)


class RateLimiter:
    """At most ``limit`` sends in any ``period`` seconds, for each ``(limit, period)`` window,
    and nothing before a time a 429 named (:meth:`block`). Times are seconds on any monotonic
    scale, passed in."""

    __slots__ = ("_blocked_until", "_sent", "windows")

    def __init__(self, windows: Sequence[tuple[int, float]]) -> None:
        for limit, period in windows:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1 or not period > 0:
                raise ConfigError(f"rate window: ({limit!r}, {period!r}) must be a positive count and period")
        self.windows = tuple(windows)
        longest = max((limit for limit, _ in self.windows), default=0)
        self._sent: deque[float] = deque(maxlen=max(longest, 1))
        self._blocked_until = -math.inf

    def wait_s(self, now: float) -> float:
        """How long to wait from ``now`` before the next send is allowed (0: send now)."""
        wait = max(0.0, self._blocked_until - now)
        sent = self._sent
        for limit, period in self.windows:
            if len(sent) >= limit:
                # the limit-th most recent send must have left the window
                wait = max(wait, sent[-limit] + period - now)
        return wait

    def record(self, now: float) -> None:
        """A send happened at ``now``."""
        self._sent.append(now)

    def block(self, until: float) -> None:
        """No send before ``until`` (a 429's retry_after)."""
        self._blocked_until = max(self._blocked_until, until)


# -- messages ------------------------------------------------------------------------------
def _price(value: int | float | None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:g}" if isinstance(value, float) and not value.is_integer() else str(int(value))
    return text if text.startswith("-") else "+" + text


def _number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _signed(value: int | float) -> str:
    text = _number(value)
    return text if text.startswith("-") else "+" + text


def _event(a: Alert) -> str:
    if a.home_team and a.away_team:
        return f"{a.away_team} @ {a.home_team}"
    return f"event {a.event_id}"


def _direction(direction: str) -> str:
    return direction.replace("_", " ")


def _side(a: Drop | LineMove) -> str:
    if a.player is not None:  # a prop: "Nikola Jokic player_points over 25.5"
        label = a.market or a.market_key
        tail = a.side.rpartition(":")[2]
        return f"{a.player} {label} {tail.replace('@', ' ')}"
    return a.side


#: Kept in feed text although category Cf: they join emoji sequences and scripts, and move no line.
_JOINERS: Final = frozenset("\u200c\u200d")


def _one_line(text: str) -> str:
    """``text`` with every control, format and line/paragraph separator character (categories
    Cc, Cf, Zl, Zp: newlines, tabs, U+2028/2029, bidi overrides) as a space, so feed strings
    (team, player, market, bookmaker names) can neither break a line nor forge another one."""
    if text.isprintable():
        return text  # the common case: nothing to replace (isprintable is False for every category above)
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in _JOINERS else c
                   for c in text)


def alert_line(alert: Alert) -> str:
    """One readable line for a chat message: what moved, where, by how much, which way.

    ``DROP basketball_nba · Lakers @ Celtics · pinnacle h2h_home -110 → -120 (-10c, toward favorite)``;
    line moves name the points and key numbers crossed, steam the books, the leader and the lag.
    Always one line: control characters of the feed's text become spaces (the template has none).
    """
    return _one_line(_alert_line(alert))


def _alert_line(alert: Alert) -> str:
    if isinstance(alert, Drop):
        return (f"DROP {alert.sport_key} · {_event(alert)} · {alert.bookmaker} {_side(alert)} "
                f"{_price(alert.prev)} → {_price(alert.new)} ({_signed(alert.delta)}c, "
                f"{_direction(alert.direction)})")
    if isinstance(alert, LineMove):
        keys = f"; key {', '.join(_number(k) for k in alert.key_numbers)}" if alert.key_numbers else ""
        return (f"LINE {alert.sport_key} · {_event(alert)} · {alert.bookmaker} {_side(alert)} "
                f"{_number(alert.prev_line)} → {_number(alert.new_line)} ({_signed(alert.points)} pts, "
                f"{_direction(alert.direction)}{keys}) price {_price(alert.prev_price)} → {_price(alert.new_price)}")
    steam: Steam = alert
    books = ", ".join(b.bookmaker for b in steam.books)
    side = f"{steam.player} {steam.market or steam.market_key} {steam.side.rpartition(':')[2]}" \
        if steam.player is not None else steam.side
    return (f"STEAM {steam.sport_key} · {_event(steam)} · {side} {_direction(steam.direction)} at "
            f"{len(steam.books)} books in {steam.lag_ms / 1000:g}s, {steam.leader} first: {books}")


_DISCORD_SPECIAL: Final = str.maketrans({c: "\\" + c for c in "\\*_~`|>[]<@"})


def discord_escape(text: str) -> str:
    """``text`` with Discord's markdown characters escaped (``h2h_home`` stays as written,
    never half-italic) and no mention can form (``@``, ``<`` escaped; the payload also
    allows no mentions)."""
    return text.translate(_DISCORD_SPECIAL)


def _units(text: str) -> int:
    """``text``'s length in UTF-16 code units: what Telegram (and, to be safe, Discord) count
    against the message limit; a character beyond the BMP (an emoji, a math letter) is two."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF) if not text.isascii() else len(text)


def _cut(text: str, limit: int) -> str:
    if _units(text) <= limit:
        return text
    out, size = [], 1  # the "…"
    for c in text:
        size += 2 if ord(c) > 0xFFFF else 1
        if size > limit:
            break
        out.append(c)
    return "".join(out) + "…"


def batch_text(lines: Sequence[str], limit: int) -> tuple[str, int]:
    """As many of ``lines`` (at least one) as fit in one message of ``limit`` characters
    (counted in UTF-16 code units, as the services count), joined by newlines, and how many
    that is. A single line longer than the limit is cut with ``…`` (a steam of many books);
    the alert is still delivered, shortened."""
    if not lines:
        raise ConfigError("lines: a message needs at least one line")
    if limit < 2:
        raise ConfigError(f"limit: {limit!r} must be 2 or more")
    out = [_cut(lines[0], limit)]
    size = _units(out[0])
    for line in lines[1:]:
        n = _units(line)
        if size + 1 + n > limit:
            break
        out.append(line)
        size += 1 + n
    return "\n".join(out), len(out)


#: Discord's message flag SUPPRESS_EMBEDS (1 << 2), allowed when executing a webhook.
_SUPPRESS_EMBEDS: Final = 1 << 2


def discord_payload(text: str) -> dict[str, Any]:
    """A Discord webhook's JSON body: the message, no mentions parsed, no link previews (a URL
    in feed text, a team name, must not unfurl an image or a page under the alert: Telegram's
    payload disables previews likewise)."""
    return {"content": text, "allowed_mentions": {"parse": []}, "flags": _SUPPRESS_EMBEDS}


def telegram_payload(chat_id: str, text: str) -> dict[str, Any]:
    """A Telegram ``sendMessage`` JSON body (plain text: no parse mode, nothing to escape)."""
    return {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}


def dead_letter_record(alert: Alert, *, reason: str, attempts: int, sink: str, delivery: str, at_ms: int) -> bytes:
    """One line of the dead-letter file: the alert's wire object, why it was not delivered,
    after how many requests (0: never sent), by which sink, its delivery id, and when."""
    doc = {"alert": alert, "reason": reason, "attempts": attempts, "sink": sink, "delivery_id": delivery,
           "at_ms": at_ms}
    return _ENC.encode(doc) + b"\n"


# -- sink specs ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One ``--sink KIND:TARGET``: a webhook or Discord URL, a Telegram chat id, an NDJSON path."""

    kind: Literal["webhook", "discord", "telegram", "ndjson"]
    target: str

    def __repr__(self) -> str:  # a Discord URL holds the webhook's token: never shown
        shown = display_url(self.target) if self.kind in ("webhook", "discord") else self.target
        return f"SinkSpec({self.kind!r}, {shown!r})"


def display_url(url: str) -> str:
    """What messages may show of a URL: scheme, host and port (a webhook's path or query may
    hold a token: Discord's does)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _shown(url: str, hostname: str | None) -> str:
    """What an error may echo of a refused URL: scheme and host when it has a host; else only
    what precedes its first ``/``, ``?``, ``#`` or ``@`` (a host typed without its scheme, or
    ``https:``), and nothing of a bare word (a path, a query or a lone token may be a secret)."""
    if hostname:
        return short_repr(display_url(url))
    cut = min((i for i in (url.find(c) for c in "/?#@") if i >= 0), default=-1)
    if cut >= 0:
        return short_repr(url[:min(cut, 40)] + "...")
    return short_repr(url[:40]) if "." in url or ":" in url else "the value (not shown)"


def _http_url(kind: str, url: str, flag: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a bad port raises)
    except ValueError:  # an unclosed IPv6 bracket, a port out of 0..65535 or not a number
        raise ConfigError(f"{flag}: {kind}: the URL is not valid (its host, or a port that is not a number "
                          "in 0..65535)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag}: {kind}: {_shown(url, parts.hostname)} must be an http:// or https:// URL")


def parse_sink_spec(text: str, flag: str = "--sink") -> SinkSpec:
    """``webhook:URL``, ``discord:URL``, ``telegram:CHAT_ID`` or ``ndjson:PATH`` as a
    :class:`SinkSpec`; a :class:`ConfigError` naming ``flag`` otherwise (a URL is never echoed
    whole: it may hold a token)."""
    kind, sep, target = text.strip().partition(":")
    kind = kind.lower()
    if not sep or kind not in SINK_KINDS:
        shown = short_repr(kind if sep else text[:20], text=20)
        raise ConfigError(f"{flag}: {shown} is not KIND:TARGET with KIND one of {', '.join(SINK_KINDS)} "
                          "(webhook:URL, discord:URL, telegram:CHAT_ID, ndjson:PATH)")
    target = target.strip()
    if not target:
        raise ConfigError(f"{flag}: {kind}: the target after ':' is empty")
    if kind in ("webhook", "discord"):
        _http_url(kind, target, flag)
    elif kind == "telegram":
        body = target[1:] if target.startswith("-") else target
        if not (body.isdigit() or (target.startswith("@") and len(target) > 1)):
            raise ConfigError(f"{flag}: telegram: {short_repr(target, text=40)} is not a chat id "
                              "(a number, negative for groups, or @channelname)")
    return SinkSpec(kind, target)  # type: ignore[arg-type]  # kind checked against SINK_KINDS
