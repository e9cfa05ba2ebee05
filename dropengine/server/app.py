"""The reference ``/v1/odds-drop`` server (SPEC section 7) on starlette and uvicorn.

:class:`DropServer` owns one :class:`~dropengine.core.engine.DropEngine` (every alert type,
threshold 1 cent, line threshold 0.25 points, ``reference=last``, so every connection's types,
thresholds and direction are exact post-filters; steam with the server's own settings) and
one :class:`~dropengine.server.hub.Hub`. A *source* (a replayed recording or the live
upstream) feeds quotes through :meth:`DropServer.ingest`; detection runs once and the hub
fans alerts out. Each connection only filters, holds a bounded queue and is cut when it
stops reading (counted once, its slot freed and its socket closed at once). Keys are
checked in constant time and never written anywhere. With ``--state`` the engine, the ring
and the source cursors are saved periodically without stalling the streams (a forked
child writes the snapshot), and alert ids are reserved durably before use, so a restart
after a crash never reuses one (:mod:`.state`). Engine keys are evicted by data time
(``evict_idle_s``, ``evict_started_s``); ``/healthz`` says degraded (503) with a reason when
the source stopped or the upstream has been down for two heartbeat intervals.

Three layers, one class each: :mod:`.ingest` (detection, eviction, the source task),
:mod:`.persistence` (saves, restores, the id reservation) and this module (routes, auth,
connection slots, the per-connection SSE stream, ``/healthz`` and ``/metrics``:
:class:`StreamServer`, which :class:`~dropengine.server.busfeed.BusServer`, the stateless
frontend of ``serve --bus``, shares). The stream's response is :mod:`.stream`'s (one shared
fan-out writing frames straight to the transport; issue 14); sse-starlette's
``EventSourceResponse``, which it replaced, stays selectable (:attr:`StreamServer.sse_response`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final

from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..core.alerts import SIGNALS
from ..core.errors import ConfigError
from ..core.keys import TIERS, KeyRecord
from .hub import Hub, Subscriber, reset_frame, sse_frame
from .ingest import Metrics, ServeConfig, Source
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import exposition, server_registry

if TYPE_CHECKING:
    from .delivery import ServerDelivery
from .page import PAGE_HTML
from .params import ParamError, StreamRequest, parse_request, steam_echo
from .persistence import Persistence
from .stream import CYCLE_KEY, Fanout, SSEStream

__all__ = ["CORS_HEADERS", "CORS_METHODS", "DropServer", "Metrics", "ServeConfig", "Source", "StreamServer",
           "cors_origins"]

#: What a deferred subscription (:meth:`StreamServer._catch_up`) yields: frames to send first
#: (alerts read from a log, resets), then once the subscriber and its up-front reset reason;
#: a catch-up that ends without a subscriber ends the response (cleanly, not as a cut).
CatchUp = AsyncIterator["bytes | tuple[Subscriber, str | None]"]

log = logging.getLogger("dropengine.serve")

#: The SSE responses a server can stream with (:attr:`StreamServer.sse_response`).
SSE_RESPONSES = ("lean", "sse-starlette")

#: CORS (:meth:`StreamServer.allow_origins`): the methods of every route, the request headers a
#: cross-origin client may send (the key, a resume cursor, EventSource's cache control), and
#: how long a browser may cache a preflight answer.
CORS_METHODS: Final = ("GET", "HEAD", "OPTIONS")
CORS_HEADERS: Final = ("X-API-Key", "Last-Event-ID", "Cache-Control", "Accept")
CORS_MAX_AGE_S: Final = 600
_ORIGIN: Final = re.compile(r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?",
                             re.IGNORECASE)
_DEFAULT_PORT: Final = {"http": 80, "https": 443}


def cors_origins(values: Sequence[str]) -> tuple[str, ...]:
    """The CORS origins ``values`` name, checked: ``*`` (any origin) or origins as a browser
    sends them in ``Origin`` (``scheme://host[:port]``, http or https, no path, no trailing
    slash: such an entry would never match, so it is refused). CORS compares the header with
    each entry as text, so an entry is written the way a browser serializes its origin: scheme
    and host in lower case, no default port (``:443`` on https, ``:80`` on http), an IPv6 host
    compressed; a port beyond 65535 or a host ending in a number that is no IPv4 address
    (``127.0.0.01``: a browser reads it another way) is refused. Every entry is checked, and
    with a ``*`` among them the result is ``("*",)``. Duplicates dropped; :class:`ConfigError`
    naming ``cors_origin`` and the value otherwise."""
    out: list[str] = []
    for value in values:
        text = value.strip()
        origin = "*" if text == "*" else _browser_origin(text)
        if origin is None:
            raise ConfigError(f"cors_origin: {value!r} is not * or an origin such as https://example.com "
                              f"(scheme://host[:port], no path or trailing slash, a port up to 65535)")
        if origin not in out:
            out.append(origin)
    return ("*",) if "*" in out else tuple(out)


def _browser_origin(text: str) -> str | None:
    """``text`` serialized as a browser sends its origin, or ``None`` when no browser can."""
    import ipaddress

    match = _ORIGIN.fullmatch(text)
    if match is None:
        return None
    scheme, host, port_text = match.group(1).lower(), match.group(2).lower(), match.group(3)
    try:
        if host.startswith("["):
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        elif host.rstrip(".").rpartition(".")[2].isdigit():  # the URL standard's IPv4 host
            host = str(ipaddress.IPv4Address(host))
    except ValueError:
        return None
    port = int(port_text) if port_text is not None else None
    if port is not None and port > 65535:
        return None
    if port is None or port == _DEFAULT_PORT[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Stop:
    """The ``shutdown_event`` handed to sse-starlette: setting it wakes the stream to end."""

    def __init__(self, wake: asyncio.Event) -> None:
        self.requested = False
        self._wake = wake

    def set(self) -> None:
        self.requested = True
        self._wake.set()

    def is_set(self) -> bool:
        return self.requested


_TRANSPORT = "dropengine.transport"


class _WithTransport:
    """The outermost ASGI layer: puts the connection's transport into the scope, so a cut
    slow client's socket can be closed at once (``abort``), not when its unread data would
    have drained. uvicorn's ``send`` is a method of the connection's cycle, which holds it;
    another server simply gets no transport (the client is then cut by ending its body)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # uvicorn forced out (a second Ctrl-C) cancels the lifespan at the loop's end: the
            # shutdown (final save) still runs in its ``finally``, and that is no failure to log
            # with a traceback (Starlette reports the cancellation as "shutdown failed")
            async def quiet(message: Any) -> None:
                task = asyncio.current_task()
                if message.get("type") == "lifespan.shutdown.failed" and task is not None and task.cancelling():
                    message = {"type": "lifespan.shutdown.complete"}
                await send(message)

            with contextlib.suppress(asyncio.CancelledError):
                await self.app(scope, receive, quiet)
            return
        if scope["type"] == "http":
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if transport is not None and hasattr(transport, "abort"):
                scope[_TRANSPORT] = transport
                scope[CYCLE_KEY] = cycle  # its flow control: the lean stream writes straight to the transport
        await self.app(scope, receive, send)


