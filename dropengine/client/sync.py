""":class:`DropClient`: :class:`~dropengine.client.aio.AsyncDropClient` for code without an event loop.

The async client runs in a background thread with its own event loop; its events cross to
the caller through a bounded queue. When the caller stops reading, the queue fills and the
loop stops reading the socket (the server's slow-client policy then applies: it cuts the
stream and the client resumes from its cursor), so memory stays bounded. The loop never
blocks on the queue (it polls while the queue is full), so :meth:`DropClient.close` from any
thread stops it at once. An error that stops the stream (a rejected key) is raised in the
caller's thread by the iteration.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import aclosing, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Unpack

from ..core.alerts import Alert
from ..core.errors import ConfigError
from .aio import AsyncDropClient, ClientOptions, ClientStats
from .events import ALERT_TYPES, Connected, Event, Reset

__all__ = ["DropClient"]

#: Seconds the loop waits before it offers an event to a full queue again.
_FULL_POLL_S: Final = 0.005


@dataclass(frozen=True, slots=True)
class _End:
    """The stream stopped: ``error`` (raised to the reader) or closed."""

    error: BaseException | None = None


class DropClient:
    """The synchronous client: the arguments are :class:`~dropengine.client.aio.AsyncDropClient`'s
    (plus ``queue_size``, the events buffered for a slow reader).

    ``for event in client`` (or :meth:`events`) yields the events; :meth:`alerts` the alerts
    alone. Use it as a context manager or call :meth:`close` (from any thread)."""

    def __init__(self, base_url: str, *, queue_size: int = 1024, **options: Unpack[ClientOptions]) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"queue_size: {queue_size!r} must be a positive integer")
        #: The async client the thread runs (its settings are checked here, in the caller's thread).
        self.aio = AsyncDropClient(base_url, **options)
        #: (event, the cursor just past it): the loop reads ahead of the caller, so the cursor
        #: the caller may persist is the one of the last event it took, not the loop's.
        self._queue: queue.Queue[tuple[Event, str | None] | _End] = queue.Queue(queue_size)
        self._handed: str | None = self.aio.last_event_id
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"DropClient({self.aio!r})"

    @property
    def stats(self) -> ClientStats:
        return self.aio.stats

    @property
    def connected(self) -> Connected | None:
        """The newest ``connected`` frame (the effective filters)."""
        return self.aio.connected

    @property
    def resets(self) -> list[Reset]:
        return self.aio.resets

    @property
    def last_event_id(self) -> str | None:
        """The cursor: the id of the last event the caller took (persist it to resume later;
        events the thread read ahead into the queue are not counted: they come again)."""
        return self._handed

    def __enter__(self) -> DropClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self, *, heartbeats: bool = False) -> Iterator[Event]:
        """The events (see :meth:`AsyncDropClient.events`), read from the background thread."""
        if self._thread is not None:
            raise ConfigError("events: this client is already streaming (one iteration per DropClient)")
        if self._closed.is_set():
            raise ConfigError("events: this client is closed")
        self._thread = threading.Thread(target=self._run, args=(heartbeats,), name=f"dropengine {self.aio.where}",
                                        daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                event, self._handed = item
                yield event
        finally:
            self.close()

    def alerts(self, on_reset: Callable[[Reset], object] | None = None) -> Iterator[Alert]:
        """The alerts alone; a reset is counted, kept in :attr:`resets` and handed to ``on_reset``."""
        for event in self.events():
            if isinstance(event, ALERT_TYPES):
                yield event
            elif isinstance(event, Reset) and on_reset is not None:
                on_reset(event)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the stream and the thread (idempotent; from any thread)."""
        self._closed.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with suppress(RuntimeError):  # (the loop already finished)
                loop.call_soon_threadsafe(task.cancel)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    # -- the background thread -------------------------------------------------------------------
    def _run(self, heartbeats: bool) -> None:
        end = _End()
        try:
            asyncio.run(self._main(heartbeats))
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the reader, raised in its thread
            end = _End(exc)
        self._offer_end(end)

    async def _main(self, heartbeats: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._closed.is_set():
            return
        try:
            async with aclosing(self.aio.events(heartbeats=heartbeats)) as events:
                async for event in events:
                    item = (event, self.aio.last_event_id)  # (the cursor moved past it as it was decoded)
                    while True:
                        try:
                            self._queue.put_nowait(item)
                            break
                        except queue.Full:
                            await asyncio.sleep(_FULL_POLL_S)  # the reader is behind: wait, never block the loop
        finally:
            await self.aio.aclose()

    def _offer_end(self, end: _End) -> None:
        """The end marker, after every event the reader has yet to take; once the client is
        closed (no reader waits for the rest) the oldest event makes room for it."""
        while True:
            try:
                self._queue.put(end, timeout=0.05)
                return
            except queue.Full:
                if self._closed.is_set():
                    with suppress(queue.Empty):
                        self._queue.get_nowait()
