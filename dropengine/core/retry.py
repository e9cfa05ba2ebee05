"""The upstream client's retry policy (SPEC section 8) as one pure, table-driven module.

Both transports describe how a connection ended as an :class:`Outcome` (an HTTP status, a
WebSocket close code, a network error, heartbeat silence, or a clean end of stream) and
ask :meth:`Backoff.decide` what to do, passing how long the connection was healthy and a
uniform random number for the jitter. The answer is :class:`Stop` (with the typed error to
raise) or :class:`Retry` (after ``delay_s``). No clock, no randomness, no I/O here: the
caller supplies time and chance, so every row of the table is testable exactly.

The table (:data:`CLOSE_RULES`, :data:`HTTP_RULES`, :func:`rule_for`):

==========================================  ==================================================
ending                                      decision
==========================================  ==================================================
HTTP 401, 403                               stop (:class:`AuthError`)
close 1008, 4001, 4003, 4401                stop (:class:`AuthError`)
HTTP 429, close 4002                        retry after ``Retry-After`` (and at least the
                                            backoff, so ``Retry-After: 0`` is no hot loop);
                                            without one, long (half the cap to the cap)
close 1012 (service restart)                retry, backoff but at least ``restart_wait_s`` (5 s)
HTTP 5xx, 408; close 1006, 1011, 1013;      retry with exponential backoff and full jitter
network error; heartbeat silence; clean
end of stream; close 1000/1001
other HTTP 4xx (400, 404, ...)              stop (:class:`UpstreamError`): retrying cannot fix
                                            a request the upstream calls malformed
other close codes                           retry with backoff (the safe default: an unknown
                                            code is not proof the key is bad)
==========================================  ==================================================

Backoff: ``delay = u * min(cap_s, base_s * 2**attempt)`` (full jitter), never below
``floor_s`` so a run of small random draws cannot become a hot loop. ``attempt`` counts
consecutive failures and goes back to 0 only after a connection stayed healthy for
``healthy_s`` (10 s): a server that accepts and closes at once (flapping) keeps doubling.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Literal

from .errors import AuthError, ConfigError, UpstreamError

__all__ = [
    "CLOSE_RULES",
    "HTTP_RULES",
    "Backoff",
    "Outcome",
    "Retry",
    "RetryPolicy",
    "Rule",
    "Stop",
    "Wait",
    "dead_after_s",
    "full_jitter",
    "parse_retry_after",
    "rule_for",
]


class Wait(Enum):
    """How a retry's delay is chosen."""

    BACKOFF = "backoff"  # exponential backoff with full jitter
    RESTART = "restart"  # backoff, but at least restart_wait_s
    RETRY_AFTER = "retry-after"  # the server's Retry-After, else long


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: stop (auth or not), or retry with a kind of wait."""

    retry: bool
    wait: Wait = Wait.BACKOFF
    auth: bool = False
    why: str = ""


_STOP_AUTH: Final = Rule(False, auth=True)
_BACKOFF: Final = Rule(True, Wait.BACKOFF)

#: WebSocket close codes with a rule of their own; every other code retries with backoff.
CLOSE_RULES: Final[dict[int, Rule]] = {
    1000: Rule(True, Wait.BACKOFF, why="normal closure: the server ended the stream"),
    1001: Rule(True, Wait.BACKOFF, why="going away"),
    1006: Rule(True, Wait.BACKOFF, why="abnormal closure (network-level disconnect)"),
    1008: Rule(False, auth=True, why="invalid API key"),
    1011: Rule(True, Wait.BACKOFF, why="server error"),
    1012: Rule(True, Wait.RESTART, why="service restart"),
    1013: Rule(True, Wait.BACKOFF, why="try again later"),
    4001: Rule(False, auth=True, why="authentication required / tier not allowed"),
    4002: Rule(True, Wait.RETRY_AFTER, why="concurrent connection cap reached"),
    4003: Rule(False, auth=True, why="missing API key"),
    4401: Rule(False, auth=True, why="API key revoked, expired or unknown"),
}

#: HTTP statuses with a rule of their own (see :func:`rule_for` for the ranges).
HTTP_RULES: Final[dict[int, Rule]] = {
    401: Rule(False, auth=True, why="missing or invalid API key"),
    403: Rule(False, auth=True, why="API key not allowed"),
    408: Rule(True, Wait.BACKOFF, why="request timeout"),
    429: Rule(True, Wait.RETRY_AFTER, why="too many connections for this key"),
}

OutcomeKind = Literal["http", "close", "network", "silence", "ended"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one connection attempt ended. Build with the class methods."""

    kind: OutcomeKind
    code: int | None = None
    retry_after_s: float | None = None
    detail: str = ""

    @classmethod
    def http(cls, status: int, retry_after_s: float | None = None, detail: str = "") -> Outcome:
        return cls("http", status, retry_after_s, detail)

    @classmethod
    def close(cls, code: int, detail: str = "", retry_after_s: float | None = None) -> Outcome:
        return cls("close", code, retry_after_s, detail)

    @classmethod
    def network(cls, detail: str) -> Outcome:
        return cls("network", None, None, detail)

    @classmethod
    def silence(cls, seconds: float) -> Outcome:
        return cls("silence", None, None, f"no frame for {seconds:g} s (2x the heartbeat interval)")

    @classmethod
    def ended(cls, detail: str = "the server ended the stream") -> Outcome:
        return cls("ended", None, None, detail)

    def describe(self) -> str:
        if self.kind == "http":
            head = f"HTTP {self.code}"
        elif self.kind == "close":
            head = f"close {self.code}"
        elif self.kind == "network":
            head = "network error"
        elif self.kind == "silence":
            head = "heartbeat silence"
        else:
            head = "end of stream"
        return f"{head}: {self.detail}" if self.detail else head


