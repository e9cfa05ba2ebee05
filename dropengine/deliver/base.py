"""The sink interface and the queue every network sink shares.

A :class:`Sink` takes alerts with :meth:`~Sink.offer`, which never blocks and never raises
for a delivery problem: it returns ``False`` when the sink's bounded queue is full (the alert
is counted as dropped and written to the dead-letter file, if there is one). Delivery runs in
the sink's own tasks on the event loop that called :meth:`~Sink.start`; :meth:`~Sink.aclose`
stops taking alerts and drains what is queued until a deadline, then dead-letters the rest.

Accounting (:class:`SinkCounters`), exact once a sink is closed::

    offered == delivered + failed + dropped

``failed``: given up after the attempts allowed, rejected by the receiver (a 4xx other than
429), or still undelivered at the close deadline; ``dropped``: refused by a full queue (or
offered after close). Each failed or dropped alert is one line of the dead-letter file, when
the sink has one (``dead_lettered`` counts the lines written: the file's own thread writes them,
so a slow dead-letter target never holds :meth:`~Sink.offer`).

:meth:`QueuedSink.offer` is thread-safe: a library's sync code may offer from any thread while
the loop runs elsewhere (:class:`~dropengine.deliver.background.BackgroundSinks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from ..core.alerts import Alert, encode_alert
from ..core.errors import ConfigError
from .rules import dead_letter_record, delivery_id, drain_seconds

__all__ = ["DEFAULT_QUEUE", "DeadLetterFile", "Queued", "QueuedSink", "Sink", "SinkCounters", "name_apart"]

#: Alerts a sink holds before :meth:`Sink.offer` refuses (a full queue: dropped, dead-lettered).
DEFAULT_QUEUE: Final = 1000
#: Bytes of dead-letter records a :class:`DeadLetterFile` holds while its writer catches up.
_MAX_PENDING: Final = 16 * 1024 * 1024
#: Seconds a close waits for the dead-letter file beyond its drain (a slow disk).
_FLUSH_S: Final = 5.0


@dataclass(slots=True)
class SinkCounters:
    """What a sink did with the alerts offered to it (see the module docstring)."""

    offered: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    #: requests sent again after a failure (a 5xx, a timeout, a network error, a 429)
    retried: int = 0
    #: lines written to the dead-letter file
    dead_lettered: int = 0
    #: requests sent (each attempt of each message)
    requests: int = 0


@runtime_checkable
class Sink(Protocol):
    """Where alerts go: stdout, a file, a webhook, a chat. See the module docstring."""

    name: str
    counters: SinkCounters

    def offer(self, alert: Alert, delivery: str | None = None) -> bool:
        """Queue ``alert`` without blocking; ``False`` (counted) when the queue is full.
        ``delivery``: its delivery id (default: derived from the alert's JSON)."""
        ...

    async def start(self) -> None:
        """Start delivering, on the running loop."""
        ...

    async def aclose(self, drain_s: float = 10.0) -> None:
        """Stop taking alerts, deliver what is queued for up to ``drain_s`` seconds, then
        dead-letter what is left."""
        ...


class DeadLetterFile:
    """The NDJSON file of what could not be delivered (:func:`~.rules.dead_letter_record`),
    appended to (an existing file keeps its lines). Several sinks and threads may share one.

    :meth:`write` never waits for the file: records go to a bounded buffer that a writer
    thread of this file appends (it runs while there is something to write), so a slow disk,
    a network file system or a pipe whose reader stalls never holds the caller (``offer()``
    in the detection loop, a sink's delivery task). :meth:`flush` waits for the buffer to be
    written (a sink's close does). A FIFO with no reader is refused at construction (opening
    it would wait for one)."""

    def __init__(self, path: Path | str, flag: str = "dead_letter", max_pending_bytes: int = _MAX_PENDING) -> None:
        self.path = Path(path)
        self.max_pending_bytes = max_pending_bytes
        self._cond = threading.Condition()
        #: (bytes, records, on_written) waiting for the writer thread
        self._pending: deque[tuple[bytes, int, Callable[[int], None] | None]] = deque()
        self._pending_bytes = 0
        self._writing = False
        self._partial = False  # (writer thread only) a batch broke off part-way
        #: records appended to the file
        self.written = 0
        #: records lost: the buffer was full, or the file could not be written
        self.lost = 0
        try:  # fail now, not at the first failed delivery; O_NONBLOCK: a FIFO without a reader fails, not waits
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666))
        except OSError as exc:
            why = "a pipe with no reader" if exc.errno == errno.ENXIO else exc.strerror or str(exc)
            raise ConfigError(f"{flag}: cannot write {str(self.path)!r}: {why}") from None

    def __repr__(self) -> str:
        return f"DeadLetterFile({str(self.path)!r})"

    def write(self, records: Sequence[bytes], on_written: Callable[[int], None] | None = None) -> int:
        """Hand ``records`` to the writer thread, without waiting; returns how many were taken
        (0 when the buffer is full: they are counted in :attr:`lost`, the sink goes on).
        ``on_written(n)`` is called from the writer thread once they are in the file."""
        if not records:
            return 0
        data = b"".join(records)
        with self._cond:
            if self._pending_bytes + len(data) > self.max_pending_bytes:
                self.lost += len(records)
                return 0
            self._pending.append((data, len(records), on_written))
            self._pending_bytes += len(data)
            start = not self._writing
            self._writing = True
        if start:
            try:
                threading.Thread(target=self._run, name="dropengine dead-letter", daemon=True).start()
            except RuntimeError:  # at interpreter exit (Python 3.12+ starts no thread then): write here
                self._run()
        return len(records)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._writing = False
                    self._cond.notify_all()
                    return
                batch = list(self._pending)
                self._pending.clear()
            data = b"".join(b for b, _, _ in batch)
            try:
                ok = self._append(data)
            except OSError:  # a full disk, a pipe closed by its reader: counted, never raised
                ok = False
            n = sum(k for _, k, _ in batch)
            with self._cond:
                self._pending_bytes -= len(data)
                if ok:
                    self.written += n
                else:
                    self.lost += n
            if ok:
                for _, k, callback in batch:
                    if callback is not None:
                        callback(k)

    def _append(self, data: bytes) -> bool:
        # O_NONBLOCK only to open: a FIFO whose reader has gone fails (ENXIO) instead of
        # holding this thread until a reader comes; the write itself blocks, in this thread
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
        try:
            os.set_blocking(fd, True)
            if self._partial:  # the last batch broke off mid-line: end that line, keep this one whole
                os.write(fd, b"\n")
                self._partial = False
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(fd, view):]
                except OSError:
                    self._partial = len(view) < len(data)
                    raise
        finally:
            os.close(fd)
        return True

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait (at most ``timeout_s``) until every record handed over is written or lost;
        whether that happened."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._writing, timeout_s)


