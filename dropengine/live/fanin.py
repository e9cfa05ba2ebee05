"""Fan-in of many sports (SPEC section 6): ``/multi`` (a fixed list) and ``/all``.

One :class:`~dropengine.live.upstream.UpstreamStream` per sport, all decoding through
one :class:`~dropengine.formats.frames.FrameDecoder` (one resume cursor per sport) into one bounded
queue, so a single engine sees every sport. ``/all`` reads the universe from
``GET {base}/v1/sports`` and refreshes it every ``universe_refresh_s`` (5 minutes),
starting streams for new sports and stopping those that left. A sport whose stream stops
for good (a 403, a 404) is recorded in :attr:`FanIn.failures` and never stops the others.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from ..core.errors import AuthError, ConfigError, UpstreamError
from ..core.retry import Backoff, Retry, Stop
from ..formats.frames import FrameDecoder
from .transport import Ended, UpstreamConfig, is_sport_key
from .upstream import LiveStats, Received, UpstreamStream, fetch_sports

__all__ = ["FanIn"]


@dataclass(frozen=True, slots=True)
class _Finished:
    sport_key: str


class FanIn:
    """Frames of many sport streams as one async iterator (:meth:`frames`).

    ``sports=None`` follows ``/all``; a list is ``/multi`` (one sport is the plain
    single-stream case). With ``/multi``, the iteration ends when every stream has stopped,
    raising the first stream's error; with ``/all`` it runs until the consumer stops, or
    raises when the universe itself cannot be read for an auth reason.
    """

    def __init__(
        self,
        config: UpstreamConfig,
        sports: Sequence[str] | None,
        *,
        decoder: FrameDecoder | None = None,
        stats: LiveStats | None = None,
        rng: random.Random | None = None,
        on_event: Callable[[str], None] | None = None,
        queue_size: int = 1024,
    ) -> None:
        if sports is not None:
            if not sports:
                raise ConfigError("sports: give at least one sport key (or None for /all)")
            if len(set(sports)) != len(sports):
                raise ConfigError("sports: a sport key is listed twice")
            bad = [s for s in sports if not is_sport_key(s)]
            if bad:
                raise ConfigError(f"sports: {bad[0]!r} is not a sport key (letters, digits, _ . -)")
        self.config = config
        self.sports = list(sports) if sports is not None else None
        self.decoder = decoder if decoder is not None else FrameDecoder()
        self.stats = stats if stats is not None else LiveStats()
        self._rng = rng if rng is not None else random.Random()
        self._on_event = on_event
        self._queue_size = queue_size
        self.streams: dict[str, UpstreamStream] = {}
        self.failures: dict[str, UpstreamError] = {}
        self.universe: list[str] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        mode = "/all" if self.sports is None else f"/multi {','.join(self.sports)}"
        return f"FanIn({mode}, streams={len(self._tasks)}, failed={len(self.failures)})"

    def _event(self, text: str) -> None:
        if self._on_event is not None:
            self._on_event(text)

    def _start(self, sport: str, queue: asyncio.Queue[Received | _Finished]) -> None:
        stream = UpstreamStream(
            self.config, sport, self.decoder, self.stats, rng=self._rng, on_event=self._on_event
        )
        self.streams[sport] = stream
        self._tasks[sport] = asyncio.create_task(self._pump(stream, queue), name=f"upstream {sport}")

    async def _pump(self, stream: UpstreamStream, queue: asyncio.Queue[Received | _Finished]) -> None:
        try:
            async for received in stream.frames():
                await queue.put(received)
        except UpstreamError as exc:
            self.failures[stream.sport_key] = exc
        except Exception as exc:  # a bug in one stream must not take the others down
            self.failures[stream.sport_key] = UpstreamError(f"{stream.sport_key}: {type(exc).__name__}: {exc}")
            stream.state.state = "failed"
            self._event(f"{stream.sport_key}: stopped by {type(exc).__name__}")
        await queue.put(_Finished(stream.sport_key))

    async def _stop(self, sport: str) -> None:
        task = self._tasks.pop(sport, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.stats.stream(sport).state = "stopped"

    async def _universe(self, queue: asyncio.Queue[Received | _Finished]) -> None:
        """Keep one stream per active sport of ``/v1/sports``; refresh on a timer."""
        backoff = Backoff(self.config.policy)
        first = True
        while True:
            try:
                keys = await fetch_sports(self.config)
            except Ended as end:
                decision = backoff.decide(end.outcome, 0.0, self._rng.random(), "GET /v1/sports")
                if isinstance(decision, Stop):
                    if first or isinstance(decision.error, AuthError):
                        raise decision.error from None
                    self._event(f"universe: {decision.error}; keeping {len(self.universe)} sports")
                    await asyncio.sleep(self.config.universe_refresh_s)
                    continue
                assert isinstance(decision, Retry)
                self._event(f"universe: {decision.reason}")
                await asyncio.sleep(decision.delay_s if first else max(decision.delay_s, 1.0))
                continue
            backoff.attempt = 0
            first = False
            self.stats.universe_refreshes += 1
            wanted = []
            for k in dict.fromkeys(keys):
                if is_sport_key(k):
                    wanted.append(k)
                elif k not in self.failures:  # reported once; the other sports go on
                    self.failures[k] = UpstreamError(f"GET /v1/sports: {k[:64]!r} is not a sport key; skipped")
                    self._event(f"universe: {k[:64]!r} is not a sport key; skipped")
            added = [s for s in wanted if s not in self._tasks and s not in self.failures]
            removed = [s for s in self._tasks if s not in wanted]
            for s in removed:
                await self._stop(s)
            for s in added:
                self._start(s, queue)
            if added or removed:
                self._event(f"universe: {len(wanted)} sports (+{len(added)} -{len(removed)})")
            self.universe = wanted
            await asyncio.sleep(self.config.universe_refresh_s)

    async def frames(self) -> AsyncGenerator[Received, None]:
        queue: asyncio.Queue[Received | _Finished] = asyncio.Queue(self._queue_size)
        universe: asyncio.Task[None] | None = None
        getter: asyncio.Task[Received | _Finished] | None = None
        try:
            if self.sports is None:
                universe = asyncio.create_task(self._universe(queue), name="universe")
            else:
                self.universe = list(self.sports)
                for s in self.sports:
                    self._start(s, queue)
            while True:
                getter = asyncio.ensure_future(queue.get())
                waiting: set[asyncio.Future[object]] = {getter}  # type: ignore[arg-type]
                if universe is not None:
                    waiting.add(universe)  # type: ignore[arg-type]
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if universe is not None and universe in done:
                    universe.result()  # re-raises why the universe could not be read
                item = await getter
                getter = None
                if isinstance(item, _Finished):
                    self._tasks.pop(item.sport_key, None)
                    if self.sports is not None and not self._tasks:
                        first = next(iter(self.failures.values()), None)
                        if first is not None and len(self.failures) == len(self.sports):
                            raise first
                        return
                    continue
                yield item
        finally:
            if getter is not None:
                getter.cancel()
            if universe is not None:
                universe.cancel()
                await asyncio.gather(universe, return_exceptions=True)
            for s in list(self._tasks):
                await self._stop(s)
