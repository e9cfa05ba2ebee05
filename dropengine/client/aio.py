""":class:`AsyncDropClient`: the alerts of ``/v1/odds-drop`` (ours or the vendor's) as typed
values, across disconnects.

One loop, the upstream client policy of SPEC 8 (:mod:`dropengine.core.retry`: the one table of
what is retried and how long to wait): a connection is a GET on httpx read incrementally by
the project's SSE parser (:class:`~dropengine.formats.sse.SSEParser`: an event cut by a
disconnect is never parsed); it ends as an :class:`~dropengine.core.retry.Outcome` (a status,
a network error, heartbeat silence, the end of the body) and :class:`~dropengine.core.retry.Backoff`
decides: HTTP 401/403 stop with :class:`~dropengine.core.errors.AuthError`, another 4xx with
:class:`~dropengine.core.errors.UpstreamError` (the server's message, which names the
parameter), 5xx and network errors back off with full jitter, 429 waits ``Retry-After``, no
frame for twice the heartbeat reconnects. Every reconnect resumes (:mod:`.resume`): with
``Last-Event-ID`` where the server gives ids, else with ``since``.

Frames are decoded once (:class:`~dropengine.client.events.EventDecoder`); a frame that does
not decode is counted in :attr:`ClientStats.skips` and skipped. The key is a
:class:`~dropengine.core.keys.Secret`, sent in the ``X-API-Key`` header (or ``?apiKey=``); no
message, log line of httpx or error built here contains it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Required, TypedDict
from urllib.parse import urlunsplit

import httpx

from ..core.alerts import Alert
from ..core.errors import ConfigError, FeedError, short_repr
from ..core.filters import DirectionChoice
from ..core.keys import Secret, redact
from ..core.retry import Backoff, Outcome, Retry, RetryPolicy, Stop, dead_after_s
from ..core.skips import SkipLog, printable
from ..formats.sse import SSEEvent
from ..live.redaction import install_redaction
from ..live.sse_client import open_stream, read_events
from ..live.transport import Ended, check_http_url, reconnecting, shown_url
from .events import ALERT_TYPES, Connected, Event, EventDecoder, Heartbeat, Reset
from .query import DEFAULT_HEARTBEAT_S, DropQuery, Names
from .resume import Resume, is_cursor

__all__ = ["AUTH_MODES", "AsyncDropClient", "ClientOptions", "ClientStats"]

#: How the key is sent: the ``X-API-Key`` header (default: no key in any URL) or ``?apiKey=``.
AUTH_MODES: Final = ("header", "query")
_LOGGERS: Final = ("httpx", "httpcore")
#: How many resets :attr:`AsyncDropClient.resets` and ended connections
#: :attr:`AsyncDropClient.history` keep (the newest): a client may run for weeks.
_KEEP_RESETS: Final = 100
_KEEP_HISTORY: Final = 100


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of :class:`AsyncDropClient` (and :class:`~dropengine.client.sync.DropClient`):
    the one list of their names and types."""

    api_key: Required[str | Secret]
    sport: str | Sequence[str] | None
    threshold: int | None
    direction: DirectionChoice | None
    bookmakers: Names
    markets: Names
    kinds: Names
    types: Names
    line_threshold: float | None
    event_id: str | None
    since: int | None
    heartbeat_s: int
    query: DropQuery | None
    last_event_id: str | None
    auth: Literal["header", "query"]
    policy: RetryPolicy | None
    rng: random.Random | None
    silence_s: float | None
    connect_timeout_s: float
    on_event: Callable[[str], None] | None
    sleep: Callable[[float], Awaitable[Any]]


@dataclass(slots=True)
class ClientStats:
    """What a client did: connections opened, reconnects, frames read, alerts handed on,
    resets and heartbeats seen, repeats dropped after a resume by ``since``, frames skipped."""

    connections: int = 0
    reconnects: int = 0
    frames: int = 0
    alerts: int = 0
    resets: int = 0
    heartbeats: int = 0
    repeats: int = 0
    skips: SkipLog = field(default_factory=SkipLog)
    last_outcome: str = ""


