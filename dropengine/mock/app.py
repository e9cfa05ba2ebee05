"""The mock upstream's ASGI app: the vendor's SSE and WebSocket odds streams, replayed.

:class:`MockUpstream` is the server side: a Starlette app (``mock.app``) serving
``/v1/sports``, ``/v1/usage``, ``/v1/sse/odds|hot/{sport}`` and ``/ws/odds/{sport}`` (and
``/v1/ws/odds/{sport}``) with the vendor's auth forms, status and close codes, connection
caps and injected faults (:mod:`dropengine.mock.faults`). The rest lives in its own module:
the replay clock and the released lists in :mod:`.clock`, one connection's stream (frames,
cursor, subscription, faults acted out) in :mod:`.connection`, the frames themselves, the
row filters and the command replies in :mod:`.frames` (pure), and the query parameters in
:mod:`dropengine.formats.query` (shared with the live client).

Everything runs on the server's event loop; the methods tests call from another thread
(:meth:`MockUpstream.set_sports`, :meth:`MockUpstream.set_faults`) only swap immutable tuples.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..core.errors import ConfigError
from ..core.keys import KeyRecord, KeyTable
from ..formats.query import HEARTBEAT_RANGE, QueryError, StreamQuery
from ..formats.sse import encode_event
from .clock import ReplayClock
from .connection import Conn, ConnectionRecord, FaultNow, Writer
from .faults import Fault, parse_faults, pick_fault
from .frames import filter_rows, show, sport_info
from .timeline import Timeline

__all__ = ["ConnectionRecord", "MockUpstream", "filter_rows", "sport_info"]

SSE_HEARTBEAT_S: Final = 5
WS_HEARTBEAT_S: Final = 30
#: Without ``--keys`` any non-empty key is accepted with this record.
ANONYMOUS: Final = KeyRecord("anonymous", "business", 100)

def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class MockUpstream:
    """A vendor-compatible fake upstream replaying ``timeline``; serve ``self.app`` with uvicorn.

    ``speed``: replay-clock multiplier (``None``: as fast as possible, in chunks of
    ``chunk_rows`` rows between yields to the loop). ``start``: ``on-connect`` starts the
    clock when the first stream's ``initial_state`` is taken (with ``start_sports`` n: once
    streams of n different sports have taken theirs, so a client opening several sports'
    streams gets every sport's releases from the first whatever the order and delay of its
    connections), ``now`` at server startup.
    ``keys``: checked keys (``None``: any non-empty key is a business key, cap 100).
    """

    def __init__(
        self,
        timeline: Timeline,
        *,
        keys: KeyTable | None = None,
        speed: float | None = 1.0,
        start: str = "on-connect",
        start_sports: int = 1,
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
        if type(start_sports) is not int or start_sports < 1 or (start == "now" and start_sports != 1):
            raise ConfigError(f"start_sports: {start_sports!r} must be a whole number >= 1 (1 with --start now)")
        if not (max_gap >= 0 and math.isfinite(max_gap)):
            raise ConfigError(f"--max-gap: {max_gap!r} must be a non-negative number of seconds")
        if not (retry_after >= 0 and math.isfinite(retry_after)):
            raise ConfigError(f"--retry-after: {retry_after!r} must be a non-negative number of seconds")
        for name, hb in (("sse_heartbeat_s", sse_heartbeat_s), ("ws_heartbeat_s", ws_heartbeat_s)):
            if not HEARTBEAT_RANGE[0] <= hb <= HEARTBEAT_RANGE[1]:
                raise ConfigError(f"{name}: {hb!r} must be {HEARTBEAT_RANGE[0]}..{HEARTBEAT_RANGE[1]}")
        self.timeline = timeline
        self.keys = keys
        self.speed = speed
        self.start = start
        self.start_sports = start_sports
        self.max_gap = max_gap
        self.retry_after = retry_after
        self.sse_heartbeat_s = sse_heartbeat_s
        self.ws_heartbeat_s = ws_heartbeat_s
        self.stall_max_s = stall_max_s
        self.clock = ReplayClock(timeline, speed, max_gap, chunk_rows)
        self._sports: tuple[str, ...] = tuple(dict.fromkeys([*timeline.sports, *sports_extra]))
        if start_sports > len(self._sports):  # (the clock would wait for ever: no error, only heartbeats)
            raise ConfigError(f"start_sports: {start_sports!r} is more than the {len(self._sports)} sports served "
                              f"({', '.join(self._sports) or 'none'})")
        self._faults: tuple[Fault, ...] = parse_faults(faults)
        #: Every stream connection attempt in arrival order (see :class:`ConnectionRecord`).
        self.connections_log: list[ConnectionRecord] = []
        #: Stream connection attempts per sport (both transports; the last number given).
        self.conn_counters: dict[str, int] = {}
        self._open_by_key: dict[str, int] = {}
        self._active = 0
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
        return self.clock.released_count

    @property
    def finished(self) -> bool:
        """Whether every release of the timeline is out."""
        return self.clock.finished

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
            self.clock.start()
        try:
            yield
        finally:
            self.clock.stop()

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

    # ---- streams ----------------------------------------------------------------------------

    async def _serve(self, conn: Conn, write: Writer) -> None:
        """Send the stream to ``conn`` until it closes (or its fault raises :class:`FaultNow`)."""
        start_sports = self.start_sports if self.start == "on-connect" else 0
        await conn.serve(self.clock, write, tier=conn.record.tier, start_sports=start_sports,
                         connections=lambda: self._active)

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
            return self._error(404, f"unknown sport {show(sport)}; see /v1/sports")
        try:
            query = StreamQuery.from_params(request.query_params)
        except QueryError as exc:
            log.outcome = "http 400"
            return self._error(400, str(exc), parameter=exc.parameter)
        if not self._acquire(key, record):
            log.outcome = "http 429"
            return self._error(429, f"concurrent connection cap ({record.cap}) reached for this key", self.retry_after)
        heartbeat = query.heartbeat_s if query.heartbeat_s is not None else self.sse_heartbeat_s
        conn = Conn(sport, "sse", key, record, query, heartbeat, log, fault)
        return _SSEResponse(self, conn)

    @staticmethod
    async def _listen_http(receive: Receive, conn: Conn) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            conn.close()

    async def _sse_stream(self, conn: Conn, send: Send, receive: Receive) -> None:
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
                await send({"type": "http.response.body", "body": encode_event(data), "more_body": True})

            try:
                await self._serve(conn, write)
                conn.log.outcome = "done"
            except FaultNow as due:
                if due.fault.kind == "cut":
                    event = encode_event(due.data)
                    conn.log.outcome = "cut"
                    await send({"type": "http.response.body", "body": event[: len(event) // 2], "more_body": True})
                    return  # without the final chunk: uvicorn drops the connection mid-body
                if due.fault.kind == "stall":
                    conn.log.outcome = "stall"
                    await conn.hold(self.stall_max_s)
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
            await self._ws_deny(ws, self._error(404, f"unknown sport {show(sport)}; see /v1/sports"), log)
            return
        try:
            query = StreamQuery.from_params(ws.query_params)
        except QueryError as exc:
            log.outcome = "close 1007"
            await ws.accept(subprotocol=subprotocol)
            await ws.close(1007, f"invalid {exc.parameter}"[:120])
            return
        if not self._acquire(key, record):
            log.outcome = "close 4002"
            await ws.accept(subprotocol=subprotocol)
            await ws.close(4002, f"concurrent connection cap ({record.cap}) reached")
            return
        heartbeat = query.heartbeat_s if query.heartbeat_s is not None else self.ws_heartbeat_s
        conn = Conn(sport, "ws", key, record, query, heartbeat, log, fault)
        try:
            await self._ws_stream(ws, conn, subprotocol)
        finally:
            self._free(key)

    async def _ws_stream(self, ws: WebSocket, conn: Conn, subprotocol: str | None) -> None:
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
        except FaultNow as due:
            kind = due.fault.kind
            if kind == "cut":
                conn.log.outcome = "cut"
                return  # no close frame: uvicorn closes the transport, the client sees 1006
            if kind == "stall":
                conn.log.outcome = "stall"
                await conn.hold(self.stall_max_s)
            else:
                code = due.fault.value
                assert code is not None
                conn.log.outcome = f"close {code}"
                with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                    await ws.close(code, f"injected fault: close {code}")
        finally:
            reader.cancel()

    @staticmethod
    async def _ws_reader(ws: WebSocket, conn: Conn) -> None:
        """Read client commands; each gets a reply frame queued for the stream loop."""
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                conn.command(text)
        except (WebSocketDisconnect, OSError, RuntimeError):
            return
        finally:
            conn.close()


class _SSEResponse(Response):
    """A streaming response driven by the mock (it frees the connection slot when done)."""

    def __init__(self, mock: MockUpstream, conn: Conn) -> None:
        super().__init__(status_code=200, media_type="text/event-stream")
        self._mock = mock
        self._conn = conn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._mock._sse_stream(self._conn, send, receive)
