"""What feeds ``dropengine serve``: a replayed recording, or the live upstream (fan-in).

Both call ``ingest(quotes, now_ms)`` with the wall-clock time the quotes arrived (a server's
alerts carry the time they were produced, SPEC section 4). When ``ingest`` returns an
awaitable (``dropengine ingest``'s bus publisher, which returns once the bus acknowledged the
quotes), the source awaits it before it reads on: the bus's pace holds the source back
instead of quotes piling up in memory.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.keys import redact
from ..core.quote import Quote
from ..formats.frames import FrameDecoder
from ..io.replay import ReplayStats, read_quotes
from ..live.fanin import FanIn
from ..live.transport import UpstreamConfig
from ..live.upstream import LiveStats

__all__ = ["REPLAY_POSITION", "ManualSource", "ReplaySource", "UpstreamSource"]

log = logging.getLogger("dropengine.serve.upstream")

Ingest = Callable[[list[Quote], int], object]
#: The key under which a replay source saves its position in ``--state`` (not a sport key).
REPLAY_POSITION = "replay:quotes_fed"


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _feed(ingest: Ingest, quotes: list[Quote], now_ms: int) -> None:
    """Call ``ingest`` and, when it returns an awaitable, await it (backpressure)."""
    result = ingest(quotes, now_ms)
    if inspect.isawaitable(result):
        await result


class ManualSource:
    """A source that feeds nothing by itself: the embedding program pushes the quotes it gets
    from elsewhere (its own feed, a test) with :meth:`push`, from any thread.

    It has no resume cursors and never reconnects; ``run`` waits until the server stops, so
    the server does not report its source as finished."""

    name = "manual"
    reconnects = 0

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ingest: Ingest | None = None
        self._ready = threading.Event()

    async def run(self, ingest: Ingest, cursors: dict[str, int]) -> None:
        self._loop, self._ingest = asyncio.get_running_loop(), ingest
        self._ready.set()
        await asyncio.Event().wait()  # until the server cancels it at shutdown

    def status(self) -> dict[str, Any]:
        return {}

    def cursors(self) -> dict[str, int]:
        return {}

    def push(self, quotes: list[Quote], now_ms: int | None = None, timeout_s: float = 5.0) -> None:
        """Ingest ``quotes`` in the server's event loop and wait until they are (thread-safe;
        not from the server's own loop). ``now_ms`` stamps their alerts (default: wall clock)."""
        if not self._ready.wait(timeout_s) or self._loop is None or self._ingest is None:
            raise ConfigError(f"push: the server is not running (no start within {timeout_s} s)")
        ingest, stamp = self._ingest, _now_ms() if now_ms is None else now_ms

        async def go() -> None:
            await _feed(ingest, quotes, stamp)

        asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout_s)


class ReplaySource:
    """Replays recordings at ``speed`` times their recorded pace (``None``: as fast as
    possible), each pause capped at ``max_gap_s`` so long quiet stretches do not stall a demo.

    The recording is read with the same readers as ``dropengine replay``; after its end the
    server keeps serving (heartbeats, resumes from the buffer).
    """

    def __init__(self, paths: Sequence[str | Path], speed: float | None = 1.0, max_gap_s: float = 5.0) -> None:
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ConfigError(f"--speed: {speed!r} must be a positive number or max")
        self.paths = [Path(p) for p in paths]
        for p in self.paths:
            if not p.exists():
                raise ConfigError(f"--source replay:{p}: no such file")
        self.speed = speed
        self.max_gap_s = max_gap_s
        self.name = "replay:" + ",".join(str(p) for p in self.paths)
        self.stats = ReplayStats()
        self.done = False
        self.fed = 0

    @property
    def reconnects(self) -> int:
        return 0

    def cursors(self) -> dict[str, int]:
        # how far the recording was fed: a restart with --state goes on from there instead of
        # feeding the restored engine the same quotes again
        return {REPLAY_POSITION: self.fed}

    def status(self) -> dict[str, Any]:
        return {"quotes": self.fed, "finished": self.done, "skipped": self.stats.skips.total}

    def problem(self) -> str | None:
        """A replay is never degraded (its end is not a fault)."""
        return None

    async def run(self, ingest: Ingest, cursors: dict[str, int]) -> None:
        prev: int | None = None
        skip = cursors.get(REPLAY_POSITION, 0)
        # line-only observations too (SPEC 10): the server always detects line moves
        for batch, _stamp in read_quotes(self.paths, stats=self.stats, line_only=True):
            if skip:
                n = min(skip, len(batch))
                skip -= n
                self.fed += n
                batch = batch[n:]
                if not batch:
                    continue
            if self.speed is None:
                await _feed(ingest, batch, _now_ms())
                self.fed += len(batch)
                await asyncio.sleep(0)
                continue
            i, n = 0, len(batch)
            while i < n:
                lu = batch[i].last_update
                j = i + 1
                while j < n and batch[j].last_update == lu:
                    j += 1
                if prev is not None and lu > prev:
                    await asyncio.sleep(min((lu - prev) / 1000 / self.speed, self.max_gap_s))
                if prev is None or lu > prev:
                    prev = lu
                await _feed(ingest, batch[i:j], _now_ms())
                self.fed += j - i
                i = j
        self.done = True


