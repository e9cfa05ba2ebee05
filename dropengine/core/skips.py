"""Accounting for skipped input: counts by reason, and the first few with their position.

Readers and decoders never stop on bad input; they record it here and carry on. The log
is pure data; the CLI prints it. Identical skips (one per row of a file of another shape)
are counted in full but only the first few of each reason are kept, so one flood never
hides the other reasons. Skips of a whole file (unreadable, empty, of another format) are
all kept in :attr:`SkipLog.files`, so "why was nothing usable" can always be answered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["MAX_TEXT", "Skip", "SkipLog", "printable"]

#: Longest position or message a skip keeps (a value in a message may be a 50 MB line).
MAX_TEXT: Final = 500
# C0/C1 controls, DEL and the Unicode line/paragraph separators: a file name or a value
# holding them (ESC[2J, a newline) would clear or garble the terminal the report goes to.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (
        f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` safe to print on one terminal line: control characters escaped (``\\x1b``,
    ``\\n``), and cut to ``limit`` characters saying how long it was. Every skip's position
    and message pass through it, since both may quote a file name or a value verbatim."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text):,} characters)"
    return _CONTROL.sub(_escape, text)


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
        listed = self.lists(reason)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if listed:
            self.first.append(Skip(printable(where), reason, printable(message)))

    def lists(self, reason: str) -> bool:
        """Whether :meth:`add` would list the next skip of ``reason`` (the first ``keep`` skips,
        at most ``per_reason`` of a reason): the one listing rule, also for a caller that counts
        a column of rejected rows at once and lists only the rows this admits."""
        return self.counts.get(reason, 0) < self.per_reason and len(self.first) < self.keep

    def add_counted(self, rows: Iterable[tuple[str, str, Callable[[], str]]], counts: Mapping[str, int]) -> None:
        """Skips counted elsewhere, ``counts`` by reason (a batch detector's column of rejected
        rows), whose rows come in input order as ``(where, reason, message)``: each is listed by
        :meth:`add`'s rule, so the report reads as the stream path's; a message is made only for
        a row listed. ``rows`` may hold only the rows that can be listed (the first
        ``per_reason`` of each reason)."""
        listed: dict[str, int] = {}
        for where, reason, message in rows:
            if len(self.first) >= self.keep:
                break
            if self.lists(reason):
                self.add(where, reason, message())
                listed[reason] = listed.get(reason, 0) + 1
        for reason, n in counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n - listed.get(reason, 0)

    def add_file(self, where: str, reason: str, message: str) -> None:
        """A skip of a whole file, or of the rest of one: counted, listed, and always kept."""
        skip = Skip(printable(where), reason, printable(message))
        self.files.append(skip)
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if len(self.first) < self.keep:
            self.first.append(skip)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)
