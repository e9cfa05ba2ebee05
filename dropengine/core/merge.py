"""K-way merge of quote streams for fan-in replays (SPEC section 6).

Each stream yields ``(clock_ms, item)``. A stream's clock is made monotone (its running
maximum), so a source whose rows are not perfectly sorted still merges deterministically
and keeps its own order. Ties go to the stream given first, then to input order.

Skipped input keeps its place, and this is the one statement of where (both engines keep it):
a bad row is skipped, counted and reported, and changes nothing else, so its own time never
moves its file's clock, which is the running maximum of the times of the file's *usable*
rows. The skip report lists skipped rows in the merged order of (their file's clock at the
row, file, row); rows skipped before a file's first usable row stand before everything (no
clock yet), in file order. The stream engine gets this from the merge's laziness: a reader
records a skip when it reaches the row, and the merge pulls a stream's next item only once
the one before has been taken, so a skip is recorded right after the usable row before it in
its file: at its place. Every batch path over Parquet files (``replay --engine batch``, ``backtest``, both
with ``--workers``) orders rows and lists skips the same way: whether a row is skipped is the
detector's judgement of that row alone, so they load by every row's time; when a skipped row
had moved its file's clock so that a usable row's clock changes, they detect again in this
order, and when only the skipped rows' order changes, they re-sort the skip report alone
(io.replay.in_replay_order; one decision for every path, io.tables.held_rows_reorder, which the
sharded path asks of every shard's skipped rows).
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
