"""Quote tables (SPEC section 2 columns): one row, as a mapping, to one :class:`Quote`.

Used by the NDJSON, CSV and Parquet quote readers alike, so every table format accepts
the same values: a price may be a number (a decimal too), a plain-number string, or
empty/null (suspended); ``last_update`` is unix ms (or a datetime, naive meaning UTC);
optional columns may be absent or empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import msgspec

from ..core.errors import FeedError
from ..core.quote import KINDS, Quote
from ..core.sides import canonical_side
from .frames import coerce_line, coerce_ms, coerce_price

__all__ = [
    "LINE_ONLY_COLUMN", "NUMERIC_COLUMNS", "OPTIONAL_COLUMNS", "QUOTE_COLUMNS", "REQUIRED_COLUMNS", "SKIP_ORDER",
    "TEXT_COLUMNS", "quote_from_row", "table_row",
]

# The one quote column list (SPEC section 2): the fields of Quote, in its order, so a column
# can never exist in a table and not on the quote (or the reverse). Every table reader and
# writer, the batch detector and the simulator take their columns from here.
# ``line_only`` (SPEC 10's line-only observations, which decoders emit only for line detection)
# is not one of them: a table row without a price is a suspension, unless the table has the
# optional LINE_ONLY_COLUMN and it is true on that row.
QUOTE_COLUMNS: Final[tuple[str, ...]] = tuple(f for f in Quote.__struct_fields__ if f != "line_only")
#: Columns every quote table must have (the Quote fields without a default).
REQUIRED_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in msgspec.structs.fields(Quote) if f.required)
#: Columns a table may leave out (absent or empty means ``None``).
OPTIONAL_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in QUOTE_COLUMNS if c not in REQUIRED_COLUMNS)
#: Numeric columns: ``price`` (int or float), ``line`` (float), ``last_update`` (int ms); the rest are text.
NUMERIC_COLUMNS: Final[tuple[str, ...]] = ("price", "line", "last_update")
TEXT_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in QUOTE_COLUMNS if c not in NUMERIC_COLUMNS)
_REQUIRED_TEXT: Final = tuple(c for c in REQUIRED_COLUMNS if c in TEXT_COLUMNS)
_TEXT_OPTIONAL: Final = tuple(c for c in OPTIONAL_COLUMNS if c in TEXT_COLUMNS and c not in ("kind", "market_key"))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The optional column marking a line-only observation (SPEC 10: the row's side has a line but
#: its book publishes no price; the empty price is no suspension). Read when present (true,
#: false, empty); the batch table of decoded frames carries it when any row is line-only.
LINE_ONLY_COLUMN: Final = "line_only"
_TRUE_FALSE: Final[dict[object, bool]] = {True: True, False: False, None: False, "": False, "true": True,
                                         "false": False, "True": True, "False": False, "TRUE": True, "FALSE": False}


def _opt_text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise FeedError(f"{name}: {value!r} must be text", "bad field")
    return value


#: The one order a table row's faults are judged in, as ``(step, reason)``: a row with several
#: faults is skipped for the first step it fails, so every engine names one reason for it (the
#: row reader :func:`quote_from_row`, which the stream engine reads CSV/Parquet/NDJSON tables
#: with, and both loads of :mod:`dropengine.analysis.batch` follow this tuple). The steps:
#:
#: - ``missing``: a required text (``sport_key``, ``event_id``, ``bookmaker``, ``side``) or
#:   ``last_update`` null or empty, or no price column;
#: - ``text``: a required text that is neither text nor an integer id (a float column's);
#: - ``line``: a ``line`` that is no finite number;
#: - ``side``: a side the grammar does not parse (:func:`~dropengine.core.sides.canonical_side`);
#: - ``time``: a ``last_update`` that is no unix ms;
#: - ``field``: a ``kind`` not game/prop (null or empty is allowed: derived from the side), a
#:   ``kind`` contradicting the side where the quote derives the market from it, an optional text
#:   that is not text, a :data:`LINE_ONLY_COLUMN` mark not true/false/empty;
#: - ``line_only_price``: a line-only observation with a price in its cell (parsed or not);
#: - ``line_only_line``: a line-only observation with no line to observe (Quote's own checks);
#: - ``price``: a price that is no number (a skip here; the batch detector counts the row as an
#:   invalid price, as it does an out-of-range one: the last, so any other fault names the row).
SKIP_ORDER: Final[tuple[tuple[str, str], ...]] = (
    ("missing", "missing field"),
    ("text", "bad field"),
    ("line", "bad line"),
    ("side", "bad side"),
    ("time", "bad time"),
    ("field", "bad field"),
    ("line_only_price", "bad field"),
    ("line_only_line", "bad line"),
    ("price", "invalid price"),
)


def quote_from_row(row: Mapping[str, Any]) -> Quote:
    """Build a quote from one table row; raises :class:`FeedError` naming the bad column, for
    the first of :data:`SKIP_ORDER`'s steps the row fails.

    The side is parsed and rewritten in its canonical spelling (``spread_home@-3.0`` and
    ``spread_home@-3`` are one key), so a malformed side is a skipped row, not a new key.
    """
    # -- missing: the required fields present (and the required texts text)
    for name in (*_REQUIRED_TEXT, "last_update"):
        value = row.get(name)
        if value is None or value == "":
            raise FeedError(f"{name}: missing", "missing field")
    if "price" not in row:
        raise FeedError("price: column missing (an empty cell means suspended)", "missing field")
    # -- text
    sport_key, event_id = _req_text(row, "sport_key"), _req_text(row, "event_id")
    bookmaker, raw_side = _req_text(row, "bookmaker"), _req_text(row, "side")
    # -- line
    raw_line = row.get("line")
    try:
        line = coerce_line(None if raw_line == "" else raw_line, "line")
        line = None if line is None else float(line)
    except OverflowError:  # an integer no float holds ('9' * 400): no line, not a crash
        raise FeedError(f"line: {str(raw_line)[:40]!r}... is too large to be a line", "bad line") from None
    # -- side, time
    side = canonical_side(raw_side)
    last_update = _ms(row["last_update"])
    # -- field (Quote checks the kind against the side below: the same step, the same reason)
    kind = _opt_text(row, "kind")
    if kind is not None and kind not in KINDS:
        raise FeedError(f"kind: {kind!r} must be {' or '.join(KINDS)}", "bad field")
    market_key = _opt_text(row, "market_key")
    texts = [_opt_text(row, n) for n in _TEXT_OPTIONAL]
    marked = row.get(LINE_ONLY_COLUMN)
    line_only = _TRUE_FALSE.get(marked) if type(marked) in (bool, str) or marked is None else None
    if line_only is None:
        raise FeedError(f"{LINE_ONLY_COLUMN}: {marked!r} must be true, false or empty", "bad field")
    # -- price: read here, judged last (line_only_price: a line-only row's price cell, parsed or not)
    raw_price = row["price"]
    if isinstance(raw_price, Decimal):  # a Parquet decimal column (a database export)
        raw_price = int(raw_price) if raw_price == raw_price.to_integral_value() else float(raw_price)
    try:
        price, unparsed = coerce_price(None if raw_price == "" else raw_price, "price"), None
    except FeedError as exc:
        price, unparsed = None, exc

    # kind: narrowed to Kind by the KINDS check above; Quote checks the rest: the kind against the
    # side, then (a parsed price) line_only: no price, a side with a line
    q = Quote(sport_key, event_id, bookmaker, side, price, last_update, kind, market_key, texts[0], texts[1],
              line, texts[2], texts[3], texts[4], line_only and unparsed is None)
    if unparsed is None:
        return q
    if line_only:  # as Quote says of a line-only row's parsed price
        raise FeedError(f"{LINE_ONLY_COLUMN}: a line-only observation has no price (got {raw_price!r})", "bad field")
    raise unparsed


def table_row(q: Quote) -> dict[str, Any]:
    """The table row of ``q``: every :data:`QUOTE_COLUMNS` key, values as the quote holds them
    (``None`` for an absent optional value), and :data:`LINE_ONLY_COLUMN` true for a line-only
    observation (only then). :func:`quote_from_row` gives back ``q``."""
    row = {c: getattr(q, c) for c in QUOTE_COLUMNS}
    if q.line_only:
        row[LINE_ONLY_COLUMN] = True
    return row


def _ms(value: object) -> int:
    """``last_update`` as unix ms: what :func:`coerce_ms` takes, a datetime (a Parquet
    Datetime column; naive means UTC, as in polars and the batch detector) or a decimal."""
    if isinstance(value, Decimal):  # a Parquet decimal column, as the batch detector reads it
        value = int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return coerce_ms((value - _EPOCH) // timedelta(milliseconds=1))
    return coerce_ms(value)


def _req_text(row: Mapping[str, Any], name: str) -> str:
    value = row[name]
    if type(value) is int:
        return str(value)  # ids stored as integers in a table are still ids
    if type(value) is not str:
        raise FeedError(f"{name}: {value!r} must be text", "bad field")
    return value
