"""One connection to the bus, its two streams, and the edge where nats exceptions stop.

:func:`connect` opens a nats-py connection that reconnects forever (a detector or frontend
outlives any one server), but whose *first* connect is bounded: a wrong ``--bus`` fails at
start with a :class:`~dropengine.core.errors.BusError` naming the servers. Every nats
exception is translated here (:meth:`Bus.translate`) or in :mod:`.log`; no caller of the bus
package ever sees one. Messages name the servers (scheme, host, port), never credentials.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..core.errors import BusError, ConfigError, DropEngineError, FencedError
from .config import BusConfig

if TYPE_CHECKING:  # nats is imported lazily: `import dropengine.bus` must not need the extra
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = [
    "Bus", "BusUnavailable", "StreamNotFound", "connect", "connect_unless", "ensure_streams", "record_partitions",
    "recorded_partitions", "retry_unavailable", "transient", "unless_stopped",
]

log = logging.getLogger("dropengine.bus")

T = TypeVar("T")

#: JetStream API error codes this package acts on.
WRONG_LAST_SEQUENCE: Final = 10071
STREAM_NOT_FOUND: Final = 10059
STREAM_NAME_IN_USE: Final = 10058
NO_PEERS: Final = 10005  # "no suitable peers for placement" (its description says why)


def _nats_errors() -> tuple[type[BaseException], ...]:
    import nats.errors

    return (nats.errors.Error, asyncio.TimeoutError, OSError)


class BusUnavailable(BusError):
    """The bus did not answer (a request timed out, no server or stream leader responded, a
    503 while JetStream elects a leader): a *transient* failure, retried by whoever can wait
    (:func:`retry_unavailable`). Any other :class:`BusError` is a definite answer (a stream or
    bucket not found, a refusal, a closed connection) and is not retried."""


class StreamNotFound(BusError):
    """A stream (or bucket) the command needs does not exist: a definite answer."""


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` (a nats exception, or a :class:`BusError` made of one) may go away by
    itself: nobody answered, the answer did not come in time, or JetStream has no leader (503)."""
    if isinstance(exc, BusUnavailable):
        return True
    if isinstance(exc, DropEngineError):
        return False
    import nats.errors
    from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

    if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError, NoStreamResponseError,
                        nats.errors.NoRespondersError, ServiceUnavailableError, nats.errors.ConnectionReconnectingError,
                        nats.errors.StaleConnectionError, nats.errors.FlushTimeoutError)):
        return True
    if isinstance(exc, APIError):
        # 503 from the API, a stream whose leader is gone (10008), or a placement (a new stream or
        # bucket) while a node is offline: 10005 "no suitable peers for placement, peer offline"
        # (a node restarting, or not yet joined a cluster that just started). 10005 for other
        # reasons (more replicas than nodes, no storage) does not go away: a definite error.
        if exc.err_code == NO_PEERS and "peer offline" in (exc.description or ""):
            return True
        return exc.code == 503 or exc.err_code in (10008,)
    return False


async def retry_unavailable(what: str, call: Callable[[], Awaitable[T]], *, logger: logging.Logger | None = None,
                            first_s: float = 0.1, max_s: float = 2.0,
                            on_failure: Callable[[], Awaitable[None]] | None = None) -> T:
    """``await call()`` until it does not fail with :class:`BusUnavailable`: a transient
    failure is waited out with backoff (``first_s`` doubling to ``max_s``), logged as ONE
    warning per outage (and one line when the bus answers again). Definite errors leave at
    once, also from ``on_failure`` (awaited after each failed attempt: a caller's count, or
    its look at whether what it writes to still exists). Runs until the bus answers: the
    caller stops it by cancelling (SIGTERM, --duration)."""
    out = logger if logger is not None else log
    pause, failed = first_s, 0
    while True:
        try:
            result = await call()
        except BusUnavailable as exc:
            if not failed:
                out.warning("%s: the bus does not answer (%s); retrying until it does", what, exc)
            failed += 1
            if on_failure is not None:
                await on_failure()
            await asyncio.sleep(pause)
            pause = min(pause * 2, max_s)
            continue
        if failed:
            out.warning("%s: the bus answers again (after %d failed attempts)", what, failed)
        return result