@dataclass(frozen=True, slots=True)
class Queued:
    """One alert in a sink's queue, with its delivery id."""

    alert: Alert
    delivery: str


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class QueuedSink:
    """A sink with a bounded queue and ``workers`` delivery tasks. Subclasses implement
    :meth:`_work_one` (deliver the next queued alerts: :meth:`_take` them, then account each
    with :meth:`_done` or :meth:`_fail`) and may open resources in :meth:`_open` and release
    them in :meth:`_release`."""

    name: str = "sink"

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE, dead_letter: DeadLetterFile | Path | str | None = None,
                 workers: int = 1) -> None:
        for field, value in (("queue_size", queue_size), ("workers", workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{field}: {value!r} must be a positive integer")
        self.queue_size = queue_size
        self.dead_letter = dead_letter if isinstance(dead_letter, DeadLetterFile) or dead_letter is None \
            else DeadLetterFile(dead_letter)
        self.counters = SinkCounters()
        self._workers_n = workers
        self._items: deque[Queued] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = False
        #: loop time after which a drain gives up (set by aclose)
        self._deadline: float | None = None

    def __repr__(self) -> str:
        c = self.counters
        return f"{type(self).__name__}({self.name}, queued={len(self._items)}, delivered={c.delivered}, " \
               f"failed={c.failed}, dropped={c.dropped})"

    @property
    def queued(self) -> int:
        """Alerts waiting in the queue (not counting the ones being sent)."""
        return len(self._items)

    # -- the caller's side ---------------------------------------------------------------------
    def offer(self, alert: Alert, delivery: str | None = None) -> bool:
        """Queue ``alert`` (any thread, never blocks). ``False`` when the queue is full or the
        sink is closed: counted as dropped and dead-lettered (``reason``: ``queue full``)."""
        ident = delivery if delivery is not None else delivery_id(encode_alert(alert))
        with self._lock:
            self.counters.offered += 1
            refused = "sink closed" if self._closing else "queue full" if len(self._items) >= self.queue_size else None
            if refused is None:
                self._items.append(Queued(alert, ident))
        if refused is not None:
            self._refuse(Queued(alert, ident), refused)
            return False
        self._wake()
        return True

    def _refuse(self, item: Queued, reason: str) -> None:
        with self._lock:
            self.counters.dropped += 1
        self._dead([item], reason, 0)

    def _wake(self) -> None:
        loop, ready = self._loop, self._ready
        if loop is None or ready is None or ready.is_set():
            return  # not started (start() looks at the queue), or already awake
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            ready.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: aclose already accounted for the queue
                loop.call_soon_threadsafe(ready.set)

    # -- the loop's side -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._loop is not None:
            raise ConfigError(f"{self.name}: start: the sink was started already")
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        await self._open()
        self._tasks = [asyncio.create_task(self._worker(), name=f"sink {self.name} {i}")
                       for i in range(self._workers_n)]
        if self._items:
            self._ready.set()

    async def _open(self) -> None:
        """Open what delivering needs (an HTTP client)."""

    async def _release(self) -> None:
        """Release what :meth:`_open` opened."""

    async def _worker(self) -> None:
        assert self._ready is not None
        while True:
            if not self._items:
                if self._closing:
                    return
                self._ready.clear()
                if not self._items:  # (an offer between the check and the clear set it again)
                    await self._ready.wait()
                    continue
            await self._work_one()

    async def _work_one(self) -> None:
        raise NotImplementedError

    def _take(self, n: int = 1) -> list[Queued]:
        """Up to ``n`` queued alerts, oldest first."""
        with self._lock:
            out: list[Queued] = []
            while self._items and len(out) < n:
                out.append(self._items.popleft())
            return out

    def _peek(self) -> list[Queued]:
        """Every queued alert, oldest first (not taken)."""
        with self._lock:
            return list(self._items)

    def _done(self, items: Sequence[Queued]) -> None:
        with self._lock:
            self.counters.delivered += len(items)

    def _fail(self, items: Sequence[Queued], reason: str, attempts: int) -> None:
        with self._lock:
            self.counters.failed += len(items)
        self._dead(items, reason, attempts)

    def _dead(self, items: Sequence[Queued], reason: str, attempts: int) -> None:
        if self.dead_letter is None or not items:
            return
        at = _now_ms()
        # handed to the file's writer thread: a slow dead-letter target never holds the caller
        self.dead_letter.write([
            dead_letter_record(i.alert, reason=reason, attempts=attempts, sink=self.name, delivery=i.delivery,
                               at_ms=at) for i in items], self._dead_written)

    def _dead_written(self, n: int) -> None:
        with self._lock:
            self.counters.dead_lettered += n

    def _time_left(self) -> float | None:
        """Seconds until the close deadline (``None``: not closing)."""
        if self._deadline is None or self._loop is None:
            return None
        return self._deadline - self._loop.time()

    async def aclose(self, drain_s: float = 10.0) -> None:
        """Stop taking alerts, let the workers deliver what is queued for up to ``drain_s``,
        then dead-letter the rest. Cancelled meanwhile (a second Ctrl-C, a caller's timeout),
        it stops delivering at once but still accounts for every alert (dead-lettered:
        ``the close was interrupted``) before the cancellation goes on."""
        drain_s = drain_seconds(drain_s)
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._closing = True
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + drain_s
        if self._ready is not None:
            self._ready.set()
        try:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=drain_s)
        except asyncio.CancelledError:
            # the accounting must finish whatever happens to this task next (shielded)
            await asyncio.shield(self._finish("not delivered: the close was interrupted", drain_s))
            raise
        await self._finish(f"not delivered before the close deadline ({drain_s:g} s)", drain_s)

    @staticmethod
    async def _flush_dead_letter(dead: DeadLetterFile, timeout_s: float) -> None:
        # polled, not asyncio.to_thread: a close at interpreter exit (BackgroundSinks' atexit
        # hook) may no longer start executor work
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while not dead.flush(0) and loop.time() < end:
            await asyncio.sleep(0.005)

    async def _finish(self, reason: str, drain_s: float) -> None:
        """The end of a close: stop the workers (each dead-letters what it was sending), fail
        what is still queued with ``reason``, wait for the dead-letter file, release."""
        try:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            left = self._take(len(self._items))
            if left:
                self._fail(left, reason, 0)
            if self.dead_letter is not None:  # the counters are exact once the lines are in the file
                await self._flush_dead_letter(self.dead_letter, drain_s + _FLUSH_S)
        finally:
            if self._loop is not None:
                await self._release()


def name_apart(sinks: Sequence[Sink]) -> None:
    """Give sinks of one run that share a name (two webhooks on one host: a name shows only
    scheme and host) a ``#2``, ``#3``... in order, so counters, ``/metrics`` labels and
    dead-letter records tell them apart."""
    seen: dict[str, int] = {}
    for sink in sinks:
        n = seen.get(sink.name, 0) + 1
        seen[sink.name] = n
        if n > 1:
            sink.name = f"{sink.name} #{n}"
