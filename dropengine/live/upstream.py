"""One live upstream stream (one sport, SSE or WebSocket) kept alive by the retry policy.

:class:`UpstreamStream` is the thin loop of SPEC section 8 around pure parts: a transport
connection (:mod:`.sse_client`, :mod:`.ws_client`) yields frame texts and ends with an
:class:`~dropengine.core.retry.Outcome`; :class:`~dropengine.core.retry.Backoff` decides to stop or
to wait; :class:`~dropengine.formats.frames.FrameDecoder` decodes the envelopes, remembers the
resume cursor (``since`` = newest ``last_update`` decoded) and drops what a resumed
connection sends again. Decoding happens here, before anything is handed on, so the
cursor always covers exactly what the caller has received: a reconnect never loses or
repeats a row, and the caller's engine keeps its state (no re-priming).

The API key lives in a :class:`~dropengine.core.keys.Secret`; every message built here is
redacted, third-party exceptions are translated into :class:`UpstreamError` without their
original (which may print the URL), and the ``httpx`` / ``websockets`` loggers get a
redacting filter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core.errors import ConfigError, FeedError
from ..core.keys import redact
from ..core.quote import Quote
from ..core.retry import Backoff, Outcome, Retry, Stop, dead_after_s
from ..core.skips import SkipLog
from ..formats.frames import FrameDecoder
from ..formats.jsonline import decode_json
from .transport import (
    Connector,
    Ended,
    Sender,
    UpstreamConfig,
    auth_parts,
    describe,
    is_sport_key,
    reconnecting,
    secure,
)

__all__ = ["LiveStats", "Received", "StreamState", "UpstreamStream", "fetch_sports"]


@dataclass(frozen=True, slots=True)
class Received:
    """One frame as received: its sport, the parsed envelope, its text (what ``record``
    writes), the quotes decoded from it, and the wall-clock receipt time."""

    sport_key: str
    envelope: Any
    text: str
    quotes: list[Quote]
    received_ms: int


@dataclass(slots=True)
class StreamState:
    """What one sport's stream is doing (for status lines and ``/metrics``)."""

    sport_key: str
    state: str = "starting"  # connecting | open | waiting | stopped | failed
    connections: int = 0
    reconnects: int = 0
    frames: int = 0
    quotes: int = 0
    last_outcome: str = ""
    error: str = ""


@dataclass(slots=True)
class LiveStats:
    """Counters over every stream of a live run; ``skips`` collects bad frames and rows."""

    streams: dict[str, StreamState] = field(default_factory=dict)
    skips: SkipLog = field(default_factory=SkipLog)
    universe_refreshes: int = 0

    def stream(self, sport_key: str) -> StreamState:
        st = self.streams.get(sport_key)
        if st is None:
            st = self.streams[sport_key] = StreamState(sport_key)
        return st

    @property
    def open(self) -> int:
        return sum(1 for s in self.streams.values() if s.state == "open")

    @property
    def reconnects(self) -> int:
        return sum(s.reconnects for s in self.streams.values())

    @property
    def quotes(self) -> int:
        return sum(s.quotes for s in self.streams.values())

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams.values())


_encode_json = msgspec.json.Encoder().encode


