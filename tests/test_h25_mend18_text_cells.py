"""mend18 (session 18), B25-3: a text price or time cell has one reading on every path.

The row reader (formats.tables.quote_from_row: rules.number_from_text, formats.frames.coerce_ms)
strips Python's white space (``str.strip``) and takes only ``""`` as an empty cell; batch.detect
on a frame reads a String column in polars. Both now strip :data:`rules.WHITESPACE` (polars' own
default keeps U+001C..U+001F) and test the raw cell for emptiness, so a text table gives the stream
engine's alerts, counters and skip reasons on both batch paths.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import msgspec
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.analysis.batch import detect_counted
from dropengine.core import rules
from dropengine.core.errors import FeedError
from dropengine.formats.tables import quote_from_row

from .conftest import require_fast

_ENC = msgspec.json.Encoder()


def test_whitespace_is_exactly_what_str_strip_removes() -> None:
    """rules.WHITESPACE is Python's ``str.isspace`` set, no more, no less, each once."""
    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert sorted(rules.WHITESPACE) == sorted(spaces)
    assert len(set(rules.WHITESPACE)) == len(rules.WHITESPACE)


#: what a drawn cell is made of: white space (each of WHITESPACE), look-alikes Python does not strip
#: (zero-width space, BOM, word joiner), signs, exponents, separators, digits of other scripts
_NOT_SPACE = ("\u200b", "\ufeff", "\u2060", "_", ",", "e", "E", "+", "-", ".", "x", "\u0663", "\uff15", "\u0967")
_NUMBERS = ("-110", "-150", "+120", "150", "-200", "1e2", "-1.5e2", "-125.", ".5", "100000", "-99")


@st.composite
def _cell(draw: st.DrawFn, numbers: tuple[str, ...]) -> str | None:
    """A text cell: a number wrapped in drawn characters, characters alone, "", or null."""
    chars = st.sampled_from((*rules.WHITESPACE, *_NOT_SPACE, "0", "1", "5"))
    kind = draw(st.sampled_from(["number", "wrapped", "junk", "empty", "null"]))
    if kind == "empty":
        return ""
    if kind == "null":
        return None
    if kind == "junk":
        return "".join(draw(st.lists(chars, min_size=1, max_size=4)))
    number = draw(st.sampled_from(numbers))
    if kind == "number":
        return number
    left, right = (draw(st.lists(chars, max_size=2)) for _ in range(2))
    return "".join(left) + number + "".join(right)


@st.composite
def _tables(draw: st.DrawFn) -> pl.DataFrame:
    """1-30 rows on one or two keys: text prices, and times as text (growing, wrapped, junk)
    or as Int64."""
    n = draw(st.integers(1, 30))
    text_time = draw(st.booleans())
    rows: list[dict[str, Any]] = []
    for i in range(n):
        t = 1_000_000 + 1000 * i
        time: Any = draw(_cell((str(t),))) if text_time else t
        rows.append(
            {
                "sport_key": "nba",
                "event_id": draw(st.sampled_from(["e1", "e1", "e2"])),
                "bookmaker": "pin",
                "side": "h2h_home",
                "price": draw(_cell(_NUMBERS)),
                "last_update": time,
            }
        )
    schema = {c: pl.String for c in ("sport_key", "event_id", "bookmaker", "side", "price")}
    schema["last_update"] = pl.String if text_time else pl.Int64
    return pl.DataFrame(rows, schema=schema)


def _reader(row: dict[str, Any]) -> str | None:
    """The row reader's reason for ``row`` (an invalid price, parsed or not, is batch's rejected
    ``invalid price``: test_h23_prec16_skip_order's rule), or None for a usable row."""
    try:
        q = quote_from_row(row)
    except FeedError as exc:
        return exc.reason
    return None if q.price is None or rules.is_valid_price(q.price) else "invalid price"


@settings(max_examples=400, deadline=None)
@given(table=_tables())
def test_text_cells_give_the_stream_engines_alerts_counters_and_skips(table: pl.DataFrame) -> None:
    """Property: batch.detect (pure and compiled) on a table of drawn text cells == the stream
    engine on the row reader's quotes: alerts (bytes), counters, each row's reason, skip counts.
    A price the reader cannot parse is an invalid price to batch by design (prec16): the stream
    engine is given that row with price 0 (an invalid price) to compare counters."""
    require_fast()
    engine = DropEngine(threshold=5)
    want_alerts: list[bytes] = []
    reasons: list[str | None] = []
    for row in table.iter_rows(named=True):
        reasons.append(_reader(row))
        try:
            q = quote_from_row(row)
        except FeedError as exc:
            if exc.reason != "invalid price":
                continue
            q = quote_from_row(row | {"price": 0})
        want_alerts += [_ENC.encode(a) for a in engine.observe(q)]
    skips = Counter(r for r in reasons if r not in (None, "invalid price"))
    for accel in ("pure", "fast"):
        res = detect_counted(table, threshold=5, accel=accel)
        got = dict(res.rejected.iter_rows())
        assert [got.get(i) for i in range(table.height)] == reasons, accel
        assert res.skipped == dict(skips), accel
        assert res.counters == engine.counters, accel
        assert [_ENC.encode(a) for a in res.alert_values()] == want_alerts, accel
