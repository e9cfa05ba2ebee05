"""The sync facade: sinks delivering from a background thread with its own event loop, for
library code that is not async.

::

    from dropengine.deliver import BackgroundSinks, WebhookSink

    with BackgroundSinks(WebhookSink("https://example.com/hook", secret="s3cret")) as sinks:
        for alert in engine.observe_many(quotes):
            sinks.offer(alert)          # returns at once, whatever the receiver does
    # leaving the block drains the queues (up to drain_s), then stops the thread

:meth:`BackgroundSinks.offer` is the sinks' own (thread-safe, non-blocking) offer; the thread
only runs their deliveries.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Sequence
from types import TracebackType

from ..core.alerts import Alert
from ..core.errors import ConfigError
from .base import Sink, SinkCounters, name_apart
from .rules import drain_seconds

__all__ = ["BackgroundSinks"]


class BackgroundSinks:
    """Run ``sinks`` on a daemon thread's loop; :meth:`offer` from any thread. ``drain_s``:
    how long :meth:`close` lets queued alerts go out before dead-lettering the rest.

    A script that ends without :meth:`close` (or ``with``) is closed at interpreter exit
    (an :mod:`atexit` hook), so its queued alerts are delivered or dead-lettered, not lost
    with the daemon thread. Sinks that share a name are told apart (``#2``...), as
    ``watch`` and ``serve`` do, so :attr:`counters` has one entry per sink."""

    def __init__(self, *sinks: Sink, drain_s: float = 10.0) -> None:
        if not sinks:
            raise ConfigError("sinks: give at least one sink")
        self.drain_s = drain_seconds(drain_s)
        self.sinks: tuple[Sink, ...] = sinks
        name_apart(self.sinks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"BackgroundSinks({', '.join(s.name for s in self.sinks)})"

    def start(self, timeout_s: float = 10.0) -> BackgroundSinks:
        """Start the thread and every sink on its loop; returns self. If a sink cannot start
        (or the start outlasts ``timeout_s``), the sinks started are closed and the thread
        stopped before the error is raised."""
        if self._thread is not None:
            raise ConfigError("start: the sinks were started already")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="dropengine sinks", daemon=True)
        self._thread.start()

        async def start_all() -> None:
            for sink in self.sinks:
                await sink.start()

        started = asyncio.run_coroutine_threadsafe(start_all(), loop)
        try:
            started.result(timeout_s)
        except BaseException:
            started.cancel()
            self.close(0.0)  # nothing was offered yet: close what started, stop the thread
            raise
        atexit.register(self.close)
        return self
    def offer(self, alert: Alert, delivery: str | None = None) -> bool:
        """Offer ``alert`` to every sink (never blocks); ``True`` when every one took it."""
        accepted = True
        for sink in self.sinks:
            accepted = sink.offer(alert, delivery) and accepted
        return accepted

    def offer_many(self, alerts: Sequence[Alert]) -> int:
        """Offer each of ``alerts``; returns how many every sink took."""
        return sum(self.offer(a) for a in alerts)

    @property
    def counters(self) -> dict[str, SinkCounters]:
        """Each sink's counters, by its name."""
        return {s.name: s.counters for s in self.sinks}

    def close(self, drain_s: float | None = None) -> None:
        """Drain (up to ``drain_s``, default :attr:`drain_s`), close every sink, stop the thread."""
        wait = self.drain_s if drain_s is None else drain_seconds(drain_s)
        if self._closed or self._loop is None or self._thread is None:
            self._closed = True
            return
        self._closed = True
        atexit.unregister(self.close)
        loop = self._loop

        async def close_all() -> None:
            # each sink closes whatever another's close does (a file that cannot be written)
            await asyncio.gather(*(s.aclose(wait) for s in self.sinks), return_exceptions=True)

        try:
            # each aclose ends by its deadline; the margin covers closing the clients
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(wait + 10.0)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10.0)
            if not self._thread.is_alive():
                loop.close()

    def __enter__(self) -> BackgroundSinks:
        return self.start() if self._thread is None else self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
