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
    "LINE_ONLY_COLUMN", "NUMERIC_COLUMNS", "OPTIONAL_COLUMNS", "QUOTE_COLUMNS", "REQUIRED_COLUMNS", "TEXT_COLUMNS",
    "quote_from_row", "table_row",
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


def quote_from_row(row: Mapping[str, Any]) -> Quote:
    """Build a quote from one table row; raises :class:`FeedError` naming the bad column.

    The side is parsed and rewritten in its canonical spelling (``spread_home@-3.0`` and
    ``spread_home@-3`` are one key), so a malformed side is a skipped row, not a new key.
    """
    for name in (*_REQUIRED_TEXT, "last_update"):
        value = row.get(name)
        if value is None or value == "":
            raise FeedError(f"{name}: missing", "missing field")
    if "price" not in row:
        raise FeedError("price: column missing (an empty cell means suspended)", "missing field")
    raw_price = row["price"]
    if isinstance(raw_price, Decimal):  # a Parquet decimal column (a database export)
        raw_price = int(raw_price) if raw_price == raw_price.to_integral_value() else float(raw_price)
    price = coerce_price(None if raw_price == "" else raw_price, "price")
    raw_line = row.get("line")
    try:
        line = coerce_line(None if raw_line == "" else raw_line, "line")
        line = None if line is None else float(line)
    except OverflowError:  # an integer no float holds ('9' * 400): no line, not a crash
        raise FeedError(f"line: {str(raw_line)[:40]!r}... is too large to be a line", "bad line") from None
    kind = _opt_text(row, "kind")
    if kind is not None and kind not in KINDS:
        raise FeedError(f"kind: {kind!r} must be {' or '.join(KINDS)}", "bad field")
    texts = [_opt_text(row, n) for n in _TEXT_OPTIONAL]
    marked = row.get(LINE_ONLY_COLUMN)
    line_only = _TRUE_FALSE.get(marked) if type(marked) in (bool, str) or marked is None else None
    if line_only is None:
        raise FeedError(f"{LINE_ONLY_COLUMN}: {marked!r} must be true, false or empty", "bad field")
    return Quote(
        _req_text(row, "sport_key"),
        _req_text(row, "event_id"),
        _req_text(row, "bookmaker"),
        canonical_side(_req_text(row, "side")),
        price,
        _ms(row["last_update"]),
        kind,  # narrowed to Kind by the KINDS check above
        _opt_text(row, "market_key"),
        texts[0],
        texts[1],
        line,
        texts[2],
        texts[3],
        texts[4],
        line_only,  # Quote checks it: no price, a side with a line
    )


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