class UpstreamSource:
    """The live upstream: ``/all`` (``sports=None``) or a fixed list, through :class:`FanIn`.

    ``cursors`` from a restored state seed the resume cursors, so the first connection after
    a restart asks for what was written while the server was down.

    Every connect, disconnect (with its reason and retry attempt) and stop of an upstream
    stream is logged (``dropengine.serve.upstream``; the key never appears), and
    :meth:`problem` says when no stream has been open for two heartbeat intervals (the
    server's ``/healthz`` then answers 503 "degraded").
    """

    def __init__(self, config: UpstreamConfig, sports: Sequence[str] | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.sports = list(sports) if sports is not None else None
        self.stats = LiveStats()
        # the server always detects line moves: a book that publishes a spread or total without
        # per-side prices still observes its line series (SPEC 10's line-only observations)
        self.decoder = FrameDecoder(line_only=True)
        self.name = f"upstream:{config.shown_base()} ({'all' if self.sports is None else ','.join(self.sports)})"
        self.feed: FanIn | None = None
        self._clock = clock
        #: Per sport, the newest last_update of the quotes handed to ``ingest``: the resume
        #: cursor a state saves. (The decoder's own cursor runs ahead by the frames queued in
        #: the fan-in, which a restart must fetch again, not skip.)
        self._fed: dict[str, int] = {}
        #: Since when no stream has been open (``None`` while one is); from the start on.
        self._down_since: float | None = clock()
        #: Per sport, since when its stream has not been open (absent while it is open).
        self._sport_down: dict[str, float] = {}
        self._last_outcome = ""

    def _on_event(self, text: str) -> None:
        """The fan-in's and streams' event lines (already redacted by the stream; redacted
        again here for the fan-in's own): logged, and the up/down clock kept."""
        text = redact(text, [self.config.api_key.reveal()])
        if text.endswith(": open"):
            log.info("upstream %s", text)
        elif ": connecting" in text:
            log.debug("upstream %s", text)
        elif ": stopped" in text or "stopped by" in text:
            log.error("upstream %s", text)
        else:  # a disconnect and its retry ("...; retry N in S s"), or a universe change
            log.warning("upstream %s", text)
            if "retry" in text:
                self._last_outcome = text
        self._track()

    def _track(self) -> None:
        now = self._clock()
        if self.stats.open:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        for sport, st in self.stats.streams.items():
            if st.state == "open":
                self._sport_down.pop(sport, None)
            else:
                self._sport_down.setdefault(sport, now)

    def streams_down(self) -> dict[str, float]:
        """Sports whose stream has not been open for more than two heartbeat intervals, with
        for how long (seconds). While another stream is open the server is not degraded (it
        serves the other sports; a 503 would take it out of a load balancer), but ``/healthz``
        lists these under ``source.streams_down``."""
        self._track()
        now, limit = self._clock(), 2 * self.config.heartbeat
        return {sport: round(now - t, 1) for sport, t in sorted(self._sport_down.items()) if now - t > limit}

    def problem(self) -> str | None:
        """Why the source is degraded: no upstream stream open for more than two heartbeat
        intervals (``None`` when fine)."""
        self._track()
        if self._down_since is None:
            return None
        down = self._clock() - self._down_since
        limit = 2 * self.config.heartbeat
        if down <= limit:
            return None
        last = f"; last: {self._last_outcome}" if self._last_outcome else ""
        return f"no upstream stream open for {down:.1f} s (more than two heartbeat intervals, {limit:g} s){last}"

    @property
    def reconnects(self) -> int:
        return self.stats.reconnects

    def cursors(self) -> dict[str, int]:
        return dict(self._fed)

    def status(self) -> dict[str, Any]:
        return {
            "streams_open": self.stats.open, "streams": len(self.stats.streams), "quotes": self.stats.quotes,
            "streams_down": self.streams_down(),
            "failed": {k: str(v) for k, v in (self.feed.failures.items() if self.feed else ())},
        }

    async def run(self, ingest: Ingest, cursors: dict[str, int]) -> None:
        for sport, since in cursors.items():
            if ":" not in sport:  # a replay position from another kind of source is not a sport
                self.decoder.set_cursor(sport, since)
        self.feed = FanIn(self.config, self.sports, decoder=self.decoder, stats=self.stats, on_event=self._on_event)
        fed = self._fed
        async for received in self.feed.frames():
            quotes = received.quotes
            if quotes:
                await _feed(ingest, quotes, received.received_ms)
                top = max(q.last_update for q in quotes)
                if top > fed.get(received.sport_key, -1):
                    fed[received.sport_key] = top
