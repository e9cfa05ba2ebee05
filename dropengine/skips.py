"""Accounting for skipped input: counts by reason, and the first few with their position.

Readers and decoders never stop on bad input; they record it here and carry on. The log
is pure data; the CLI prints it. Identical skips (one per row of a file of another shape)
are counted in full but only the first few of each reason are kept, so one flood never
hides the other reasons. Skips of a whole file (unreadable, empty, of another format) are
all kept in :attr:`SkipLog.files`, so "why was nothing usable" can always be answered.
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
    """Counts skips by reason; keeps the first ``keep`` in full, at most ``per_reason`` of
    each reason, and every whole-file skip (:meth:`add_file`) in :attr:`files`."""

    keep: int = 20
    per_reason: int = 5
    counts: dict[str, int] = field(default_factory=dict)
    first: list[Skip] = field(default_factory=list)
    files: list[Skip] = field(default_factory=list)

    def add(self, where: str, reason: str, message: str) -> None:
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if n <= self.per_reason and len(self.first) < self.keep:
            self.first.append(Skip(where, reason, message))

    def add_file(self, where: str, reason: str, message: str) -> None:
        """A skip of a whole file, or of the rest of one: counted, listed, and always kept."""
        self.files.append(Skip(where, reason, message))
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if len(self.first) < self.keep:
            self.first.append(Skip(where, reason, message))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)