class UpstreamStream:
    """One sport's stream, reconnected per SPEC section 8 until a stop or until closed.

    ``decoder`` may be shared by several streams (fan-in): it keeps one resume cursor per
    sport. ``rng`` supplies the jitter (seed it for reproducible delays). ``on_event`` is
    called with a short human-readable line on every connect, retry and stop.
    """

    def __init__(
        self,
        config: UpstreamConfig,
        sport_key: str,
        decoder: FrameDecoder | None = None,
        stats: LiveStats | None = None,
        *,
        rng: random.Random | None = None,
        on_event: Callable[[str], None] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if not is_sport_key(sport_key):
            raise ConfigError(f"sport_key: {sport_key!r} is not a sport key (letters, digits, _ . -)")
        secure(config)
        self.config = config
        self.sport_key = sport_key
        self.decoder = decoder if decoder is not None else FrameDecoder()
        self.stats = stats if stats is not None else LiveStats()
        self.state = self.stats.stream(sport_key)
        self.backoff = Backoff(config.policy)
        self._rng = rng if rng is not None else random.Random()
        self._on_event = on_event
        self._sleep = sleep
        self.subscription: str | None = None
        self._send: Sender | None = None  # the open connection's sender (WebSocket), via _opened
        #: (outcome, decision) per ended connection, for tests and diagnostics
        self.history: list[tuple[Outcome, Retry | Stop]] = []

    def __repr__(self) -> str:
        return f"UpstreamStream({self.config.where(self.sport_key)!r}, state={self.state.state!r})"

    def _event(self, text: str) -> None:
        if self._on_event is not None:
            self._on_event(redact(text, [self.config.api_key.reveal()]))

    async def subscribe(self, event_id: str | None) -> None:
        """WebSocket only: filter the stream to ``event_id`` (``None``: unsubscribe).
        Kept across reconnects (the command is sent again on every new connection)."""
        if self.config.transport != "ws":
            raise ConfigError("subscribe: SSE filters are set in the URL; use StreamQuery(event_id=...)")
        self.subscription = event_id
        if self._send is not None:
            await self._send(self.command())

    def command(self) -> str:
        if self.subscription is None:
            return '{"type":"unsubscribe"}'
        return _encode_json({"type": "subscribe", "event_id": self.subscription}).decode()

    async def _opened(self, send: Sender | None) -> None:
        """A transport's ``on_open``: keep its sender for :meth:`subscribe` and send the
        subscription again (subscriptions are connection-local)."""
        self._send = send
        if send is not None and self.subscription is not None:
            await send(self.command())

    def _connector(self) -> Connector:
        if self.config.transport == "sse":
            from .sse_client import sse_connection

            return sse_connection
        from .ws_client import ws_connection

        return ws_connection

    async def frames(self) -> AsyncGenerator[Received, None]:
        """Frames of the stream across reconnects, decoded; raises :class:`UpstreamError`
        (or :class:`~dropengine.core.errors.AuthError`) when the policy says stop. The loop is
        :func:`~.transport.reconnecting` (the client's too)."""
        connect = self._connector()
        where = self.config.where(self.sport_key)
        key = self.config.api_key.reveal()
        st = self.state

        def opened() -> None:
            st.connections += 1
            st.state = "open"
            self._event(f"{where}: open")

        def ended(outcome: Outcome, decision: Retry | Stop) -> None:
            st.last_outcome = redact(outcome.describe(), [key])
            if isinstance(decision, Stop):
                st.state = "failed"
                st.error = str(decision.error)
                self._event(f"{where}: stopped: {decision.error}")
            else:
                st.state = "waiting"
                st.reconnects += 1
                self._event(f"{where}: {decision.reason}")

        async with aclosing(reconnecting(
                lambda: self._connection(connect), self.backoff, where=where, secrets=[key], rng=self._rng,
                history=self.history, on_open=opened, on_end=ended, wait=self._sleep)) as texts:
            async for text in texts:
                received = self._decode(text, where)
                if received is not None:
                    yield received

    async def _connection(self, connect: Connector) -> AsyncGenerator[str, None]:
        """One connection's frame texts, resuming from the decoder's cursor (``since``)."""
        sport = self.sport_key
        since = self.decoder.cursor(sport)
        params = self.config.query(since)
        self.state.state = "connecting"
        self._event(f"{self.config.where(sport)}: connecting" + (f" (since={since})" if since is not None else ""))
        try:
            async with aclosing(connect(self.config, sport, params, dead_after_s(self.config.heartbeat),
                                        self._opened)) as texts:
                async for text in texts:
                    yield text
        finally:
            self._send = None  # the connection is gone: subscribe() only records until the next

    def _decode(self, text: str, where: str) -> Received | None:
        st = self.state
        st.frames += 1
        skips = self.stats.skips
        try:
            obj = decode_json(text)
        except FeedError as exc:  # any decoder failure (deep nesting too): one bad frame, the stream goes on
            skips.add(f"{where} frame {st.frames}", exc.reason, str(exc))
            return None
        if isinstance(obj, dict) and not isinstance(obj.get("sport_key"), str):
            # every alert carries its sport; the stream's path names it when the frame does not
            obj["sport_key"] = self.sport_key
            text = _encode_json(obj).decode()
        if "\n" in text or "\r" in text:
            text = _encode_json(obj).decode()  # one line per frame in a recording
        quotes = self.decoder.feed(obj, skips, f"{where} frame {st.frames}")
        st.quotes += len(quotes)
        return Received(self.sport_key, obj, text, quotes, int(time.time() * 1000))


async def fetch_sports(config: UpstreamConfig, client: Any | None = None) -> list[str]:
    """The active sport keys of ``GET {base}/v1/sports`` (the ``/all`` universe).

    Raises :class:`Ended` with how it failed (a network error, a status, a 200 whose body is
    not a JSON list of sports): the fan-in decides by the retry policy (a 401/403 is never
    retried; a bad body is retried with backoff) and keeps its current universe meanwhile.
    """
    import httpx

    secure(config)
    url = f"{config.http_base()}/v1/sports"
    headers, params = auth_parts(config)
    own = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=config.connect_timeout_s, trust_env=False)
    try:
        try:
            r = await http.get(url, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise Ended(Outcome.network(describe(exc, config))) from None
        if r.status_code != 200:
            raise Ended(Outcome.http(r.status_code, None, "GET /v1/sports"))
        try:
            doc = decode_json(r.content)
        except FeedError as exc:  # a proxy page, junk, JSON nested too deeply: retried by the policy
            raise Ended(Outcome.http(200, None, f"GET /v1/sports: the answer is not JSON ({exc})"[:200])) from None
    finally:
        if own:
            await http.aclose()
    if not isinstance(doc, list):
        raise Ended(Outcome.http(200, None, "GET /v1/sports: expected a JSON list of sports"))
    keys: list[str] = []
    for item in doc:
        if isinstance(item, dict):
            key, active = item.get("key"), item.get("active", True)
            if isinstance(key, str) and key and active is not False:
                keys.append(key)
        elif isinstance(item, str) and item:
            keys.append(item)
    return keys