class AsyncDropClient:
    """Alerts from ``{base_url}/v1/odds-drop/...``; see the module docstring.

    ``sport``: a sport key (``/v1/odds-drop/{sport}``), a list of them (``/multi``) or ``None``
    (``/all``). The filters are the query parameters of SPEC 7, typed (:class:`DropQuery`;
    or pass ``query=`` instead). ``last_event_id`` resumes a stream an earlier client read
    (persist :attr:`last_event_id`). ``policy`` (SPEC 8's numbers; tests scale them down),
    ``rng`` (the jitter), ``silence_s`` (no frame for this long is a dead connection; default
    twice the heartbeat) and ``on_event`` (a line per connect, retry and stop) tune the loop.

    Iterate it (``async for event in client``) for :data:`~dropengine.client.events.Event`
    values (``Connected`` on every connection, ``Reset``, the alerts), or :meth:`alerts` for
    the alerts alone. Use it as an async context manager (or call :meth:`aclose`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | Secret,
        sport: str | Sequence[str] | None = None,
        threshold: int | None = None,
        direction: DirectionChoice | None = None,
        bookmakers: Names = None,
        markets: Names = None,
        kinds: Names = None,
        types: Names = None,
        line_threshold: float | None = None,
        event_id: str | None = None,
        since: int | None = None,
        heartbeat_s: int = DEFAULT_HEARTBEAT_S,
        query: DropQuery | None = None,
        last_event_id: str | None = None,
        auth: Literal["header", "query"] = "header",
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        silence_s: float | None = None,
        connect_timeout_s: float = 10.0,
        on_event: Callable[[str], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        parts = check_http_url(base_url, "base_url")  # (the upstream's rule: live.transport)
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        if query is None:
            query = DropQuery.build(
                sport, threshold=threshold, direction=direction, bookmakers=bookmakers, markets=markets,
                kinds=kinds, types=types, line_threshold=line_threshold, event_id=event_id, since=since,
                heartbeat_s=heartbeat_s)
        elif not isinstance(query, DropQuery):
            raise ConfigError(f"query: {short_repr(query)} is not a DropQuery")
        else:
            given = {"sport": sport, "threshold": threshold, "direction": direction, "bookmakers": bookmakers,
                     "markets": markets, "kinds": kinds, "types": types, "line_threshold": line_threshold,
                     "event_id": event_id, "since": since}
            named = sorted(k for k, v in given.items() if v is not None)
            if named or heartbeat_s != DEFAULT_HEARTBEAT_S:
                raise ConfigError(f"query: give either query= or the filters ({', '.join(named) or 'heartbeat_s'}), "
                                  "not both")
        self.query = query
        if auth not in AUTH_MODES:
            raise ConfigError(f"auth: {short_repr(auth)} must be one of {', '.join(AUTH_MODES)}")
        self.auth = auth
        if last_event_id is not None and not is_cursor(last_event_id):
            raise ConfigError(f"last_event_id: {short_repr(last_event_id)} must be an event id the server sent "
                              "(printable ASCII)")
        self.policy = policy if policy is not None else RetryPolicy()
        if not isinstance(self.policy, RetryPolicy):
            raise ConfigError(f"policy: {short_repr(policy)} is not a RetryPolicy")
        if silence_s is not None and (isinstance(silence_s, bool) or not isinstance(silence_s, (int, float))
                                      or not 0 < silence_s < float("inf")):
            raise ConfigError(f"silence_s: {short_repr(silence_s)} must be a positive number of seconds")
        if isinstance(connect_timeout_s, bool) or not isinstance(connect_timeout_s, (int, float)) \
                or not connect_timeout_s > 0:
            raise ConfigError(f"connect_timeout_s: {short_repr(connect_timeout_s)} must be a positive number")
        self.connect_timeout_s = float(connect_timeout_s)
        self._silence_s = silence_s
        self._rng = rng if rng is not None else random.Random()
        self._on_event = on_event
        self._sleep = sleep
        self.backoff = Backoff(self.policy)
        self.resume = Resume(last_event_id=last_event_id)
        self.decoder = EventDecoder(query.sport_key)
        self.stats = ClientStats()
        #: The newest ``connected`` frame (the effective filters), ``None`` before the first.
        self.connected: Connected | None = None
        #: The newest resets (each also yielded by :meth:`events`).
        self.resets: list[Reset] = []
        #: (outcome, decision) per ended connection (the newest), for diagnostics and tests.
        self.history: list[tuple[Outcome, Retry | Stop]] = []
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self._closing = asyncio.Event()  # (set with _closed: wakes a wait to reconnect)
        install_redaction(_LOGGERS, [self.api_key.reveal()])

    def __repr__(self) -> str:
        return f"AsyncDropClient({shown_url(self.base_url) + self.query.path!r}, connections={self.stats.connections})"

    @property
    def where(self) -> str:
        """How messages name this stream (no key)."""
        return f"GET {self.query.path}"

    @property
    def last_event_id(self) -> str | None:
        """The cursor: the id of the last event handed on (persist it to resume later)."""
        return self.resume.last_event_id

    @property
    def dead_after_s(self) -> float:
        """No frame for this long means the connection is dead (SPEC 8: twice the heartbeat,
        the server's echoed one once known)."""
        if self._silence_s is not None:
            return float(self._silence_s)
        hb = self.connected.heartbeat_s if self.connected is not None else None
        return dead_after_s(hb if hb is not None and hb > 0 else self.query.heartbeat_s)

    # -- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncDropClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client for good: an open stream ends (:meth:`events` returns, from any
        task; it does not reconnect) and a later :meth:`events` is a ConfigError."""
        self._closed = True
        self._closing.set()
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def _event(self, text: str) -> None:
        if self._on_event is not None:
            self._on_event(self._redacted(text))

    def _redacted(self, text: str) -> str:
        return printable(redact(text, [self.api_key.reveal()]))

    # -- iteration -------------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def alerts(self, on_reset: Callable[[Reset], object] | None = None) -> AsyncGenerator[Alert, None]:
        """The alerts alone. A reset is not silent: it is counted in :attr:`stats`, kept in
        :attr:`resets` and handed to ``on_reset``."""
        async with aclosing(self.events()) as events:
            async for event in events:
                if isinstance(event, ALERT_TYPES):
                    yield event
                elif isinstance(event, Reset) and on_reset is not None:
                    on_reset(event)

    async def events(self, *, heartbeats: bool = False) -> AsyncGenerator[Event, None]:
        """Every event across reconnects (heartbeats too with ``heartbeats=True``); raises
        :class:`~dropengine.core.errors.AuthError` / :class:`~dropengine.core.errors.UpstreamError`
        when the policy says stop. Iterate one at a time per client (they share the cursor).
        Ends when :meth:`aclose` is called (what ended the connection then is not retried)."""
        if self._closed:
            raise ConfigError("events: this client is closed")
        st = self.stats

        def opened() -> None:
            st.connections += 1
            self._event(f"{self.where}: open")

        def ended(outcome: Outcome, decision: Retry | Stop) -> None:
            st.last_outcome = outcome.describe()
            if isinstance(decision, Stop):
                self._event(f"{self.where}: stopped: {decision.error}")
            else:
                st.reconnects += 1
                self._event(f"{self.where}: {decision.reason}")

        # SPEC 8's loop is the upstream's (live.transport.reconnecting); aclose() ends it quietly
        async with aclosing(reconnecting(
                self._connection, self.backoff, where=self.where, secrets=[self.api_key.reveal()], rng=self._rng,
                history=self.history, on_open=opened, on_end=ended, wait=self._wait, closed=lambda: self._closed,
                keep_history=_KEEP_HISTORY)) as frames:
            async for sse in frames:
                event = self._decoded(sse)
                if event is None or (isinstance(event, Heartbeat) and not heartbeats):
                    continue
                yield event

    async def _wait(self, delay_s: float) -> None:
        """The policy's wait before a reconnect, cut short by :meth:`aclose`."""
        sleeping = asyncio.ensure_future(self._sleep(delay_s))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((sleeping, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, closing):
                task.cancel()
            await asyncio.gather(sleeping, closing, return_exceptions=True)

    def _decoded(self, sse: SSEEvent) -> Event | None:
        """One SSE event as a typed value, the cursor moved past it; ``None`` when skipped
        (a bad frame, counted; a repeat after a resume by ``since``, counted)."""
        st = self.stats
        st.frames += 1
        try:
            event = self.decoder.decode(sse.data)
        except FeedError as exc:
            st.skips.add(f"{self.where} frame {st.frames}", exc.reason, str(exc))
            self.resume.seen(sse.id)  # reading it again would not make it decode
            return None
        if isinstance(event, ALERT_TYPES):
            if not self.resume.fresh(event):
                st.repeats += 1
                return None
            st.alerts += 1
        elif isinstance(event, Connected):
            self.connected = event
            self.resume.connected(event.id, self._sent_cursor, self._sent_since)
        elif isinstance(event, Reset):
            st.resets += 1
            self.resets.append(event)
            del self.resets[:-_KEEP_RESETS]
            self._event(f"{self.where}: reset: {event.reason}")
        elif isinstance(event, Heartbeat):
            st.heartbeats += 1
        self.resume.seen(sse.id)
        return event

    # -- one connection --------------------------------------------------------------------------
    _sent_cursor = False
    _sent_since = False

    def _client(self) -> httpx.AsyncClient:
        if self._closed:  # (events() checks first: a closed client never opens another)
            raise Ended(Outcome.ended("the client is closed"))
        if self._http is None:
            # read=None: the heartbeat rule times reads out; trust_env=False: no proxy or netrc
            # from the environment sees the key by surprise
            timeout = httpx.Timeout(self.connect_timeout_s, read=None)
            self._http = httpx.AsyncClient(timeout=timeout, trust_env=False)
        return self._http

    def _request(self) -> tuple[dict[str, str], dict[str, str]]:
        headers, since = self.resume.request(self.query.since)
        params = self.query.params(since)
        self._sent_cursor = "Last-Event-ID" in headers
        self._sent_since = "since" in params
        headers["Accept"] = "text/event-stream"
        if self.auth == "header":
            headers["X-API-Key"] = self.api_key.reveal()
        else:
            params["apiKey"] = self.api_key.reveal()
        return headers, params

    async def _connection(self) -> AsyncGenerator[SSEEvent, None]:
        """The SSE events of one connection; ends by raising :class:`Ended` with how it ended."""
        headers, params = self._request()
        cursor = headers.get("Last-Event-ID")
        self._event(f"{self.where}: connecting" + (f" (Last-Event-ID {cursor})" if cursor else "")
                    + (f" (since {params['since']})" if "since" in params else ""))
        try:
            async with open_stream(self._client(), self.base_url + self.query.path, params=params, headers=headers,
                                   secrets=[self.api_key.reveal()]) as response:
                async for sse in read_events(response, lambda: self.dead_after_s):
                    yield sse
        except httpx.HTTPError as exc:  # connect, read, protocol errors: retried by the policy
            raise Ended(Outcome.network(self._redacted(f"{type(exc).__name__}: {exc}")[:300])) from None
        except OSError as exc:
            raise Ended(Outcome.network(self._redacted(f"{type(exc).__name__}: {exc}")[:300])) from None
