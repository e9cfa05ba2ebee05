"""Accounting for skipped input: counts by reason, and the first few with their position.

Readers and decoders never stop on bad input; they record it here and carry on. The log
is pure data; the CLI prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Skip", "SkipLog"]


@dataclass(frozen=True, slots=True)
class Skip:
    """One skipped piece of input: where it was, why, and a message naming the value."""

    where: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.message}"


@dataclass(slots=True)
class SkipLog:
    """Counts skips by reason and keeps the first ``keep`` of them in full."""

    keep: int = 20
    counts: dict[str, int] = field(default_factory=dict)
    first: list[Skip] = field(default_factory=list)

    def add(self, where: str, reason: str, message: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.first) < self.keep:
            self.first.append(Skip(where, reason, message))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)
