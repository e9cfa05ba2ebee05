"""Data time for bounding live memory: one rule for ``serve`` and ``watch``. Pure.

Eviction by age (``DropEngine.evict``) is judged against *data time*, the newest
``last_update`` ingested, not the wall clock, so a replay or a delayed stream is judged by its
own clock. One mis-dated row must not make every key idle at once, so:

- data time never runs more than ``slack_ms`` (an hour) past the time the batch arrived, when
  that time is known;
- a jump by more than ``jump_ms`` (the shorter eviction age) in one batch must be confirmed by
  the very next batch: a replay of old data runs months behind the wall clock, so the cap
  alone let one row dated in the year 3000 evict everything. Until then the batch's plausible
  rows move data time; a confirmed jump goes to the nearer of the two batches' far rows (a
  real jump, not the bad row). A next batch that is not that far ahead cancels it, so two
  mis-dated rows hours apart never confirm each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .quote import Quote

__all__ = ["SLACK_MS", "DataClock"]

#: How far past the arrival time data time may run.
SLACK_MS: Final = 3_600_000


class DataClock:
    """``advance(quotes, now_ms)`` once per ingested batch; ``ms`` is data time (-1: none yet)."""

    __slots__ = ("_jump", "jump_ms", "ms", "slack_ms")

    def __init__(self, jump_ms: int | None, slack_ms: int = SLACK_MS) -> None:
        self.jump_ms = jump_ms  # None: no jump rule (eviction off)
        self.slack_ms = slack_ms
        self.ms = -1
        self._jump: int | None = None  # a jump waiting for the next batch to confirm it

    @property
    def pending(self) -> bool:
        return self._jump is not None

    def advance(self, quotes: Sequence[Quote], now_ms: int | None = None) -> bool:
        """Take a batch's data time into account; True when data time moved."""
        if not quotes:
            return False
        top = max(q.last_update for q in quotes)
        if top <= self.ms and self._jump is None:
            return False
        cap = now_ms + self.slack_ms if now_ms is not None else None
        capped = top if cap is None else min(top, cap)
        limit = self.jump_ms
        if self.ms >= 0 and limit is not None and capped - self.ms > limit:
            near = self.ms + limit
            far = min(q.last_update for q in quotes if q.last_update > near)
            if cap is not None:
                far = min(far, cap)
            if self._jump is None:
                self._jump = far  # pending: a mis-dated row, or a real jump the next batch confirms
                top = max((q.last_update for q in quotes if q.last_update <= near), default=-1)
            else:
                top, self._jump = min(far, self._jump), None
        else:
            self._jump = None  # not confirmed by this batch
        if cap is not None:
            top = min(top, cap)
        if top <= self.ms:
            return False
        self.ms = top
        return True
