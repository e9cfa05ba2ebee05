"""The mock upstream's ASGI app: the vendor's SSE and WebSocket odds streams, replayed.

:class:`MockUpstream` owns a :class:`~dropengine.mock.timeline.Timeline`, a replay clock that
moves releases into a shared released list, and a Starlette app (``mock.app``) serving
``/v1/sports``, ``/v1/usage``, ``/v1/sse/odds|hot/{sport}`` and ``/ws/odds/{sport}`` (and
``/v1/ws/odds/{sport}``) with the vendor's frames, auth forms, status and close codes. Every
connection keeps its own cursor into the released list (no per-connection queue), and
injected faults (:mod:`dropengine.mock.faults`) cut, stall, flap, refuse or close chosen
connections so client retry policies can be tested against a real socket.

Everything runs on the server's event loop; the methods tests call from another thread
(:meth:`MockUpstream.set_sports`, :meth:`MockUpstream.set_faults`) only swap immutable tuples.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..core.errors import ConfigError, FeedError
from ..core.keys import KeyRecord, KeyTable
from ..formats.jsonline import decode_json
from .faults import Fault, parse_faults, pick_fault
from .timeline import GAME_MARKET_FIELDS, Release, SportState, Timeline, row_kind, row_time

__all__ = ["ConnectionRecord", "MockUpstream", "StreamFilters", "filter_rows", "parse_filters", "sport_info"]

SSE_HEARTBEAT_S: Final = 5
WS_HEARTBEAT_S: Final = 30
#: Without ``--keys`` any non-empty key is accepted with this record.
ANONYMOUS: Final = KeyRecord("anonymous", "business", 100)
_GROUPS: Final = {
    "americanfootball": "American Football",
    "aussierules": "Aussie Rules",
    "baseball": "Baseball",
    "basketball": "Basketball",
    "icehockey": "Ice Hockey",
    "mma": "Mixed Martial Arts",
    "soccer": "Soccer",
    "tennis": "Tennis",
}
_encode = msgspec.json.encode


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _show(value: str) -> str:
    """A bounded repr of a client-supplied value for error messages."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def sport_info(key: str) -> dict[str, Any]:
    """A ``/v1/sports`` entry for ``key``: group and title derived from the key's two halves."""
    prefix, _, rest = key.partition("_")
    group = _GROUPS.get(prefix, prefix.replace("-", " ").title())
    title = rest.replace("_", " ").upper() if rest else key
    return {"key": key, "group": group, "title": title, "active": True, "has_outrights": False}


