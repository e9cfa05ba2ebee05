"""K-way merge of quote streams for fan-in replays (SPEC section 6).

Each stream yields ``(clock_ms, item)``. A stream's clock is made monotone (its running
maximum), so a source whose rows are not perfectly sorted still merges deterministically
and keeps its own order. Ties go to the stream given first, then to input order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

__all__ = ["merge_by_clock", "monotone"]

T = TypeVar("T")


def monotone(stream: Iterable[tuple[int, T]]) -> Iterator[tuple[int, T]]:
    """Replace each clock by the running maximum of the stream's clocks."""
    high = -(2**63)
    for clock, item in stream:
        if clock > high:
            high = clock
        yield high, item


def merge_by_clock(streams: Sequence[Iterable[tuple[int, T]]]) -> Iterator[tuple[int, T]]:
    """Merge streams by clock; ties in stream order, then in each stream's own order."""
    if len(streams) == 1:
        return monotone(streams[0])
    # heapq.merge is stable: equal keys come out in the order of the input iterables.
    return heapq.merge(*(monotone(s) for s in streams), key=lambda pair: pair[0])
