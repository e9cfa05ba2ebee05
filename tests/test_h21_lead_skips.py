"""One listing rule for skip reports (break21's F2): a batch detector's column of rejected rows,
counted at once and listed by ``SkipLog.add_counted``, reports what ``SkipLog.add`` row by row
reports (the stream path): the same counts and the same listed rows, at most ``per_reason`` of a
reason and ``keep`` in all, in input order."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.skips import SkipLog
from dropengine.io.tables import listable_rejections

REASONS = ("bad side", "bad line", "missing field", "bad price")


@given(
    before=st.lists(st.sampled_from(REASONS), max_size=12),
    rows=st.lists(st.sampled_from(REASONS), max_size=60),
    keep=st.integers(0, 8),
    per_reason=st.integers(0, 4),
)
def test_counted_rows_are_listed_as_added_rows(
    before: list[str], rows: list[str], keep: int, per_reason: int
) -> None:
    one, column = SkipLog(keep=keep, per_reason=per_reason), SkipLog(keep=keep, per_reason=per_reason)
    for i, reason in enumerate(before):  # a reader's skips came first, in both
        one.add(f"r{i}", reason, "m")
        column.add(f"r{i}", reason, "m")
    for i, reason in enumerate(rows):
        one.add(f"row {i}", reason, f"message {i}")
    made: list[int] = []

    def message(i: int) -> str:
        made.append(i)
        return f"message {i}"

    frame = pl.DataFrame({"row": list(range(len(rows))), "reason": rows}, schema={"row": pl.Int64, "reason": pl.String})
    counts: dict[str, int] = {}
    for reason in rows:
        counts[reason] = counts.get(reason, 0) + 1
    listable = listable_rejections(frame, per_reason)
    column.add_counted(
        ((f"row {i}", reason, lambda i=i: message(i)) for i, reason in listable.iter_rows()), counts
    )
    assert column.counts == one.counts
    assert column.first == one.first
    assert made == [int(s.where.split()[1]) for s in column.first if s.where.startswith("row ")]