class BadParameter(Exception):
    """A stream query parameter is invalid; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class StreamFilters:
    """The query filters of one stream (``None``: not given)."""

    event_id: str | None = None
    bookmakers: tuple[str, ...] | None = None
    markets: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    since: int | None = None
    heartbeat_s: int = SSE_HEARTBEAT_S

    def echo(self) -> dict[str, Any]:
        """The ``filters`` object of the ``connected`` frame."""
        return {
            "event_id": self.event_id,
            "bookmakers": None if self.bookmakers is None else list(self.bookmakers),
            "markets": None if self.markets is None else list(self.markets),
            "kinds": None if self.kinds is None else list(self.kinds),
            "since": self.since,
        }


def parse_filters(query: Mapping[str, str], heartbeat_default: int) -> StreamFilters:
    """The filters of a stream request; raises :class:`BadParameter` naming the bad one."""

    def csv(name: str) -> tuple[str, ...] | None:
        raw = query.get(name)
        if raw is None:
            return None
        items = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        if not items:
            raise BadParameter(name, f"{name}: {_show(raw)} names nothing; give comma-separated values")
        return items

    event_id = query.get("event_id")
    if event_id is not None and not event_id.strip():
        raise BadParameter("event_id", "event_id: empty")
    kinds = csv("kinds")
    if kinds is not None:
        bad = [k for k in kinds if k not in ("game", "prop")]
        if bad:
            raise BadParameter("kinds", f"kinds: {_show(bad[0])} is not game or prop")
    heartbeat = heartbeat_default
    raw_hb = query.get("heartbeat_s")
    if raw_hb is not None:
        if not (raw_hb.isascii() and raw_hb.isdigit() and 1 <= int(raw_hb) <= 30):
            raise BadParameter("heartbeat_s", f"heartbeat_s: {_show(raw_hb)} is not an integer 1..30")
        heartbeat = int(raw_hb)
    since: int | None = None
    raw_since = query.get("since")
    if raw_since is not None:
        if not (raw_since.isascii() and raw_since.isdigit() and len(raw_since) <= 18):
            raise BadParameter("since", f"since: {_show(raw_since)} is not a unix-ms timestamp")
        since = int(raw_since)
    return StreamFilters(event_id, csv("bookmakers"), csv("markets"), kinds, since, heartbeat)


def filter_rows(rows: Sequence[Any], filters: StreamFilters, event_id: str | None) -> list[Any]:
    """The rows a connection with ``filters`` (and event filter ``event_id``) receives.

    Unfiltered rows are the same objects; a game row under a ``markets`` filter is a copy
    without the fields of other markets, dropped when none of its fields is requested.
    """
    if event_id is None and filters.bookmakers is None and filters.markets is None and filters.kinds is None:
        return list(rows)
    wanted_fields: frozenset[str] = frozenset()
    other_fields: frozenset[str] = frozenset()
    if filters.markets is not None:
        wanted_fields = frozenset(f for m in filters.markets for f in GAME_MARKET_FIELDS.get(m, ()))
        other_fields = frozenset(f for fs in GAME_MARKET_FIELDS.values() for f in fs) - wanted_fields
    out: list[Any] = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        if event_id is not None and row.get("event_id") != event_id:
            continue
        if filters.bookmakers is not None and row.get("bookmaker") not in filters.bookmakers:
            continue
        kind = row_kind(row)
        if filters.kinds is not None and kind not in filters.kinds:
            continue
        if filters.markets is not None:
            if kind == "prop":
                if row.get("market_key") not in filters.markets:
                    continue
            else:
                if not any(f in row for f in wanted_fields):
                    continue
                if any(f in row for f in other_fields):
                    row = {k: v for k, v in row.items() if k not in other_fields}
        out.append(row)
    return out


@dataclass(slots=True)
class ConnectionRecord:
    """One stream connection attempt, for tests: ``outcome`` is updated when it ends.

    Outcomes: ``open`` (streaming), ``done`` (the client left or the server stopped),
    ``http STATUS`` (refused before the stream: 400/401/403/404/429 or an ``http`` fault),
    ``close CODE`` (WebSocket closed by the mock: auth, cap, bad parameter or a ``close`` fault),
    ``end`` (SSE ended cleanly by a ``close`` fault), ``cut``, ``stall``, ``flap``.
    """

    sport: str
    conn: int
    transport: str
    outcome: str = "open"
    fault: str | None = None


@dataclass(eq=False, slots=True)
class _Conn:
    """The mock's side of one open stream."""

    sport: str
    transport: str
    key: str
    record: KeyRecord
    filters: StreamFilters
    log: ConnectionRecord
    fault: Fault | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    sent: int = 0
    cursor: int = 0
    subscribed: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    last_send: float = 0.0


class _FaultNow(Exception):
    """Raised by the frame writer when the connection's fault is due; ``data`` is the next frame."""

    def __init__(self, fault: Fault, data: bytes) -> None:
        super().__init__(fault.spec())
        self.fault = fault
        self.data = data


Writer = Callable[[bytes], Awaitable[None]]