class _Tracked:
    """An ASGI response wrapper that runs ``release`` however the response ends, and
    ``on_timeout`` when a send timed out (a reader that stopped reading)."""

    def __init__(self, response: Response, release: Callable[[], None], on_timeout: Callable[[], None]) -> None:
        self._response = response
        self._release = release
        self._on_timeout = on_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from sse_starlette.sse import SendTimeoutError

        try:
            await self._response(scope, receive, send)
        except SendTimeoutError:
            self._on_timeout()
        finally:
            self._release()



class _Hold:
    """One stream's hold on the server: its connection slot and subscription, released once
    however the stream ends; a cut (a client that stopped reading: its queue overflowed, or a
    send timed out) counted once, the hold released, ``stop`` called and the socket closed now,
    unread data dropped. The client resumes from its last id when it reads again."""

    __slots__ = ("_server", "_slot", "_sub", "_transport", "cut_done", "released", "stop")

    def __init__(self, server: StreamServer, request: Request, slot: str,
                 sub: Callable[[], Subscriber | None]) -> None:
        self._server = server
        self._slot = slot
        self._sub = sub
        self._transport = request.scope.get(_TRANSPORT)
        self.released = self.cut_done = False
        self.stop: Callable[[], None] = lambda: None

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        sub = self._sub()
        if sub is not None:
            self._server.hub.unsubscribe(sub)
        self._server._release_slot(self._slot)

    def cut(self) -> None:
        if self.cut_done:
            return
        self.cut_done = True
        self._server.metrics.slow_clients_cut += 1
        self.release()
        self.stop()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    def timed_out(self) -> None:
        self._server.metrics.send_timeouts += 1
        self.cut()


