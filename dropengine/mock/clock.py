"""The mock upstream's replay clock: it moves the timeline's releases, in order and at the
chosen speed, into one released list per sport that every connection reads with its own
cursor (no per-connection queue), and keeps what a new connection needs: the sport's
current state (``initial_state``) and its resume marks (``since``).

Everything runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import Any

from .timeline import Release, SportState, Timeline, row_time

__all__ = ["ReplayClock"]


class ReplayClock:
    """Releases of ``timeline`` put out at ``speed`` times their recorded pace (``None``: as
    fast as possible, yielding to the loop every ``chunk_rows`` rows), each pause capped at
    ``max_gap`` seconds."""

    def __init__(self, timeline: Timeline, speed: float | None, max_gap: float, chunk_rows: int) -> None:
        self.timeline = timeline
        self.speed = speed
        self.max_gap = max_gap
        self.chunk_rows = max(1, chunk_rows)
        #: How many releases are out, and whether all of them are.
        self.released_count = 0
        self.finished = False
        #: The ``clock`` of the newest release out (the replay's "now"), ``None`` before any.
        self.clock_ms: int | None = None
        self._released: dict[str, list[Release]] = {}
        self._resume_marks: dict[str, list[int]] = {}
        self._states: dict[str, SportState] = {}
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        #: The sports whose streams have taken an ``initial_state`` (``--start on-connect``).
        self._connected: set[str] = set()

    def start(self) -> None:
        """Start the clock (once; later calls do nothing). Needs a running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def connected(self, sport: str, sports: int) -> None:
        """A stream of ``sport`` took its ``initial_state``: start the clock once streams of
        ``sports`` different sports have (so each of them sees every release from the first)."""
        self._connected.add(sport)
        if len(self._connected) >= sports:
            self.start()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
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
            self.release(rel)
            prev = rel.clock
        self.finished = True

    def release(self, rel: Release) -> None:
        """Put ``rel`` out now and wake the sport's connections."""
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
        self.clock_ms = rel.clock
        self.released_count += 1
        for ev in self._waiters.get(rel.sport_key, ()):
            ev.set()

    def released(self, sport: str) -> list[Release]:
        """The sport's releases so far (a connection's cursor indexes this list)."""
        return self._released.get(sport, [])

    def current_rows(self, sport: str) -> list[Any]:
        """The sport's current state: the latest version of every row identity."""
        state = self._states.get(sport)
        return state.rows() if state is not None else []

    def snapshot(self, sport: str, since: int | None) -> tuple[list[Any], int]:
        """The rows of an ``initial_state`` and the cursor that follows it, in one step (no
        await in here, so no release slips between them).

        Without ``since``: the current state. With it: every row from the first release at
        which the sport's newest ``last_update`` reached ``since``, in release order, late rows
        included. A client whose cursor is ``since`` has processed a prefix of exactly these
        rows (it drops them by content); rows written earlier but released later are not lost.
        """
        rels = self.released(sport)
        if since is None:
            return self.current_rows(sport), len(rels)
        start = bisect.bisect_left(self._resume_marks.get(sport, []), since)
        return [row for rel in rels[start:] for row in rel.rows], len(rels)

    def watch(self, sport: str, wake: asyncio.Event) -> None:
        """Set ``wake`` whenever the sport gets a release (until :meth:`unwatch`)."""
        self._waiters.setdefault(sport, set()).add(wake)

    def unwatch(self, sport: str, wake: asyncio.Event) -> None:
        self._waiters.get(sport, set()).discard(wake)
