"""What the upstream loop and its transports share: the configuration, the end signal, auth.

:mod:`.upstream` (the retry loop) and the transports (:mod:`.sse_client`, :mod:`.ws_client`)
all import this module and nothing of each other: a transport is a :data:`Connector`, an
async generator of frame texts that ends by raising :class:`Ended`, and it reaches the
stream only through the ``on_open`` callback it is given (the WebSocket hands over its
sender there; the stream sends its subscription through it). Keys stay in a
:class:`~dropengine.core.keys.Secret`, and every message built from a third-party exception
goes through :func:`describe` (redacted, type and message only).
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ..core.errors import ConfigError, short_repr
from ..core.keys import Secret, redact
from ..core.retry import Backoff, Outcome, Retry, RetryPolicy, Stop
from ..core.skips import printable
from ..formats.query import HEARTBEAT_RANGE, StreamQuery
from .redaction import install_redaction

__all__ = [
    "AUTH_MODES",
    "DEFAULT_HEARTBEAT_S",
    "TRANSPORTS",
    "Connector",
    "Ended",
    "OnOpen",
    "Sender",
    "UpstreamConfig",
    "auth_parts",
    "check_http_url",
    "describe",
    "is_sport_key",
    "reconnecting",
    "redacted",
    "secure",
    "shown_url",
]

TRANSPORTS: Final = ("sse", "ws")
AUTH_MODES: Final = ("header", "query", "subprotocol")
#: The vendor's heartbeat defaults: SSE ``heartbeat_s`` default 5, WebSocket idle 30 s.
DEFAULT_HEARTBEAT_S: Final = {"sse": 5.0, "ws": 30.0}
_LOGGERS: Final = ("httpx", "httpcore", "websockets", "websockets.client")
T = TypeVar("T")
_SPORT_KEY: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: The ``user:password@`` of a URL (httpx sends it as basic auth): never shown.
_USERINFO: Final = re.compile(r"(?<=//)[^/?#@]*@")


def shown_url(url: str) -> str:
    """A URL as messages, reprs and ``/healthz`` show it: without its ``user:password@`` (httpx
    sends those as basic auth), its query or fragment (``?apiKey=``), and any key redacted."""
    text = _USERINFO.sub("", url)
    return redact(text.split("?", 1)[0].split("#", 1)[0])


def check_http_url(url: object, field: str, schemes: Sequence[str] = ("http", "https")) -> SplitResult:
    """The one check of a base URL (the client's, the upstream's): a string with a scheme of
    ``schemes``, a host, a port in 0..65535 (when given), no query or fragment (a key goes in
    ``api_key``). :class:`ConfigError` naming ``field``, the URL shown by :func:`shown_url`."""
    if not isinstance(url, str):
        raise ConfigError(f"{field}: {short_repr(url)} is not a URL")
    wanted = " or ".join(f"{s}://" for s in schemes)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError as exc:  # an unclosed IPv6 bracket, a port out of range or not a number
        raise ConfigError(f"{field}: {short_repr(shown_url(url))} is not a valid URL ({exc})") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{field}: {short_repr(shown_url(url))} is not a URL with a host and the scheme {wanted}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{field}: give the key with api_key (and the filters as arguments), not in the URL")
    return parts


def is_sport_key(text: object) -> bool:
    """Whether ``text`` can be a sport key (it goes into a URL path)."""
    return isinstance(text, str) and _SPORT_KEY.fullmatch(text) is not None


class Ended(Exception):  # a signal between transport and loop, not an error
    """Raised by a transport connection when it ends; carries how it ended."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.describe())
        self.outcome = outcome


@dataclass(frozen=True, slots=True, repr=False)
class UpstreamConfig:
    """Where and how to connect. ``repr`` never shows the key (it is a :class:`Secret`) nor a
    ``user:password`` in ``base_url`` (:func:`shown_url`).

    ``filters`` is the stream's query without ``heartbeat_s``, which is set here
    (``heartbeat_s``) since it is also the dead-connection rule."""

    base_url: str
    api_key: Secret
    transport: Literal["sse", "ws"] = "sse"
    auth: Literal["header", "query", "subprotocol"] = "header"
    filters: StreamQuery = field(default_factory=StreamQuery)
    heartbeat_s: float | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    connect_timeout_s: float = 10.0
    universe_refresh_s: float = 300.0

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, Secret):
            raise ConfigError("api_key: wrap the key in dropengine.core.keys.Secret")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport: {self.transport!r} is not one of {', '.join(TRANSPORTS)}")
        if self.auth not in AUTH_MODES:
            raise ConfigError(f"auth: {self.auth!r} is not one of {', '.join(AUTH_MODES)}")
        if self.auth == "subprotocol" and self.transport != "ws":
            raise ConfigError("auth: 'subprotocol' (Sec-WebSocket-Protocol) works only with transport 'ws'")
        check_http_url(self.base_url, "base_url", ("http", "https", "ws", "wss"))
        if not isinstance(self.filters, StreamQuery):
            raise ConfigError(f"filters: {type(self.filters).__name__} is not a StreamQuery")
        if self.filters.heartbeat_s is not None:
            raise ConfigError("filters: heartbeat_s is set with UpstreamConfig(heartbeat_s=...), not in the filters")
        low, high = HEARTBEAT_RANGE
        if self.heartbeat_s is not None and not low <= self.heartbeat_s <= high:
            raise ConfigError(f"heartbeat_s: {self.heartbeat_s!r} is outside {low}..{high}")
        if self.connect_timeout_s <= 0 or self.universe_refresh_s <= 0:
            raise ConfigError("connect_timeout_s and universe_refresh_s must be > 0")

    @property
    def heartbeat(self) -> float:
        return self.heartbeat_s if self.heartbeat_s is not None else DEFAULT_HEARTBEAT_S[self.transport]

    def query(self, since: int | None) -> dict[str, str]:
        """The stream's query parameters (no key): the filters, the resume cursor ``since``
        (overriding the configured one) and the asked heartbeat."""
        q = self.filters
        if self.heartbeat_s is not None:
            q = q.replace(heartbeat_s=int(self.heartbeat_s))
        return q.params(since)

    def __repr__(self) -> str:
        return (f"UpstreamConfig({shown_url(self.base_url)!r}, transport={self.transport!r}, auth={self.auth!r}, "
                f"filters={self.filters!r}, heartbeat_s={self.heartbeat_s!r})")

    def shown_base(self) -> str:
        """:meth:`http_base` as messages and ``/healthz`` show it (no ``user:password``)."""
        return shown_url(self.http_base())

    def http_base(self) -> str:
        p = urlsplit(self.base_url)
        scheme = {"ws": "http", "wss": "https"}.get(p.scheme, p.scheme)
        return urlunsplit((scheme, p.netloc, p.path.rstrip("/"), "", ""))

    def ws_base(self) -> str:
        p = urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(p.scheme, p.scheme)
        return urlunsplit((scheme, p.netloc, p.path.rstrip("/"), "", ""))

    def stream_url(self, sport_key: str) -> str:
        if self.transport == "sse":
            return f"{self.http_base()}/v1/sse/odds/{sport_key}"
        return f"{self.ws_base()}/ws/odds/{sport_key}"

    def where(self, sport_key: str) -> str:
        """How messages name a stream: transport, URL path (no key), sport."""
        return f"{self.transport} {urlsplit(self.stream_url(sport_key)).path}"