def describe(exc: BaseException) -> str:
    """A short text for a nats exception: its class and, for a JetStream API error, the code
    and description (nats-py's ``str()`` of some errors is empty)."""
    from nats.js.errors import APIError

    if isinstance(exc, APIError):
        if exc.code is None and not exc.description:  # (a 503 status without a body: no responders)
            return f"{type(exc).__name__}: no JetStream answer"
        return f"{type(exc).__name__} {exc.code} (err_code {exc.err_code}): {exc.description}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Bus:
    """An open connection: ``nc`` (nats-py client), ``js`` (its JetStream context), ``config``.

    Use as ``async with await connect(cfg, name=...) as bus:`` or call :meth:`close`.
    ``is_connected`` is False while the client reconnects (``/healthz`` reports it).
    """

    def __init__(self, nc: Client, js: JetStreamContext, config: BusConfig, name: str) -> None:
        self.nc = nc
        self.js = js
        self.config = config
        self.name = name
        #: How many times the connection was lost and regained since it opened.
        self.reconnects = 0
        self.disconnects = 0
        self.closing = False

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def server(self) -> str:
        """The server currently connected to (``host:port``), for messages."""
        url = getattr(self.nc, "connected_url", None)
        if url is None:
            return self.config.display()
        return f"{url.hostname}:{url.port}"

    def error(self, exc: BaseException, what: str) -> BusError:
        """``exc`` (a nats exception) as a :class:`BusError` saying what failed and where
        (:class:`BusUnavailable` when it is :func:`transient`)."""
        from nats.js.errors import APIError

        if isinstance(exc, DropEngineError):
            return exc if isinstance(exc, BusError) else BusError(f"{what}: {exc}")
        if isinstance(exc, APIError) and exc.err_code == WRONG_LAST_SEQUENCE:
            return FencedError(f"{what}: another writer moved the log ({exc.description}) on {self.server}")
        if transient(exc):
            return BusUnavailable(f"{what} failed on {self.server} ({self.config.display()}): {describe(exc)}")
        return BusError(f"{what} failed on {self.server} ({self.config.display()}): {describe(exc)}")

    @contextmanager
    def translate(self, what: str) -> Iterator[None]:
        """``with bus.translate("save checkpoint p0.2"): await ...``: nats exceptions leave as
        :class:`BusError` (:class:`FencedError` for a wrong expected sequence)."""
        try:
            yield
        except _nats_errors() as exc:
            raise self.error(exc, what) from None

    async def close(self) -> None:
        """Close the connection (pending publishes flushed, bounded by the connect timeout)."""
        if self.nc.is_closed:
            return
        self.closing = True
        try:
            await asyncio.wait_for(self.nc.close(), timeout=self.config.connect_timeout_s)
        except _nats_errors() as exc:
            log.debug("closing the bus connection: %s", describe(exc))

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def connect(config: BusConfig, *, name: str) -> Bus:
    """Connect to ``config.servers``; :class:`BusError` naming them when no server answers
    within ``config.connect_timeout_s``. Afterwards the client reconnects forever (short
    waits), re-subscribing on its own; JetStream requests in between time out and are
    translated (publishes retried, see :mod:`.log`)."""
    from nats.aio.client import Client as NATS

    if not isinstance(config, BusConfig):
        raise TypeError(f"config: {type(config).__name__} is not a BusConfig")
    nc = NATS()
    bus_ref: list[Bus] = []

    async def on_error(exc: Exception) -> None:
        # nats-py reports every failed (re)connect attempt here: expected while a server is
        # down, so debug; the disconnect itself is logged once below.
        log.debug("bus %s: %s", config.display(), describe(exc))

    async def on_disconnect() -> None:
        if nc.is_closed or nc.is_draining or (bus_ref and bus_ref[0].closing):
            return
        if bus_ref:
            bus_ref[0].disconnects += 1
        log.warning("bus: disconnected from %s; reconnecting", config.display())

    async def on_reconnect() -> None:
        if bus_ref:
            bus_ref[0].reconnects += 1
        log.warning("bus: reconnected to %s", bus_ref[0].server if bus_ref else config.display())

    options: dict[str, Any] = dict(
        servers=list(config.servers),
        name=name,
        connect_timeout=max(0.5, min(2.0, config.connect_timeout_s)),
        reconnect_time_wait=0.25,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        ping_interval=5,
        max_outstanding_pings=2,
    )
    # With reconnects unbounded nats-py would retry a first connect forever: bound it here. Its own
    # task, waited for with asyncio.wait (which never cancels it): a timeout or a cancel of this
    # call stops it by _abandon, which makes sure it ends.
    connecting = asyncio.ensure_future(nc.connect(**options))
    try:
        await asyncio.wait({connecting}, timeout=config.connect_timeout_s)
    except asyncio.CancelledError:  # the caller stops (a stop while starting): no connect left behind
        await _abandon(nc, connecting)
        raise
    try:
        if not connecting.done():
            raise TimeoutError
        connecting.result()
    except _nats_errors() as exc:
        # the half-open client may be in any state; what we report is exc
        await _abandon(nc, connecting)
        raise BusError(
            f"cannot connect to the bus at {config.display()} within {config.connect_timeout_s:g} s: {describe(exc)}"
        ) from None
    js = nc.jetstream(timeout=config.request_timeout_s)
    bus = Bus(nc, js, config, name)
    bus_ref.append(bus)
    return bus