class StreamServer:
    """The HTTP side of a server over a :class:`~dropengine.server.hub.Hub`: routes, keys and
    their caps, the per-connection SSE stream (filters, heartbeats, resume, slow clients cut),
    the live page, ``/healthz`` and ``/metrics``. Subclasses supply the hub and where its
    alerts come from (:class:`DropServer`: its own engine; ``BusServer``: the alert log), the
    lifespan, :meth:`status` and their own metric lines."""

    config: ServeConfig
    hub: Hub
    metrics: Metrics
    #: Which response streams alerts: ``"lean"`` (:mod:`.stream`: one shared fan-out, frames
    #: written straight to the transport) or ``"sse-starlette"`` (the response before issue 14,
    #: kept for side-by-side benchmarks and the byte-for-byte tests). Same bytes either way.
    #: Set per server, or for every server of a process by env ``DROPENGINE_SSE_RESPONSE``.
    sse_response: str = "lean"
    #: Server-wide sinks (``serve --sink``): every alert once, as the hub publishes it; started and
    #: drained with the app (:class:`DropServer`'s lifespan). ``None``: no sinks.
    delivery: ServerDelivery | None = None

    def _init_routes(self) -> None:
        self._open: dict[str, int] = {}
        self._fanout = Fanout()  # the lean streams' shared flush
        chosen = os.environ.get("DROPENGINE_SSE_RESPONSE", "").strip()
        if chosen:
            if chosen not in SSE_RESPONSES:
                raise ConfigError(f"DROPENGINE_SSE_RESPONSE: {chosen!r} is not one of {', '.join(SSE_RESPONSES)}")
            self.sse_response = chosen
        self.starlette = Starlette(
            routes=[
                Route("/", self._page),
                Route("/healthz", self._healthz),
                Route("/metrics", self._metrics),
                Route("/v1/odds-drop/all", self._all),
                Route("/v1/odds-drop/multi", self._multi),
                Route("/v1/odds-drop/{sport_key}", self._one),
            ],
            lifespan=self._lifespan,
        )
        #: The ASGI app to serve (uvicorn): the routes above, plus the transport hook.
        self.app = _WithTransport(self.starlette)
        #: This server's own prometheus-client registry (``/metrics``; never the global one).
        self.registry = server_registry(self)
        #: The origins allowed cross-origin requests (:meth:`allow_origins`); empty: CORS off.
        self.cors: tuple[str, ...] = ()

    def _lifespan(self, app: Starlette) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def steam_settings(self) -> dict[str, Any] | None:
        """How steam is detected (echoed to connections that ask for steam); ``None``: not known here."""
        return None

    def status(self) -> dict[str, Any]:
        raise NotImplementedError

    def _metric_lines(self, st: dict[str, Any]) -> list[tuple[str, str, str, object]]:
        """This server's own ``/metrics`` lines beyond the shared ones: (name, kind, help, value)."""
        return []

    def refuse(self, req: StreamRequest) -> ParamError | None:
        """Why this server cannot serve ``req`` exactly (a 400 naming the parameter), ``None``
        when it can: always here, where the engine detects everything a request may ask for."""
        return None

    def _catch_up(self, req: StreamRequest, notify: Callable[[], None]) -> CatchUp | None:
        """A subscription that must read elsewhere first (a log) before it can subscribe:
        ``None`` here (everything a cursor can ask for is in the ring)."""
        return None

    # -- auth ----------------------------------------------------------------------------------
    def _key(self, request: Request) -> tuple[Response | None, str, KeyRecord | None]:
        key = request.query_params.get("apiKey") or request.headers.get("x-api-key") or ""
        if not key:
            self.metrics.rejected_401 += 1
            return _error(401, "missing API key: pass ?apiKey= or the X-API-Key header"), "", None
        if self.config.keys is None:
            return None, key, KeyRecord("any", "business", TIERS["business"])
        record = self.config.keys.lookup(key)
        if record is None:
            self.metrics.rejected_403 += 1
            return _error(403, "unknown API key"), "", None
        if not record.may_stream:
            self.metrics.rejected_403 += 1
            return _error(403, f"tier {record.tier!r} may not open streams (business and above)"), "", None
        return None, key, record

    # -- endpoints -----------------------------------------------------------------------------
    async def _one(self, request: Request) -> Response:
        return self._stream(request, sport=request.path_params["sport_key"])

    async def _all(self, request: Request) -> Response:
        return self._stream(request)

    async def _multi(self, request: Request) -> Response:
        return self._stream(request, multi=True)

    def _stream(self, request: Request, sport: str | None = None, multi: bool = False) -> Response:
        # Everything up to the slot count is synchronous: the cap is exact under concurrent connects.
        denied, key, record = self._key(request)
        if denied is not None:
            return denied
        assert record is not None
        try:
            req = parse_request(request.query_params, sport=sport, multi=multi,
                                last_event_id=request.headers.get("last-event-id"), secrets=[key])
            refused = self.refuse(req)
            if refused is not None:
                raise refused
        except ParamError as exc:
            self.metrics.rejected_400 += 1
            return JSONResponse(exc.body(secrets=[key]), status_code=400)  # never echo the key
        slot = record.name if self.config.keys is not None else key
        if self._open.get(slot, 0) >= record.cap:
            self.metrics.rejected_429 += 1
            return _error(429, f"concurrent connection cap ({record.cap}) reached for this key",
                          headers={"Retry-After": str(self.config.retry_after_s)})
        self._open[slot] = self._open.get(slot, 0) + 1
        self.metrics.connections_total += 1
        if self.sse_response == "sse-starlette":
            return self._starlette_stream(request, req, slot)
        return self._lean_stream(request, req, slot)

    def _release_slot(self, slot: str) -> None:
        n = self._open.get(slot, 1) - 1
        if n > 0:
            self._open[slot] = n
        else:
            self._open.pop(slot, None)

    def _connected(self, req: StreamRequest, sub: Subscriber | None) -> dict[str, Any]:
        """The first frame: the effective filters, the heartbeat, steam settings when asked for,
        and the position the stream starts from."""
        hub = self.hub
        connected: dict[str, Any] = {"type": "connected", "filters": req.filter.echo(), "heartbeat_s": req.heartbeat_s}
        steam = self.steam_settings() if req.filter.types is not None and "steam" in req.filter.types else None
        if steam is not None:
            connected["steam"] = steam  # the server's, the same for every connection
        connected.update(epoch=hub.epoch, id=str(hub.high_water if sub is None else hub.position(sub)),
                         timestamp=_now_ms())
        return connected

    def _lean_stream(self, request: Request, req: StreamRequest, slot: str) -> Response:
        """The response of :mod:`.stream` (one shared fan-out, no task group, direct writes)."""
        hub = self.hub
        stream: SSEStream | None = None
        hold = _Hold(self, request, slot, lambda: None if stream is None else stream.sub)
        stream = SSEStream(hub, self._fanout, heartbeat_s=req.heartbeat_s,
                           send_timeout_s=self.config.send_timeout_s, cut=hold.cut, timed_out=hold.timed_out,
                           release=hold.release)
        hold.stop = stream.end
        catch_up = self._catch_up(req, stream.notify)
        sub: Subscriber | None = None
        if catch_up is None:  # subscribed now, atomically with the backlog from the ring
            sub, reset = hub.subscribe(req.filter, req.cursor, stream.notify, reset=req.cursor_reset)
            stream.attach(sub, reset)
        connected = self._connected(req, sub)
        stream.start_with(sse_frame(connected), catch_up, connected["timestamp"])
        return stream  # type: ignore[return-value]

    def _starlette_stream(self, request: Request, req: StreamRequest, slot: str) -> Response:
        """The response before issue 14: sse-starlette's ``EventSourceResponse`` over a frames
        generator (``sse_response = "sse-starlette"``: side-by-side benchmarks and tests)."""
        hub = self.hub
        wake = asyncio.Event()
        stop = _Stop(wake)
        loop = asyncio.get_running_loop()
        sub: Subscriber | None = None
        hold = _Hold(self, request, slot, lambda: sub)
        hold.stop = wake.set
        release, cut_off, timed_out = hold.release, hold.cut, hold.timed_out

        def notify() -> None:
            wake.set()
            if sub is not None and sub.overflowed and not hold.cut_done:
                loop.call_soon(cut_off)  # not inside the hub's fan-out loop

        reset: str | None = None
        catch_up = self._catch_up(req, notify)
        if catch_up is None:  # subscribed now, atomically with the backlog from the ring
            sub, reset = hub.subscribe(req.filter, req.cursor, notify, reset=req.cursor_reset)
        connected = self._connected(req, sub)

        async def frames() -> AsyncIterator[bytes]:
            nonlocal sub, reset
            now = connected["timestamp"]
            yield sse_frame(connected)
            if catch_up is not None:  # read from the log first; subscribes once the ring covers the rest
                async for item in catch_up:
                    if isinstance(item, bytes):
                        yield item
                    else:
                        sub, reset = item
                if hold.released:  # (cut or ended while reading: nothing to register)
                    if sub is not None:
                        hub.unsubscribe(sub)
                    return
                if sub is None:  # the catch-up ended the response (e.g. the log could not be read):
                    return  # the body ends properly; the client resumes with its own id (not a cut)
            assert sub is not None
            if reset is not None:
                yield reset_frame(reset, str(hub.position(sub)), now)
            while True:
                if sub.overflowed:
                    cut_off()
                    return  # fell too far behind: cut; the client resumes from its last id
                entries = hub.take(sub)
                if entries:
                    yield b"".join(e.frame for e in entries)
                    continue
                if stop.requested:
                    return  # shutting down: end the body properly (the client resumes elsewhere)
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), req.heartbeat_s)
                except TimeoutError:
                    if sub.pending or sub.overflowed or stop.requested:
                        continue  # an alert came in as the timer fired: send it before any cursor
                    hw = str(hub.position(sub))  # all of it considered for this client: a safe cursor
                    yield sse_frame({"type": "heartbeat", "id": hw, "timestamp": _now_ms()}, hw)

        from sse_starlette.sse import EventSourceResponse

        # On shutdown sse-starlette calls stop.set(): the generator returns and the chunked body
        # ends properly, instead of being cancelled mid-stream.
        response = EventSourceResponse(frames(), ping=0, send_timeout=self.config.send_timeout_s,
                                       shutdown_event=stop, shutdown_grace_period=2.0)  # type: ignore[arg-type]
        return _Tracked(response, release, timed_out)  # type: ignore[return-value]

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(PAGE_HTML)

    async def _healthz(self, request: Request) -> Response:
        st = self.status()
        return JSONResponse(st, status_code=200 if st["status"] == "ok" else 503)

    async def _metrics(self, request: Request) -> Response:
        return Response(exposition(self.registry), media_type=METRICS_CONTENT_TYPE)

    # -- /metrics (prometheus-client; :mod:`.metrics`) -------------------------------------------
    def metric_lines(self) -> list[tuple[str, str, str, object]]:
        """The unlabelled ``/metrics`` values now: the shared ones, then :meth:`_metric_lines`."""
        st = self.status()
        c, m = self.hub.counters, self.metrics
        lines: list[tuple[str, str, str, object]] = [
            ("dropengine_connections", "gauge", "open /v1/odds-drop streams", st["connections"]),
            ("dropengine_connections_total", "counter", "streams accepted", m.connections_total),
            ("dropengine_alerts_produced_total", "counter", "alerts detected, every type (before filters)",
             c.produced),
            ("dropengine_alert_deliveries_total", "counter", "alerts handed to connections", c.delivered),
            ("dropengine_queue_depth", "gauge", "alerts queued over all connections", st["queue_depth_total"]),
            ("dropengine_queue_depth_max", "gauge", "the longest connection queue", st["queue_depth_max"]),
            ("dropengine_slow_clients_cut_total", "counter", "connections cut for not reading",
             st["slow_clients_cut"]),
            ("dropengine_send_timeouts_total", "counter",
             "connections cut because a send blocked for --send-timeout (also in slow_clients_cut)",
             m.send_timeouts),
            ("dropengine_resets_total", "counter", "reset frames sent", c.resets),
            ("dropengine_resumes_total", "counter", "reconnects resumed from the buffer", c.resumed),
            ("dropengine_buffered_alerts", "gauge", "alerts in the ring buffer", st["buffered"]),
        ]
        return lines + self._metric_lines(st)

    def alerts_by_type(self) -> dict[str, int]:
        """``dropengine_alerts_total{type=...}``: alerts detected (or followed) by type."""
        c = self.hub.counters
        return {t: c.by_type.get(t, 0) for t in SIGNALS}

    def rejected(self) -> dict[int, int]:
        """``dropengine_rejected_total{status=...}``: stream requests refused, by status."""
        m = self.metrics
        return {400: m.rejected_400, 401: m.rejected_401, 403: m.rejected_403, 429: m.rejected_429}

    def sinks(self) -> dict[str, dict[str, int]]:
        """``dropengine_sink_*{sink=...}``: each server-wide sink's counters (none without sinks)."""
        return self.delivery.status() if self.delivery is not None else {}

    def add_collector(self, collector: Collector) -> None:
        """Expose ``collector``'s metrics on this server's ``/metrics`` too (its own registry)."""
        self.registry.register(collector)

    # -- CORS --------------------------------------------------------------------------------------
    def allow_origins(self, origins: Sequence[str]) -> None:
        """Answer cross-origin requests from ``origins`` (``*``: any) on every route: the SSE
        streams, ``/healthz``, ``/metrics`` and the JSON errors (a browser page on another
        origin may then read them); preflight ``OPTIONS`` answered. Without a call, no CORS
        header is ever sent. Call before the server starts (it wraps the routes).

        starlette's ``CORSMiddleware`` sits inside the transport hook: it adds its headers to the
        response's ``http.response.start``, which the lean stream (:mod:`.stream`) sends through
        ASGI ``send`` like any response; only the body chunks after it go straight to the
        transport."""
        allowed = cors_origins(origins)
        if not allowed:
            return
        if self.cors:
            raise ConfigError(f"cors_origin: already allowed {', '.join(self.cors)}; give every origin in one call")
        from starlette.middleware.cors import CORSMiddleware

        self.starlette.add_middleware(
            CORSMiddleware,
            allow_origins=list(allowed),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS),
            expose_headers=["Retry-After"],
            allow_credentials=False,  # keys travel in a header or the query, never in cookies
            max_age=CORS_MAX_AGE_S,
        )
        self.cors = allowed