class MockUpstream:
    """A vendor-compatible fake upstream replaying ``timeline``; serve ``self.app`` with uvicorn.

    ``speed``: replay-clock multiplier (``None``: as fast as possible, in chunks of
    ``chunk_rows`` rows between yields to the loop). ``start``: ``on-connect`` starts the
    clock when the first stream's ``initial_state`` is taken, ``now`` at server startup.
    ``keys``: checked keys (``None``: any non-empty key is a business key, cap 100).
    """

    def __init__(
        self,
        timeline: Timeline,
        *,
        keys: KeyTable | None = None,
        speed: float | None = 1.0,
        start: str = "on-connect",
        max_gap: float = 5.0,
        faults: Iterable[Fault | str] = (),
        retry_after: float = 1.0,
        sports_extra: Iterable[str] = (),
        sse_heartbeat_s: int = SSE_HEARTBEAT_S,
        ws_heartbeat_s: int = WS_HEARTBEAT_S,
        stall_max_s: float = 300.0,
        chunk_rows: int = 2000,
    ) -> None:
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ConfigError(f"--speed: {speed!r} must be a positive number or max")
        if start not in ("on-connect", "now"):
            raise ConfigError(f"--start: {start!r} must be on-connect or now")
        if not (max_gap >= 0 and math.isfinite(max_gap)):
            raise ConfigError(f"--max-gap: {max_gap!r} must be a non-negative number of seconds")
        if not (retry_after >= 0 and math.isfinite(retry_after)):
            raise ConfigError(f"--retry-after: {retry_after!r} must be a non-negative number of seconds")
        for name, hb in (("sse_heartbeat_s", sse_heartbeat_s), ("ws_heartbeat_s", ws_heartbeat_s)):
            if not 1 <= hb <= 30:
                raise ConfigError(f"{name}: {hb!r} must be 1..30")
        self.timeline = timeline
        self.keys = keys
        self.speed = speed
        self.start = start
        self.max_gap = max_gap
        self.retry_after = retry_after
        self.sse_heartbeat_s = sse_heartbeat_s
        self.ws_heartbeat_s = ws_heartbeat_s
        self.stall_max_s = stall_max_s
        self.chunk_rows = max(1, chunk_rows)
        self._sports: tuple[str, ...] = tuple(dict.fromkeys([*timeline.sports, *sports_extra]))
        self._faults: tuple[Fault, ...] = parse_faults(faults)
        #: Every stream connection attempt in arrival order (see :class:`ConnectionRecord`).
        self.connections_log: list[ConnectionRecord] = []
        #: Stream connection attempts per sport (both transports; the last number given).
        self.conn_counters: dict[str, int] = {}
        self._open_by_key: dict[str, int] = {}
        self._active = 0
        self._released: dict[str, list[Release]] = {}
        self._resume_marks: dict[str, list[int]] = {}
        self._states: dict[str, SportState] = {}
        self._released_count = 0
        self._clock_ms: int | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._clock_task: asyncio.Task[None] | None = None
        self._finished = False
        self.app = Starlette(
            routes=[
                Route("/v1/sports", self._sports_endpoint),
                Route("/v1/usage", self._usage_endpoint),
                Route("/v1/sse/odds/{sport}", self._sse_endpoint),
                Route("/v1/sse/hot/{sport}", self._sse_endpoint),
                WebSocketRoute("/ws/odds/{sport}", self._ws_endpoint),
                WebSocketRoute("/v1/ws/odds/{sport}", self._ws_endpoint),
            ],
            lifespan=self._lifespan,
        )

    # ---- state visible to tests and the CLI -------------------------------------------------

    @property
    def sports(self) -> tuple[str, ...]:
        """The current universe served by ``/v1/sports`` and accepted by the streams."""
        return self._sports

    def set_sports(self, sports: Iterable[str]) -> None:
        """Replace the universe (thread-safe: one tuple swap); open streams are not affected."""
        self._sports = tuple(dict.fromkeys(sports))

    @property
    def faults(self) -> tuple[Fault, ...]:
        return self._faults

    def set_faults(self, faults: Iterable[Fault | str]) -> None:
        """Replace the fault list (specs are parsed; a bad one raises ``ConfigError``)."""
        self._faults = parse_faults(faults)

    @property
    def released(self) -> int:
        """How many releases the replay clock has put out so far."""
        return self._released_count

    @property
    def finished(self) -> bool:
        """Whether every release of the timeline is out."""
        return self._finished

    @property
    def active_connections(self) -> int:
        return self._active

    def secrets(self) -> list[str]:
        """Every configured key, for the server runner's log redaction (never log the result)."""
        return self.keys.keys() if self.keys is not None else []

    # ---- replay clock ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.start == "now":
            self._start_clock()
        try:
            yield
        finally:
            if self._clock_task is not None:
                self._clock_task.cancel()

    def _start_clock(self) -> None:
        if self._clock_task is None:
            self._clock_task = asyncio.get_running_loop().create_task(self._run_clock())

    async def _run_clock(self) -> None:
        prev: int | None = None
        rows = 0
        for rel in self.timeline.releases:
            if self.speed is None:
                rows += len(rel.rows)
                if rows >= self.chunk_rows:
                    rows = 0
                    await asyncio.sleep(0)
            elif prev is not None and rel.clock > prev:
                await asyncio.sleep(min((rel.clock - prev) / 1000 / self.speed, self.max_gap))
            self._release(rel)
            prev = rel.clock
        self._finished = True

    def _release(self, rel: Release) -> None:
        self._released.setdefault(rel.sport_key, []).append(rel)
        # the sport's resume clock: the newest last_update of its rows so far (running max)
        marks = self._resume_marks.setdefault(rel.sport_key, [])
        top = marks[-1] if marks else -1
        for row in rel.rows:
            lu = row_time(row)
            if lu is not None and lu > top:
                top = lu
        marks.append(top)
        self._states.setdefault(rel.sport_key, SportState()).apply(rel)
        self._clock_ms = rel.clock
        self._released_count += 1
        for ev in self._waiters.get(rel.sport_key, ()):
            ev.set()

    # ---- auth and accounting -----------------------------------------------------------------

    def _check_stream_key(self, key: str | None) -> tuple[str, KeyRecord | None]:
        """:meth:`_check_key`, plus ``tier`` for a key whose tier may not open odds streams."""
        failure, record = self._check_key(key)
        if not failure and record is not None and not record.may_stream:
            failure = "tier"
        return failure, record

    def _check_key(self, key: str | None) -> tuple[str, KeyRecord | None]:
        """``("", record)`` for a usable key, else the failure: missing, unknown or tier."""
        if not key:
            return "missing", None
        if self.keys is None:
            return "", ANONYMOUS
        record = self.keys.lookup(key)
        if record is None:
            return "unknown", None
        return "", record

    def _acquire(self, key: str, record: KeyRecord) -> bool:
        """Take a connection slot of ``key``; synchronous, so the cap is exact under concurrency."""
        n = self._open_by_key.get(key, 0)
        if n >= record.cap:
            return False
        self._open_by_key[key] = n + 1
        self._active += 1
        return True

    def _free(self, key: str) -> None:
        n = self._open_by_key.get(key, 0) - 1
        if n > 0:
            self._open_by_key[key] = n
        else:
            self._open_by_key.pop(key, None)
        self._active -= 1

    def _attempt(self, sport: str, transport: str) -> tuple[ConnectionRecord, Fault | None]:
        n = self.conn_counters.get(sport, 0) + 1
        self.conn_counters[sport] = n
        fault = pick_fault(self._faults, sport, n, transport)
        rec = ConnectionRecord(sport, n, transport, "open", None if fault is None else fault.spec())
        self.connections_log.append(rec)
        return rec, fault

    @staticmethod
    def _error(status: int, message: str, retry_after: float | None = None, **extra: Any) -> JSONResponse:
        headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else None
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    def _fault_response(self, fault: Fault) -> JSONResponse:
        assert fault.value is not None
        ra = fault.retry_after
        if ra is None and fault.value in (429, 503):
            ra = self.retry_after
        return self._error(fault.value, f"injected fault: http {fault.value}", ra)

    _AUTH_HTTP: Final = {
        "missing": (401, "missing API key: pass ?apiKey=, X-API-Key or Sec-WebSocket-Protocol: apikey.<key>"),
        "unknown": (403, "invalid API key"),
        "tier": (403, "this key's tier may not stream (business, enterprise or scale required)"),
    }
    _AUTH_WS: Final = {
        "missing": (4003, "missing API key"),
        "unknown": (1008, "invalid API key"),
        "tier": (4001, "tier may not stream (business+ required)"),
    }

    # ---- REST --------------------------------------------------------------------------------

    def _rest_auth(self, request: Request) -> tuple[Response | None, str, KeyRecord | None]:
        key = request.query_params.get("apiKey") or request.headers.get("x-api-key")
        failure, record = self._check_key(key)
        if failure:
            status, message = self._AUTH_HTTP[failure]
            return self._error(status, message), "", None
        assert key is not None
        return None, key, record

    async def _sports_endpoint(self, request: Request) -> Response:
        denied, _, _ = self._rest_auth(request)
        if denied is not None:
            return denied
        return JSONResponse([sport_info(s) for s in self._sports])

    async def _usage_endpoint(self, request: Request) -> Response:
        denied, key, record = self._rest_auth(request)
        if denied is not None:
            return denied
        assert record is not None
        return JSONResponse(
            {"key": record.name, "tier": record.tier, "cap": record.cap, "connections": self._open_by_key.get(key, 0)}
        )

    # ---- frames ------------------------------------------------------------------------------

    def _connected(self, conn: _Conn) -> dict[str, Any]:
        return {
            "type": "connected", "sport_key": conn.sport, "tier": conn.record.tier, "push_mode": "raw",
            "diff_mode": False, "min_push_interval_s": 0.0, "filters": conn.filters.echo(), "timestamp": _now_ms(),
        }

    def _hot_feed_status(self, conn: _Conn) -> dict[str, Any]:
        latest: dict[str, int] = {}
        recent: dict[str, int] = {}
        ref = self._clock_ms
        state = self._states.get(conn.sport)
        for row in state.rows() if state is not None else ():
            book, lu = row.get("bookmaker"), row_time(row)
            if not isinstance(book, str) or lu is None:
                continue
            latest[book] = max(latest.get(book, lu), lu)
            if ref is not None and lu >= ref - 60_000:
                recent[book] = recent.get(book, 0) + 1
        sources = [
            {
                "bookmaker": book,
                "latest_ms": ms,
                "age_s": None if ref is None else round(max(ref - ms, 0) / 1000, 3),
                "rows_60s": recent.get(book, 0),
            }
            for book, ms in sorted(latest.items())
        ]
        return {"type": "hot_feed_status", "sport_key": conn.sport, "sources": sources, "timestamp": _now_ms()}

    def _initial_state(self, conn: _Conn) -> dict[str, Any]:
        """The snapshot for ``conn``; takes its cursor in the same step (no await in here)."""
        rels = self._released.get(conn.sport, [])
        since = conn.filters.since
        rows: list[Any]
        if since is None:
            state = self._states.get(conn.sport)
            rows = state.rows() if state is not None else []
        else:
            # Resume from the first release at which the sport's newest last_update reached
            # `since`: every row from there on, in release order, late rows included. A client
            # whose cursor is `since` has processed a prefix of exactly these rows (it drops
            # them by content); rows written earlier but released later are not lost.
            marks = self._resume_marks.get(conn.sport, [])
            start = bisect.bisect_left(marks, since)
            rows = [row for rel in rels[start:] for row in rel.rows]
        rows = filter_rows(rows, conn.filters, conn.filters.event_id)
        conn.cursor = len(rels)
        frame: dict[str, Any] = {
            "type": "initial_state", "sport_key": conn.sport, "timestamp": _now_ms(), "count": len(rows), "data": rows,
        }
        if since is not None:
            frame["since"] = since
        return frame

    async def _emit(self, conn: _Conn, write: Writer, frame: dict[str, Any]) -> None:
        data = _encode(frame)
        fault = conn.fault
        if fault is not None and fault.kind in ("cut", "stall", "close") and conn.sent >= fault.after:
            raise _FaultNow(fault, data)
        await write(data)
        conn.sent += 1
        conn.last_send = time.monotonic()
        if fault is not None and fault.kind in ("stall", "close") and conn.sent >= fault.after:
            raise _FaultNow(fault, b"")  # at once: a quiet stream must not delay them to the next heartbeat

    async def _serve(self, conn: _Conn, write: Writer) -> None:
        """Send the stream to ``conn`` until it closes (or its fault raises :class:`_FaultNow`)."""
        waiters = self._waiters.setdefault(conn.sport, set())
        waiters.add(conn.wake)
        try:
            await self._emit(conn, write, self._connected(conn))
            if conn.transport == "sse":
                await self._emit(conn, write, self._hot_feed_status(conn))
            initial = self._initial_state(conn)
            if self.start == "on-connect":
                self._start_clock()
            await self._emit(conn, write, initial)
            sent = 0
            while not conn.closed:
                conn.wake.clear()
                while conn.pending and not conn.closed:
                    await self._emit(conn, write, conn.pending.pop(0))
                rels = self._released.get(conn.sport, [])
                while conn.cursor < len(rels) and not conn.closed and not conn.pending:
                    rel = rels[conn.cursor]
                    conn.cursor += 1
                    rows = filter_rows(rel.rows, conn.filters, conn.subscribed or conn.filters.event_id)
                    if rows:
                        frame = {
                            "type": "odds_update", "sport_key": conn.sport, "timestamp": _now_ms(),
                            "count": len(rows), "data": rows,
                        }
                        await self._emit(conn, write, frame)
                        sent += 1
                        if sent % 64 == 0:
                            await asyncio.sleep(0)  # a long backlog must not starve the loop
                if conn.closed or conn.pending or conn.cursor < len(self._released.get(conn.sport, [])):
                    continue
                left = conn.filters.heartbeat_s - (time.monotonic() - conn.last_send)
                if left <= 0:
                    heartbeat = {
                        "type": "heartbeat", "sport_key": conn.sport, "timestamp": _now_ms(),
                        "connections": self._active,
                    }
                    await self._emit(conn, write, heartbeat)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.wake.wait(), left)
        finally:
            waiters.discard(conn.wake)

    async def _hold(self, conn: _Conn) -> None:
        """A stalled connection: send nothing until the client leaves (at most ``stall_max_s``)."""
        deadline = time.monotonic() + self.stall_max_s
        while not conn.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.wake.wait(), left)

    # ---- SSE ---------------------------------------------------------------------------------

    async def _sse_endpoint(self, request: Request) -> Response:
        sport = request.path_params["sport"]
        log, fault = self._attempt(sport, "sse")
        if fault is not None and fault.kind == "http":
            log.outcome = f"http {fault.value}"
            return self._fault_response(fault)
        key = request.query_params.get("apiKey") or request.headers.get("x-api-key")
        failure, record = self._check_stream_key(key)
        if failure:
            status, message = self._AUTH_HTTP[failure]
            log.outcome = f"http {status}"
            return self._error(status, message)
        assert key is not None and record is not None
        if sport not in self._sports:
            log.outcome = "http 404"
            return self._error(404, f"unknown sport {_show(sport)}; see /v1/sports")
        try:
            filters = parse_filters(request.query_params, self.sse_heartbeat_s)
        except BadParameter as exc:
            log.outcome = "http 400"
            return self._error(400, str(exc), parameter=exc.parameter)
        if not self._acquire(key, record):
            log.outcome = "http 429"
            return self._error(429, f"concurrent connection cap ({record.cap}) reached for this key", self.retry_after)
        conn = _Conn(sport, "sse", key, record, filters, log, fault)
        return _SSEResponse(self, conn)

    async def _listen_http(self, receive: Receive, conn: _Conn) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            conn.closed = True
            conn.wake.set()

    async def _sse_stream(self, conn: _Conn, send: Send, receive: Receive) -> None:
        """The body of an SSE response; the slot is freed whatever happens."""
        try:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            })
            if conn.fault is not None and conn.fault.kind == "flap":
                conn.log.outcome = "flap"
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            listener = asyncio.create_task(self._listen_http(receive, conn))

            async def write(data: bytes) -> None:
                await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})

            try:
                await self._serve(conn, write)
                conn.log.outcome = "done"
            except _FaultNow as due:
                if due.fault.kind == "cut":
                    event = b"data: " + due.data + b"\n\n"
                    conn.log.outcome = "cut"
                    await send({"type": "http.response.body", "body": event[: len(event) // 2], "more_body": True})
                    return  # without the final chunk: uvicorn drops the connection mid-body
                if due.fault.kind == "stall":
                    conn.log.outcome = "stall"
                    await self._hold(conn)
                else:
                    conn.log.outcome = "end"
            finally:
                listener.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._free(conn.key)

    # ---- WebSocket ---------------------------------------------------------------------------

    async def _ws_deny(self, ws: WebSocket, response: JSONResponse, log: ConnectionRecord) -> None:
        """An HTTP denial of the upgrade (uvicorn supports the ASGI denial extension); without
        the extension the handshake is accepted and closed with 1011."""
        log.outcome = f"http {response.status_code}"
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(response)
        else:
            await ws.accept()
            await ws.close(1011, f"denied with http {response.status_code}")

    async def _ws_endpoint(self, ws: WebSocket) -> None:
        sport = ws.path_params["sport"]
        log, fault = self._attempt(sport, "ws")
        protocols = [p for p in ws.scope.get("subprotocols", []) if p.lower().startswith("apikey.")]
        subprotocol = protocols[0] if protocols else None
        if fault is not None and fault.kind == "http":
            await self._ws_deny(ws, self._fault_response(fault), log)
            return
        key = ws.query_params.get("apiKey") or ws.headers.get("x-api-key")
        if not key and subprotocol is not None:
            key = subprotocol[len("apikey.") :]
        failure, record = self._check_stream_key(key)
        if failure:
            code, reason = self._AUTH_WS[failure]
            log.outcome = f"close {code}"
            await ws.accept(subprotocol=subprotocol)
            await ws.close(code, reason)
            return
        assert key is not None and record is not None
        if sport not in self._sports:
            await self._ws_deny(ws, self._error(404, f"unknown sport {_show(sport)}; see /v1/sports"), log)
            return
        try:
            filters = parse_filters(ws.query_params, self.ws_heartbeat_s)
        except BadParameter as exc:
            log.outcome = "close 1007"
            await ws.accept(subprotocol=subprotocol)
            await ws.close(1007, f"invalid {exc.parameter}"[:120])
            return
        if not self._acquire(key, record):
            log.outcome = "close 4002"
            await ws.accept(subprotocol=subprotocol)
            await ws.close(4002, f"concurrent connection cap ({record.cap}) reached")
            return
        conn = _Conn(sport, "ws", key, record, filters, log, fault)
        try:
            await self._ws_stream(ws, conn, subprotocol)
        finally:
            self._free(key)

    async def _ws_stream(self, ws: WebSocket, conn: _Conn, subprotocol: str | None) -> None:
        await ws.accept(subprotocol=subprotocol)
        if conn.fault is not None and conn.fault.kind == "flap":
            conn.log.outcome = "flap"
            await ws.close(1000, "injected fault: flap")
            return
        reader = asyncio.create_task(self._ws_reader(ws, conn))

        async def write(data: bytes) -> None:
            await ws.send_text(data.decode())

        try:
            await self._serve(conn, write)
            conn.log.outcome = "done"
        except (WebSocketDisconnect, OSError, RuntimeError):
            conn.log.outcome = "done"
        except _FaultNow as due:
            kind = due.fault.kind
            if kind == "cut":
                conn.log.outcome = "cut"
                return  # no close frame: uvicorn closes the transport, the client sees 1006
            if kind == "stall":
                conn.log.outcome = "stall"
                await self._hold(conn)
            else:
                code = due.fault.value
                assert code is not None
                conn.log.outcome = f"close {code}"
                with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                    await ws.close(code, f"injected fault: close {code}")
        finally:
            reader.cancel()

    async def _ws_reader(self, ws: WebSocket, conn: _Conn) -> None:
        """Read client commands; each gets a reply frame queued for the stream loop."""
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                if len(conn.pending) < 100:  # a client that floods commands gets no more replies
                    conn.pending.append(self._command(conn, text))
                    conn.wake.set()
        except (WebSocketDisconnect, OSError, RuntimeError):
            return
        finally:
            conn.closed = True
            conn.wake.set()

    @staticmethod
    def _command(conn: _Conn, text: str) -> dict[str, Any]:
        """Apply one client command; returns the reply frame (``error`` for a bad command)."""
        try:
            obj = decode_json(text)
        except FeedError:  # any decoder failure, deep nesting too: an error reply, never a crash
            return {"type": "error", "message": "command is not JSON", "timestamp": _now_ms()}
        ctype = obj.get("type") if isinstance(obj, dict) else None
        if ctype == "subscribe":
            event_id = obj.get("event_id")
            if not isinstance(event_id, str) or not event_id:
                return {"type": "error", "message": "subscribe needs a non-empty event_id", "timestamp": _now_ms()}
            conn.subscribed = event_id
            return {"type": "subscribed", "event_id": event_id, "timestamp": _now_ms()}
        if ctype == "unsubscribe":
            conn.subscribed = None
            return {"type": "unsubscribed", "timestamp": _now_ms()}
        shown = _show(ctype) if isinstance(ctype, str) else "missing"
        return {"type": "error", "message": f"unknown command type {shown}", "timestamp": _now_ms()}


class _SSEResponse(Response):
    """A streaming response driven by the mock (it frees the connection slot when done)."""

    def __init__(self, mock: MockUpstream, conn: _Conn) -> None:
        super().__init__(status_code=200, media_type="text/event-stream")
        self._mock = mock
        self._conn = conn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._mock._sse_stream(self._conn, send, receive)
