"""critic20 (session 20), C20-6: the steams' books block was sized from the widest piece for every object
(regression test: 826c3f1 reverted by d006bf2; a strict xfail before).

826c3f1 sizes ``kernel.json_arrays``' block from a bound (per object, every slot at the widest piece) instead of
counting the text: one long bookmaker name makes every object's bound that wide. Over 1M quotes' first 300k rows
with one bookmaker named by 1000 characters the block was 410 MB for 25.6 MB of books (a memory-limited process:
``MemoryError``, where the exact size ran). Pinned: the memory the books' block asks for stays within a few times
the text it holds (it was exactly the text, its offsets and 16 spare bytes before).
"""

from __future__ import annotations

import polars as pl
import pytest

from dropengine.analysis.batch import detect_counted
from dropengine.core.options import DetectOptions

fast = pytest.importorskip("dropengine.fast.kernel")


def _quotes() -> pl.DataFrame:
    """Four books on one side moving together (a steam per round, rounds beyond the steam cooldown), one
    book named by 1000 characters."""
    books = ["p" * 4000, "a", "b", "c"]
    rows = []
    for r in range(120):
        t0 = 1_000_000 + r * 400_000
        price = -130 if r % 2 == 0 else -110
        for k, book in enumerate(books):
            rows.append(("nfl", "e1", book, "h2h_home", price, t0 + 1_000 * k))
    return pl.DataFrame(
        rows, schema=["sport_key", "event_id", "bookmaker", "side", "price", "last_update"], orient="row"
    )


def test_the_books_block_is_in_proportion_to_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    malloc = fast._raw_malloc

    def recorded(size: int) -> int:
        asked.append(size)
        return int(malloc(size))

    monkeypatch.setattr(fast, "_raw_malloc", recorded)
    result = detect_counted(_quotes(), DetectOptions(types=("steam",)), accel="fast")
    books = result.alerts.get_column("books")
    text = int(books.str.len_bytes().sum())
    assert result.alerts.height > 50 and asked  # the premise: steams, their books written by json_arrays
    offsets = 8 * (books.len() + 1)
    assert max(asked) <= 4 * text + offsets + 4096, (max(asked), text)