def rule_for(outcome: Outcome) -> Rule:
    """The table row for ``outcome``."""
    if outcome.kind == "http":
        status = outcome.code if outcome.code is not None else 0
        rule = HTTP_RULES.get(status)
        if rule is not None:
            return rule
        if 500 <= status <= 599:
            return Rule(True, Wait.BACKOFF, why="server error")
        if 400 <= status <= 499:
            return Rule(False, why="the upstream rejected the request")
        return Rule(True, Wait.BACKOFF, why="unexpected response")  # 2xx without a stream, 3xx
    if outcome.kind == "close":
        return CLOSE_RULES.get(outcome.code if outcome.code is not None else 1005, _BACKOFF)
    return _BACKOFF  # network error, heartbeat silence, clean end of stream


@dataclass(frozen=True, slots=True)
class Stop:
    """Give up: raise ``error``."""

    error: UpstreamError


@dataclass(frozen=True, slots=True)
class Retry:
    """Reconnect after ``delay_s`` seconds; ``attempt`` is the failure count so far (1-based)."""

    delay_s: float
    attempt: int
    reason: str


Decision = Stop | Retry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The numbers of SPEC section 8 (tests scale them down; the rules stay the same)."""

    base_s: float = 1.0
    cap_s: float = 30.0
    healthy_s: float = 10.0
    restart_wait_s: float = 5.0
    floor_s: float = 0.1

    def __post_init__(self) -> None:
        for name in ("base_s", "cap_s", "healthy_s", "restart_wait_s", "floor_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}: {value!r} must be a finite number >= 0")
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ConfigError(f"base_s/cap_s: need 0 < base_s <= cap_s, got {self.base_s!r}/{self.cap_s!r}")

    def scaled(self, factor: float) -> RetryPolicy:
        """Every duration multiplied by ``factor`` (for tests and demos)."""
        return RetryPolicy(
            self.base_s * factor, self.cap_s * factor, self.healthy_s * factor,
            self.restart_wait_s * factor, self.floor_s * factor,
        )


@dataclass(slots=True)
class Backoff:
    """The policy's state for one upstream stream: consecutive failures so far."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempt: int = 0

    def decide(self, outcome: Outcome, healthy_for_s: float, u: float, where: str = "upstream") -> Decision:
        """What to do after ``outcome``.

        ``healthy_for_s``: how long the connection that just ended was up and delivering
        (0 if it never opened). ``u``: a uniform random number in ``[0, 1)`` for the jitter.
        ``where`` names the stream in the error message.
        """
        if not 0.0 <= u <= 1.0:
            raise ConfigError(f"u: {u!r} must be in [0, 1]")
        rule = rule_for(outcome)
        if not rule.retry:
            message = f"{where}: {outcome.describe()} ({rule.why}); not retried"
            status = outcome.code if outcome.kind == "http" else None
            close_code = outcome.code if outcome.kind == "close" else None
            cls = AuthError if rule.auth else UpstreamError
            return Stop(cls(message, status=status, close_code=close_code))
        p = self.policy
        if healthy_for_s >= p.healthy_s:
            self.attempt = 0
        jittered = full_jitter(p.base_s, p.cap_s, self.attempt, u)
        self.attempt += 1
        delay = max(jittered, p.floor_s)
        if rule.wait is Wait.RETRY_AFTER:
            if outcome.retry_after_s is not None and math.isfinite(outcome.retry_after_s):
                # at least what the server asked; a "Retry-After: 0" still backs off
                delay = max(outcome.retry_after_s, delay)
            else:
                delay = p.cap_s * (0.5 + 0.5 * u)  # "back off long"
        elif rule.wait is Wait.RESTART:
            delay = max(delay, p.restart_wait_s)
        return Retry(delay, self.attempt, f"{outcome.describe()}; retry {self.attempt} in {delay:.2f} s")


def dead_after_s(heartbeat_s: float) -> float:
    """No frame for this long means the connection is dead (SPEC: twice the heartbeat)."""
    return 2.0 * heartbeat_s


#: delay-seconds (RFC 9110: digits), read leniently with a fraction ("1.5": some services send one)
_DELAY_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds, or an HTTP date read against ``now_s`` (unix
    seconds, given by the caller: core reads no clock; a date past is 0). ``None`` when absent,
    unreadable, or a date without ``now_s`` (the live policy then backs off long instead).
    The one Retry-After parser: the live clients and the delivery sinks call it."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and _DELAY_SECONDS.fullmatch(text):
        return float(text)
    if now_s is None or not math.isfinite(now_s):
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP date is GMT ("-0000" reads as naive)
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now_s)


def full_jitter(base_s: float, cap_s: float, n: int, u: float) -> float:
    """Exponential backoff with full jitter: ``u * min(cap_s, base_s * 2**n)`` for the ``n``-th
    (0-based) consecutive retry and a uniform draw ``u`` in [0, 1]. The live policy
    (:meth:`Backoff.decide`) and the delivery sinks' schedule both wait this."""
    return u * min(cap_s, base_s * 2.0 ** min(n, 62))