async def unless_stopped(call: Awaitable[T], stop: asyncio.Event | None) -> asyncio.Future[T] | None:
    """Run ``call`` as its own task until it ends or ``stop`` is set, whichever comes first: the
    ended task (the caller reads its result or error), or ``None`` when ``stop`` came first (the
    task then cancelled and waited for until it ended). The one way a bus command's wait watches
    its stop: the first connect (:func:`connect_unless`), a request retried while the bus does not
    answer (``ingest``/``detect``'s streams, ``serve --bus``'s probe of the log). ``stop`` None:
    the call alone."""
    task = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        await asyncio.wait({task} if stopped is None else {task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stopped is not None:
            stopped.cancel()
        if not task.done():
            task.cancel()  # (connect's own cancel path stops nats-py's and closes the client)
            await asyncio.wait({task})
    return None if task.cancelled() else task


async def connect_unless(config: BusConfig, stop: asyncio.Event, *, name: str) -> Bus | None:
    """:func:`connect`, given up as soon as ``stop`` is set (a signal, or the end of a
    ``--duration``, while the first connect waits for a server that does not answer): ``None``
    then, the connect cancelled and its client closed (:func:`_abandon`). A connect that fails as
    it is cancelled is the stop's, not a :class:`BusError`. How every command's first connect
    watches its stop (``ingest``, ``detect``, ``serve --bus``'s probe); before session 18 a stop
    waited for the connect, up to ``connect_timeout_s``."""
    connecting = await unless_stopped(connect(config, name=name), stop)
    if connecting is None or (stop.is_set() and connecting.exception() is not None):
        return None
    return connecting.result()


async def _abandon(nc: Client, connecting: asyncio.Future[Any]) -> None:
    """Stop a first connect that will not be used (timed out, failed, or its caller cancelled) and
    close its client, each wait bounded. nats-py's connect can ignore a cancel: under Python 3.11
    a ``wait_for`` inside it whose awaited call completes as the cancel arrives returns the
    result and drops the cancel, and its loop then reconnects for ever (seen right after the TCP
    accept of a server that does not answer: a stopped ``detect`` or ``ingest`` waited for ever, and
    ``wait_for``'s own timeout never returned). So it is cancelled again until it ends."""
    for _ in range(40):  # (a few rounds at most: a cancel is dropped only in that one race)
        if connecting.done():
            break
        connecting.cancel()
        await asyncio.wait({connecting}, timeout=0.05)
    if connecting.done() and not connecting.cancelled():
        connecting.exception()  # (retrieved: reported by the caller, not as "never retrieved")
    closing = asyncio.ensure_future(nc.close())
    await asyncio.wait({closing}, timeout=1.0)
    if not closing.done():
        closing.cancel()
    elif not closing.cancelled():
        closing.exception()  # (a close of a half-open client may fail: nothing more to do with it)


#: The quote stream's metadata key that records the partition count ingest publishes with.
PARTITIONS_KEY: Final = "dropengine_partitions"
#: BusConfig fields per stream setting (which flag sets it).
_FIELDS: Final[dict[str, dict[str, str]]] = {
    "alerts": {"max_age": "log_max_age_s", "max_bytes": "log_max_bytes", "num_replicas": "replicas",
               "duplicate_window": "duplicate_window_s"},
    "quotes": {"max_age": "quote_max_age_s", "max_bytes": "quote_max_bytes", "num_replicas": "replicas",
               "duplicate_window": "duplicate_window_s"},
}
#: Settings whose lowering loses data or safety at once (trims the stream, fewer copies).
_SHRINKS: Final = ("max_age", "max_bytes", "num_replicas")


def _stream_config(bus: Bus, which: str) -> Any:
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    cfg = bus.config
    if which == "alerts":
        name, subjects, age, size = cfg.alert_stream, [cfg.alert_subjects], cfg.log_max_age_s, cfg.log_max_bytes
    else:
        name, subjects, age, size = cfg.quote_stream, [cfg.quote_subjects], cfg.quote_max_age_s, cfg.quote_max_bytes
    return StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=float(age),
        max_bytes=int(size),
        num_replicas=cfg.replicas,
        duplicate_window=float(cfg.duplicate_window_s),
        discard=DiscardPolicy.OLD,
        allow_direct=True,
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and a is not None and abs(float(a) - float(b)) <= 1e-6
    return bool(a == b)


def _limit(value: Any) -> float:
    """A stream limit as a number; JetStream's 0 / -1 (and none) mean unlimited."""
    v = float(value or 0)
    return math.inf if v <= 0 else v


def recorded_partitions(info: Any) -> int | None:
    """The partition count recorded in the quote stream's info (``None``: none recorded)."""
    text = ((getattr(info.config, "metadata", None) or {}).get(PARTITIONS_KEY) or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


async def _ensure(bus: Bus, which: str, given: frozenset[str] | None, shrink: bool, partitions: int | None,
                  repartition: bool) -> None:
    from dataclasses import replace

    from nats.js.errors import APIError, NotFoundError

    want = _stream_config(bus, which)
    record = which == "quotes" and partitions is not None
    if record:
        want.metadata = {PARTITIONS_KEY: str(partitions)}
    name = want.name
    for _ in range(3):  # another process may create it between our look and our create
        try:
            info = await bus.js.stream_info(name)
        except NotFoundError:
            try:
                await bus.js.add_stream(want)
                log.info("bus: created stream %s (%s)", name, ", ".join(want.subjects))
                return
            except APIError as exc:
                if exc.err_code == STREAM_NAME_IN_USE:
                    continue
                raise
        have = info.config
        if sorted(have.subjects or []) != sorted(want.subjects):
            raise BusError(
                f"stream {name} on {bus.server} has subjects {have.subjects!r}, not {want.subjects!r}: "
                f"another deployment uses the prefix {bus.config.prefix!r} (choose another --bus-prefix)"
            )
        if have.storage != want.storage:
            raise BusError(f"stream {name} on {bus.server} uses {have.storage} storage, not {want.storage}")
        # Only the settings the caller gave change an existing stream: a restarted ingest with
        # its defaults must not undo what an operator set (retention, replicas).
        update: dict[str, Any] = {}
        for field, cfg_field in _FIELDS[which].items():
            a, b = getattr(want, field), getattr(have, field)
            if (given is None or cfg_field in given) and not _same(a, b):
                update[field] = a
        lowered = [f for f in _SHRINKS if f in update and _limit(update[f]) < _limit(getattr(have, f))]
        if lowered and not shrink:
            what = "; ".join(f"{f} from {getattr(have, f)!r} to {update[f]!r}" for f in lowered)
            raise BusError(f"stream {name} on {bus.server}: this would lower {what} (trimming what it holds, or "
                           "its copies); give the flag that allows shrinking (ingest --allow-shrink) to do it")
        for field in ("discard", "allow_direct"):  # how the log works, not an operator's choice
            if not _same(getattr(want, field), getattr(have, field)):
                update[field] = getattr(want, field)
        metadata = dict(getattr(have, "metadata", None) or {})
        if partitions is not None and which == "quotes":
            before = recorded_partitions(info)
            if before is not None and before != partitions and not repartition:
                raise ConfigError(_other_count(name, bus.server, before, partitions))
            if before != partitions:
                metadata[PARTITIONS_KEY] = str(partitions)
                update["metadata"] = metadata
        if update:
            await bus.js.update_stream(replace(have, **update))
            log.info("bus: updated stream %s (%s)", name, ", ".join(
                f"{f} {getattr(have, f)!r} -> {v!r}" if f != "metadata" else f"partitions {partitions}"
                for f, v in update.items()))
        return
    raise BusError(f"stream {name} on {bus.server}: created and removed concurrently, giving up")


async def ensure_streams(bus: Bus, *, given: Collection[str] | None = None, shrink: bool = False,
                         partitions: int | None = None, repartition: bool = False) -> None:
    """Create the alert and quote streams with ``bus.config``'s settings, or update existing
    ones (idempotent); :class:`BusError` when a stream of that name has other subjects
    (another deployment with the same prefix).

    ``given``: the :class:`BusConfig` fields the user set (``ingest``'s flags given); only
    those change an existing stream (``None``: all). Lowering ``max_age``, ``max_bytes`` or
    the replicas of an existing stream needs ``shrink`` (else :class:`BusError` naming the old
    and new values). ``partitions``: record the count in the quote stream (its metadata); a
    stream recorded with another count is refused (:class:`ConfigError` naming both) unless
    ``repartition``."""
    chosen = None if given is None else frozenset(given)
    for which in ("alerts", "quotes"):
        with bus.translate(f"ensure stream {which}"):
            await _ensure(bus, which, chosen, shrink, partitions, repartition)


async def record_partitions(bus: Bus, partitions: int, *, repartition: bool = False) -> None:
    """Record ``partitions`` in the existing quote stream (its metadata), as
    :func:`ensure_streams` does: :class:`ConfigError` naming both counts when another one is
    recorded (unless ``repartition``); nothing to do when it is recorded already."""
    from dataclasses import replace

    from nats.js.errors import NotFoundError

    name = bus.config.quote_stream
    with bus.translate(f"record the partition count in {name}"):
        try:
            info = await bus.js.stream_info(name)
        except NotFoundError:
            raise StreamNotFound(f"the quote stream {name} on {bus.server} was deleted (stream not found)") from None
        before = recorded_partitions(info)
        if before == partitions:
            return
        if before is not None and not repartition:
            raise ConfigError(_other_count(name, bus.server, before, partitions))
        metadata = {**(getattr(info.config, "metadata", None) or {}), PARTITIONS_KEY: str(partitions)}
        await bus.js.update_stream(replace(info.config, metadata=metadata))
        log.info("bus: %s records %d partitions", name, partitions)


def _other_count(name: str, server: str, before: int, partitions: int) -> str:
    return (f"partitions: the quote stream {name} on {server} was partitioned into {before} (recorded by ingest); "
            f"this ingest runs --partitions {partitions}. Detectors of the other count would miss events: give "
            f"--repartition to change it (and restart every detector with --partition I/{partitions})")
