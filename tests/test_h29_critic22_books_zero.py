"""critic22's C22-1: a steam's ``books`` cell writes each line of 0.0 and -0.0 with its own sign, as
the stream engine does, whichever other moves share the books' piece.

A line that ``rules.written_line`` rounds to a float zero (1e-10, or float noise such as -5.55e-17)
is ``0.0`` or ``-0.0`` in a line move's ``prev_line``/``new_line``. The batch table's books were
written by the polars way (``_json_cells``: per distinct value), where -0.0 and 0.0 are one value:
both were written with the sign of whichever came first (the compiled writer declines float zeros
and hands them to it). The stream engine is the reference (``alert_row`` of its alerts).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import alert_fields, alert_row
from dropengine.core.options import DetectOptions

from .conftest import require_fast

OPTS: dict[str, Any] = {"types": "line_move,steam", "steam_books": 2}


def _rows(first: float, second: float) -> list[dict[str, Any]]:
    """Two books' home spreads, one at a line of ``first``, one at ``second`` (both tiny: written
    as float zeros), each moving to -3 a moment apart: one steam of two line moves."""

    def row(book: str, line: float, t: int) -> dict[str, Any]:
        return {
            "sport_key": "americanfootball_nfl",
            "event_id": "e1",
            "bookmaker": book,
            "side": f"spread_home@{line:.10f}".rstrip("0").rstrip(".") if line != -3 else "spread_home@-3",
            "price": -110,
            "last_update": t,
            "kind": "game",
            "market_key": "spreads",
            "line": line,
        }

    return [row("b1", first, 1000), row("b2", second, 1000), row("b1", -3.0, 2000), row("b2", -3.0, 2001)]


@pytest.mark.parametrize(
    "accel",
    ["fast", "pure"],
)
@pytest.mark.parametrize("lines", [(-1e-10, 1e-10), (1e-10, -1e-10)])
def test_steam_books_write_each_zero_with_its_sign(accel: str, lines: tuple[float, float]) -> None:
    if accel == "fast":
        require_fast()
    rows = _rows(*lines)
    eng = DropEngine(**OPTS)
    want = eng.observe_many([Quote(**r) for r in rows])
    steams = [a for a in want if type(a).__name__ == "Steam"]
    assert len(steams) == 1  # (the case is what it says: one steam of both moves)
    columns = alert_fields(DetectOptions.build(**OPTS).types)
    want_books = [alert_row(a, columns)["books"] for a in steams]
    # the stream's books hold both signs (the reference the batch table must match)
    assert '"prev_line":-0.0' in want_books[0] and '"prev_line":0.0' in want_books[0]
    got = detect_counted(pl.DataFrame(rows), accel=accel, **OPTS).alerts
    got_books = got.filter(pl.col("type").cast(pl.String) == "steam").get_column("books").to_list()
    assert got_books == want_books