class DropServer(Persistence, StreamServer):
    """The server: ``self.app`` is the ASGI app (serve it with uvicorn). Detection and
    eviction are :class:`~dropengine.server.ingest.Ingestion`'s, saves and restores
    :class:`~dropengine.server.persistence.Persistence`'s; :class:`StreamServer` adds the routes."""

    def __init__(self, source: Source, config: ServeConfig | None = None) -> None:
        super().__init__(source, config if config is not None else ServeConfig())
        self._init_routes()

    def __repr__(self) -> str:
        return f"DropServer(source={self.source.name!r}, {self.hub!r})"

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._finished = False  # (an embedding process may serve the same DropServer again)
        if not self.restore_message:
            message = self.restore(_now_ms())
            damaged = message.endswith("starting empty") and not message.startswith("no ")
            log.log(logging.WARNING if damaged or "; " in message else logging.INFO, "%s", message)
        if self.delivery is not None:  # tapped after the restore (which may replace the hub), before any alert
            await self.delivery.start(self.hub)
        tuned = _gc_tuned(self.config.gc_threshold0)
        tuned.__enter__()
        self._source_task = asyncio.create_task(self._run_source(), name="source")
        saver = asyncio.create_task(self._save_periodically(), name="state") if self.config.state_path else None
        try:
            yield
        finally:
            for task in (self._source_task, saver):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if self._evicting is not None:  # stops after its current step: the engine is whole between steps
                self._evicting.cancel()
                await asyncio.gather(self._evicting, return_exceptions=True)
            try:
                if self.delivery is not None:  # no more alerts: drain (up to --sink-drain), dead-letter the rest
                    await self.delivery.aclose()
            finally:
                self.finish()
                tuned.__exit__(None, None, None)



    def steam_settings(self) -> dict[str, Any]:
        """How this server detects steam (SPEC 11; ``--steam-*``), echoed to connections that ask
        for steam (:func:`~dropengine.server.params.steam_echo`)."""
        return steam_echo(self.engine.options)

    def status(self) -> dict[str, Any]:
        total, largest = self.hub.queue_depths()
        c = self.hub.counters
        problem = self.problem()
        return {
            "status": "ok" if problem is None else "degraded",
            **({"reason": problem} if problem is not None else {}),
            "source": {"name": self.source.name, **self.source.status(),
                       **({"error": self._source_error} if self._source_error else {})},
            "epoch": self.hub.epoch,
            "high_water": str(self.hub.high_water),
            "connections": len(self.hub.subscribers),
            "alerts_produced": c.produced,
            "alerts_by_type": {t: c.by_type.get(t, 0) for t in SIGNALS},
            "alerts_delivered": c.delivered,
            "buffered": len(self.hub.buffer),
            "queue_depth_total": total,
            "queue_depth_max": largest,
            "slow_clients_cut": self.metrics.slow_clients_cut,
            "upstream_reconnects": self.source.reconnects,
            "keys_held": self.engine.keys_held,
            "keys_evicted": self.metrics.keys_evicted,
            "data_time": self._data_ms if self._data_ms >= 0 else None,
            **({"sinks": self.delivery.status()} if self.delivery is not None else {}),
        }

    def _metric_lines(self, st: dict[str, Any]) -> list[tuple[str, str, str, object]]:
        m, e = self.metrics, self.engine.counters
        return [
            ("dropengine_upstream_reconnects_total", "counter", "upstream reconnects", st["upstream_reconnects"]),
            ("dropengine_quotes_total", "counter", "quotes observed", e.seen),
            ("dropengine_keys_held", "gauge", "(event, book, side) keys in the engine", st["keys_held"]),
            ("dropengine_keys_evicted_total", "counter", "keys forgotten by age (--evict-idle, --evict-started)",
             m.keys_evicted),
            ("dropengine_state_saves_total", "counter", "state files written", m.state_saves),
            ("dropengine_state_save_failures_total", "counter", "periodic state saves that failed",
             m.state_save_failures),
        ]


@contextlib.contextmanager
def _gc_tuned(threshold0: int | None) -> Iterator[None]:
    """While serving: what start-up built is frozen out of the collector's way and the young
    generation's threshold raised (``ServeConfig.gc_threshold0``); restored afterwards, so an
    embedding process gets its collector back."""
    thresholds = gc.get_threshold()
    if threshold0 is not None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(threshold0, *thresholds[1:])
    try:
        yield
    finally:
        if threshold0 is not None:
            gc.set_threshold(*thresholds)
            gc.unfreeze()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)