#: Sends one text frame upstream (WebSocket only).
Sender = Callable[[str], Awaitable[None]]
#: Called by a transport that can send upstream (WebSocket) once its connection is open,
#: with its sender; a transport without an upstream channel (SSE) never calls it.
OnOpen = Callable[[Sender | None], Awaitable[None]]
#: One connection: ``connect(config, sport_key, params, dead_after_s, on_open)`` yields frame
#: texts and ends by raising :class:`Ended`; ``params`` is the query without the key.
Connector = Callable[[UpstreamConfig, str, dict[str, str], float, OnOpen], AsyncGenerator[str, None]]


def secure(config: UpstreamConfig) -> None:
    """Install the redacting log filter for ``config``'s key on the transport libraries' loggers."""
    install_redaction(_LOGGERS, [config.api_key.reveal()])


def auth_parts(config: UpstreamConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters that carry the key (subprotocol auth: neither)."""
    key = config.api_key.reveal()
    if config.auth == "header":
        return {"X-API-Key": key}, {}
    if config.auth == "query":
        return {}, {"apiKey": key}
    return {}, {}


def describe(exc: BaseException, config: UpstreamConfig) -> str:
    """A third-party exception as a redacted one-liner (its type and message only)."""
    text = str(exc) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}", [config.api_key.reveal()])[:300]


def redacted(text: str, config: UpstreamConfig, limit: int = 160) -> str:
    """``text`` (a close reason, an error page) without the key, cut to ``limit`` characters."""
    return redact(text, [config.api_key.reveal()])[:limit]


async def reconnecting(
    connect: Callable[[], AsyncGenerator[T, None]],
    backoff: Backoff,
    *,
    where: str,
    secrets: Sequence[str],
    rng: random.Random,
    history: list[tuple[Outcome, Retry | Stop]],
    on_open: Callable[[], None],
    on_end: Callable[[Outcome, Retry | Stop], None],
    wait: Callable[[float], Awaitable[Any]],
    closed: Callable[[], bool] = lambda: False,
    keep_history: int | None = None,
) -> AsyncGenerator[T, None]:
    """SPEC 8's loop, the one both live paths run (the upstream's :class:`~.upstream.UpstreamStream`
    and :class:`~dropengine.client.AsyncDropClient`): what each ``connect()`` yields, across
    reconnects. A connection is open at its first item (``on_open``); it ends by raising
    :class:`Ended` (or returning: the end of the stream); its outcome's detail is redacted
    (``secrets``) and made printable (an error page may echo the request and hold escapes);
    :class:`~dropengine.core.retry.Backoff` decides (healthy for how long the connection was
    open); the decision goes into ``history`` (the newest ``keep_history``) and to ``on_end``
    (the caller's counters and lines); a :class:`~dropengine.core.retry.Stop` raises its error,
    a :class:`~dropengine.core.retry.Retry` waits ``wait(delay)``. ``closed()`` true after a
    connection or a wait ends the loop quietly (the caller closed it)."""
    while True:
        opened_at: float | None = None
        outcome: Outcome
        try:
            async with aclosing(connect()) as items:
                async for item in items:
                    if opened_at is None:
                        opened_at = time.monotonic()
                        on_open()
                    yield item
            outcome = Outcome.ended()
        except Ended as end:
            outcome = end.outcome
        if closed():
            return
        if outcome.detail:
            outcome = dataclasses.replace(outcome, detail=printable(redact(outcome.detail, list(secrets))))
        healthy = time.monotonic() - opened_at if opened_at is not None else 0.0
        decision = backoff.decide(outcome, healthy, rng.random(), where)
        history.append((outcome, decision))
        if keep_history is not None:
            del history[:-keep_history]
        on_end(outcome, decision)
        if isinstance(decision, Stop):
            raise decision.error
        await wait(decision.delay_s)
        if closed():
            return
