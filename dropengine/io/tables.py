"""Quote tables on disk (SPEC section 2 rows as CSV, Parquet or NDJSON): the readers and writers.

Readers yield ``(clock_ms, Quote)`` pairs, one per row that makes a quote (the row rule is
:func:`dropengine.formats.tables.quote_from_row`), and record every skipped row with its
position; a table without the required columns is one whole-file skip. A table in another
shape (other column names, one column per side, decimal or probability prices) is read
through :class:`~dropengine.io.inputs.InputOptions` (``inputs=``): its rows become SPEC 2
rows by :mod:`dropengine.formats.mapping` first, on every path. Writers take quote
rows (:func:`dropengine.formats.tables.table_row`) and write them so the readers give
back the same quotes: the simulator's files and the conformance suite's go through them.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import msgspec

from ..core.errors import ConfigError, FeedError
from ..core.quote import Quote
from ..core.rules import is_valid_price
from ..core.sides import format_line
from ..core.skips import SkipLog
from ..formats.jsonline import SKIPPED, decode_line
from ..formats.mapping import ODDS_FORMAT_FIELD, STARTING_PRICE_FIELD, converted_row
from ..formats.tables import LINE_ONLY_COLUMN, QUOTE_COLUMNS, REQUIRED_COLUMNS, quote_from_row, table_row
from .files import PARQUET_MAGIC, READ_ERRORS, Progress, close_writer, lines, open_bytes, open_writer, suffix_of
from .inputs import DEFAULT_INPUTS, InputOptions

if TYPE_CHECKING:  # polars loads only when a Parquet file is read or written
    import polars as pl

__all__ = [
    "PARQUET_ORDER_KEY", "TABLE_SUFFIXES", "HeldReorder", "ParquetPlaces", "ReplayOrder", "file_clock",
    "held_moves_clock", "held_rows_reorder", "looks_like_csv_header", "ms_times", "needs_float", "parquet_cell",
    "parquet_clock", "parquet_position", "parquet_quote_table", "parquet_replay_order", "plain_parquet_schema",
    "read_quote_table", "rejected_detail", "rows_carry_mapping", "table_lacks_columns", "table_starting_prices",
    "write_csv_rows", "write_ndjson_rows", "write_parquet_rows", "write_quote_table",
]

#: The columns a quote table may have: one named twice makes the table ambiguous.
_KNOWN_COLUMNS: Final = frozenset((*QUOTE_COLUMNS, LINE_ONLY_COLUMN))
#: Extensions (after any compression extension) that name a table's encoding.
TABLE_SUFFIXES: Final = (".csv", ".parquet", ".ndjson", ".jsonl", ".json")
Stream = Iterator[tuple[int, Quote]]


def _spec_rows(rows: Iterator[tuple[str, Any]], skips: SkipLog, inputs: InputOptions,
               prices: bool = True) -> Iterator[tuple[str, Any]]:
    """The SPEC 2 rows of a table's rows: as they are for a plain table; prices made American
    (:func:`~dropengine.formats.mapping.converted_row`) for another odds format or a row with
    an ``odds_format`` cell; through the mapping (:meth:`TableMapping.apply`) for a mapped
    one. A bad cell is a skip at its row's position; the row's other quotes go on. Without
    ``prices`` the price cells are not read (null): for the starting prices of every side."""
    mapping, fmt = inputs.mapping, inputs.odds_format
    if mapping is None:
        for where, row in rows:
            if not prices and isinstance(row, dict):
                row = {**row, "price": None}
            if isinstance(row, dict) and (fmt != "american" or ODDS_FORMAT_FIELD in row
                                          or STARTING_PRICE_FIELD in row):
                try:
                    row, errors = converted_row(row, fmt)
                except FeedError as exc:
                    skips.add(where, exc.reason, str(exc))
                    continue
                for err in errors:
                    skips.add(where, err.reason, str(err))
            yield where, row
        return
    apply = mapping.apply
    for where, row in rows:
        if not isinstance(row, dict):
            yield where, row  # reported as a bad row by the caller
            continue
        out, errors = apply(row, fmt, prices=prices)
        for err in errors:
            skips.add(where, err.reason, str(err))
        for one in out:
            yield where, one


def _row_quotes(rows: Iterator[tuple[str, Any]], skips: SkipLog) -> Stream:
    for where, row in rows:
        if not isinstance(row, dict):
            skips.add(where, "bad row", f"expected a JSON object, got {type(row).__name__}")
            continue
        try:
            q = quote_from_row(row)
        except FeedError as exc:
            skips.add(where, exc.reason, str(exc))
            continue
        yield q.last_update, q


def _table_kind(path: Path) -> str:
    """``.csv``, ``.parquet`` or ``.ndjson``: by extension, else by content (a table from a
    pipe or saved without its extension): Parquet's magic bytes, a first line that is a JSON
    object (NDJSON rows), anything else CSV."""
    suffix = suffix_of(path)
    if suffix in TABLE_SUFFIXES:
        return suffix if suffix in (".csv", ".parquet") else ".ndjson"
    try:
        with open_bytes(path) as fh:
            if fh.read(4) == PARQUET_MAGIC:
                return ".parquet"
        with open_bytes(path) as fh:
            first = next((line for _, line in lines(fh)), b"")
    except READ_ERRORS:
        return ".ndjson"  # the reader reports what it cannot read
    return ".ndjson" if first.lstrip().startswith(b"{") else ".csv"


def looks_like_csv_header(line: bytes) -> bool:
    """A CSV header naming every required column of a quote table."""
    return _header_delimiter(line.decode("utf-8", "replace")) is not None


_DELIMITERS: Final = (",", ";", "\t", "|")


def _header_delimiter(line: str, required: tuple[str, ...] = REQUIRED_COLUMNS) -> str | None:
    """The delimiter by which a header line names every required column: a comma, or the
    semicolon a spreadsheet in a European locale writes, a tab, a bar; ``None`` if none does."""
    for d in _DELIMITERS:
        if d in line or d == ",":
            names = {c.strip().strip('"') for c in line.split(d)}
            if all(c in names for c in required):
                return d
    return None


def _required(inputs: InputOptions) -> tuple[str, ...]:
    """The columns a table must have: SPEC 2's required ones, or the mapping's columns."""
    return inputs.mapping.required_columns() if inputs.mapping is not None else REQUIRED_COLUMNS


def read_quote_table(
    path: Path, skips: SkipLog, progress: Progress | None = None, *, inputs: InputOptions = DEFAULT_INPUTS
) -> Stream:
    """Yield ``(last_update, Quote)`` for each usable row of a CSV, Parquet or NDJSON table,
    read as ``inputs`` says: the odds format of its prices, and its column mapping (a
    mapped table lacking a column the mapping names is a whole-file skip naming it)."""
    return _row_quotes(_table_rows(path, skips, progress, inputs), skips)


def _table_rows(path: Path, skips: SkipLog, progress: Progress | None, inputs: InputOptions,
                prices: bool = True) -> Iterator[tuple[str, Any]]:
    """A table's SPEC 2 rows (:func:`_spec_rows`) with their positions."""
    suffix = _table_kind(path)
    required = _required(inputs)
    if suffix == ".csv":
        numbers = _NUMBER_COLUMNS if inputs.mapping is None else inputs.mapping.number_columns()
        rows = _csv_rows(path, skips, progress, required, numbers)
    elif suffix == ".parquet":
        rows = _parquet_rows(path, skips, progress, required)
    else:
        # a mapping says what the rows are: a row with a `type` or `data` key is still a row
        # (not a vendor frame), so the line's shape is not judged
        rows = (_ndjson_rows(path, skips, progress) if inputs.mapping is None
                else _ndjson_rows(path, skips, progress, None, required))
    return _spec_rows(rows, skips, inputs, prices)


def table_starting_prices(path: str | Path, inputs: InputOptions = DEFAULT_INPUTS, *,
                          skips: SkipLog | None = None) -> pl.DataFrame | None:
    """The starting prices of a quote table whose (mapped) rows carry a ``starting_price``
    field (in the table's odds format): columns ``event_id, bookmaker, side,
    starting_price`` (American, Float64), one row per key, the last non-empty one in file
    order; ``None`` when the table has no such field. The price cells are not read: a side
    whose price is absent or bad (a runner that never traded) keeps its starting price, as a
    Betfair market's runners do; rows failing ``--where`` or without a key give none. Skips
    go to ``skips`` (a throwaway log by default: the replay reports them)."""
    import polars as pl

    p = Path(path)
    log = skips if skips is not None else SkipLog()
    found = inputs.mapping is not None and inputs.mapping.starting_price
    if not found:
        columns = _table_columns(p, inputs)
        if columns is not None and STARTING_PRICE_FIELD not in columns:
            return None  # told by the header or schema: no row is read (or mapped) to learn it
    prices: dict[tuple[str, str, str], float] = {}
    for where, row in _table_rows(p, log, None, inputs, prices=False):
        if not isinstance(row, dict) or STARTING_PRICE_FIELD not in row:
            continue
        found = True
        sp = row[STARTING_PRICE_FIELD]  # American already (the readers convert it as the prices)
        if sp is None:
            continue
        if not is_valid_price(sp):
            log.add(where, "invalid price", f"{STARTING_PRICE_FIELD}: {sp!r} is not a valid American price")
            continue
        try:
            q = quote_from_row(row)
        except FeedError:
            continue  # the replay reports it
        prices[(q.event_id, q.bookmaker, q.side)] = float(sp)
    if not found:
        return None
    return pl.DataFrame(
        [(*k, v) for k, v in prices.items()],
        schema={"event_id": pl.String, "bookmaker": pl.String, "side": pl.String, "starting_price": pl.Float64},
        orient="row",
    )


def _table_columns(path: Path, inputs: InputOptions) -> list[str] | None:
    """A table's column names from its CSV header or Parquet schema alone, read as the row
    readers read them; ``None`` when they cannot be told without reading rows (NDJSON: each
    row has its own keys) or the file cannot be read (its reader reports that)."""
    kind = _table_kind(path)
    try:
        if kind == ".parquet":
            import polars as pl

            return list(pl.read_parquet_schema(path))
        if kind == ".csv":
            with (open_bytes(path) as raw,
                  io.TextIOWrapper(raw, _text_encoding(raw), errors="replace", newline="") as fh):
                for line in fh:
                    line = line.lstrip("\ufeff")
                    if line.strip():
                        delimiter = _header_delimiter(line, _required(inputs)) or ","
                        cells = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))
                        return [c.strip() for c in cells]
    except Exception:  # unreadable here (polars raises many types, csv.Error, OSError): the reader says why
        return None
    return None


def _first_object(path: Path, limit: int = 100) -> dict[str, Any] | None:
    """The first line of ``path`` (among its first ``limit``) that decodes to a JSON object;
    None when there is none or the file cannot be read (its reader reports that)."""
    try:
        with open_bytes(path) as fh:
            for n, (_, line) in enumerate(lines(fh)):
                if n >= limit:
                    return None
                try:
                    obj = msgspec.json.decode(line)
                except msgspec.DecodeError:
                    continue
                return obj if isinstance(obj, dict) else None
    except READ_ERRORS:
        return None
    return None


def rows_carry_mapping(path: Path, inputs: InputOptions) -> bool:
    """Whether an NDJSON file's rows are a table the column mapping of ``inputs`` reads: its
    first object has every column the mapping names. A file whose lines look like vendor
    frames or The Odds API responses is read as such a table only then (a ``type`` column
    is common in user data), so that recordings replayed beside a mapped table stay what
    they are."""
    if inputs.mapping is None:
        return False
    first = _first_object(path)
    return first is not None and not inputs.mapping.missing_columns(first)


def _ndjson_rows(path: Path, skips: SkipLog, progress: Progress | None,
                 expected: str | None = "quotes", required: tuple[str, ...] | None = None) -> Iterator[
        tuple[str, Any]]:
    """NDJSON rows with their positions; a line that is no JSON, or (``expected``) clearly a
    line of another format, is a skip. With ``required`` (a mapping's columns) the first
    row names the table's columns, as a CSV header does: one lacking any is a whole-file
    skip naming them (not a skip per row)."""
    first = required is not None
    with open_bytes(path, progress) as fh:
        for lineno, line in lines(fh):
            where = f"{path.name}:{lineno}"
            obj = decode_line(line, where, expected, skips)
            if obj is SKIPPED:
                continue
            if first and isinstance(obj, dict):
                first = False
                assert required is not None
                if table_lacks_columns(path, list(obj), None, skips, required):
                    return
            yield where, obj


def table_lacks_columns(path: Path, columns: list[str], rows: int | None, skips: SkipLog,
                        required: tuple[str, ...] = REQUIRED_COLUMNS) -> bool:
    """Report a table without the required columns (SPEC 2's, or those a mapping names)
    once, as a whole-file skip (every row of it would fail the same way); returns whether
    it was reported."""
    missing = [c for c in required if c not in columns]
    if not missing:
        return False
    shown = ", ".join(columns[:40]) + (", ..." if len(columns) > 40 else "")
    count = "" if rows is None else f"; its {rows:,} rows were not read"
    what = ("not a quote table: missing column(s)" if required is REQUIRED_COLUMNS
            else "missing column(s) the column mapping reads:")
    skips.add_file(path.name, "unusable file", f"{what} {', '.join(missing)} (it has: {shown}){count}")
    return True


def _read_parquet(path: Path, skips: SkipLog, progress: Progress | None,
                  required: tuple[str, ...] = REQUIRED_COLUMNS) -> pl.DataFrame | None:
    """The whole Parquet table at ``path``, or ``None`` after a whole-file skip (unreadable,
    or without the required columns): what both Parquet readers (rows, batch) start with."""
    import polars as pl  # a core dependency, imported lazily to keep `import dropengine` light

    try:
        frame = pl.read_parquet(path, glob=False)  # a name like q[1].parquet is no glob
    except Exception as exc:  # polars raises many exception types; translate them all here
        skips.add_file(path.name, "unreadable file", f"{type(exc).__name__}: {exc}")
        return None
    if progress is not None:
        progress(path.stat().st_size)
    if table_lacks_columns(path, frame.columns, frame.height, skips, required):
        return None
    return frame.drop(WORKING_COLUMNS, strict=False)


def _parquet_rows(path: Path, skips: SkipLog, progress: Progress | None,
                  required: tuple[str, ...] = REQUIRED_COLUMNS) -> Iterator[tuple[str, Any]]:
    frame = _read_parquet(path, skips, progress, required)
    if frame is None:
        return
    for i, row in enumerate(frame.iter_rows(named=True), 1):
        yield f"{path.name}:row {i}", row


class _OneLine:
    """The csv module's input: exactly one line per record, then end of input.

    A quotes table never holds a line break inside a cell, so each physical line is parsed
    on its own: an unclosed quote cannot swallow the lines after it (the csv module reads
    on into the next lines to close a quoted cell); it is one bad line, reported.
    """

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line: str | None = None

    def __iter__(self) -> _OneLine:
        return self

    def __next__(self) -> str:
        line = self.line
        if line is None:
            raise StopIteration
        self.line = None
        return line


def _csv_error(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quoted cell is not closed on its line (a quote table holds no line breaks in cells)"
    return text


def _text_encoding(raw: IO[bytes]) -> str:
    """UTF-16 when the file starts with its BOM (a spreadsheet's "Unicode" export), else
    UTF-8 (an optional UTF-8 BOM dropped)."""
    head = raw.peek(2)[:2]  # type: ignore[attr-defined]  # BufferedReader and GzipFile peek
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


#: The columns of a plain quote table read as numbers (a decimal comma is read in them)
_NUMBER_COLUMNS: Final = frozenset(("price", "line", "last_update", STARTING_PRICE_FIELD))
#: A number with a decimal comma (``1,91``), as a spreadsheet in a European locale writes it
_DECIMAL_COMMA: Final = re.compile(r"\s*[+-]?[0-9]+,[0-9]+\s*")


def _csv_rows(path: Path, skips: SkipLog, progress: Progress | None,
              required: tuple[str, ...] = REQUIRED_COLUMNS,
              numbers: frozenset[str] = _NUMBER_COLUMNS) -> Iterator[tuple[str, Any]]:
    """CSV rows as dicts of text (an empty cell is ""), positioned by file line.

    The stdlib parser is used rather than polars so that one ragged or broken line is
    skipped and reported instead of failing the whole file; each line is parsed on its own
    (:class:`_OneLine`), so a broken line never takes the next ones with it. A header
    without the required columns is one report for the whole file. The delimiter is the one
    by which the header names the required columns (``,``, ``;``, tab or ``|``): SPEC 2's,
    or the columns a mapping names (``required``). In a ``;`` table (what a spreadsheet in a
    European locale writes) a cell of a number column (``numbers``) with a decimal comma,
    ``1,91``, is read as ``1.91``; in a ``,`` table such a cell must be quoted and is no
    number (``1,5`` could be 1.5 or 15).
    """
    name = path.name
    one = _OneLine()
    reader = csv.reader(one, strict=True, skipinitialspace=True)
    header: list[str] | None = None
    width = named = 0
    delimiter = ","
    commas: list[int] = []  # the number columns of a ';' table: a decimal comma read as a point
    with (open_bytes(path, progress) as raw,
          io.TextIOWrapper(raw, _text_encoding(raw), errors="replace", newline="") as fh):
        for lineno, line in enumerate(fh, 1):
            if line.startswith("\ufeff"):  # a BOM mid-file: CSVs from a spreadsheet, concatenated
                line = line.lstrip("\ufeff")
            one.line = line
            if header is None and line.strip():
                delimiter = _header_delimiter(line, required) or ","
                # spaces after a delimiter (`a, b`, as hand-written and some exports have it) are no part
                # of the cell, as they are no part of the header's names; a quoted cell keeps its own
                reader = csv.reader(one, delimiter=delimiter, strict=True, skipinitialspace=True)
            try:
                cells = next(reader)
            except csv.Error as exc:
                if header is None:
                    skips.add_file(name, "unusable file", f"line {lineno}: unreadable header: {_csv_error(exc)}")
                    return
                skips.add(f"{name}:{lineno}", "bad row", _csv_error(exc))
                continue
            except StopIteration:
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if header is None:
                header = [h.strip() for h in cells]
                width = len(header)  # the cells a row may have; `named`: those it is read by
                while header and not header[-1]:
                    header.pop()  # a header ending in a delimiter (`a,b,`): its empty names name nothing
                named = len(header)
                if delimiter == ";":
                    commas = [i for i, h in enumerate(header) if h in numbers]
                known = _KNOWN_COLUMNS if required is REQUIRED_COLUMNS else required
                twice = sorted({c for c in header if c in known and header.count(c) > 1})
                if any(c not in header for c in required) or twice:
                    rows = sum(1 for rest in fh if rest.strip())
                    if not table_lacks_columns(path, header, rows, skips, required):
                        skips.add_file(name, "unusable file",
                                       f"the header (line {lineno}) names {', '.join(twice)} twice: which one "
                                       f"is meant cannot be told; its {rows:,} rows were not read")
                    return
                continue
            if len(cells) != named:
                # a row may run past the named columns into the header's empty names, and end in
                # empty cells (`1,2,3,`: a trailing delimiter, a common export quirk); those
                # cells are read by no column. Any other count is a ragged row.
                if len(cells) < named or (len(cells) > width and any(c.strip() for c in cells[width:])):
                    skips.add(f"{name}:{lineno}", "bad row", f"{len(cells)} cells, the header has {width}")
                    continue
                cells = cells[:named]
            if cells[0] == header[0] and [c.strip() for c in cells] == header:
                continue  # the header again: files concatenated (cat a.csv b.csv); nothing is wrong
            for i in commas:
                cell = cells[i]
                if "," in cell and _DECIMAL_COMMA.fullmatch(cell):
                    cells[i] = cell.replace(",", ".")
            yield f"{name}:{lineno}", dict(zip(header, cells, strict=True))


# -- the columnar reader (batch engine) -------------------------------------------------------

def plain_parquet_schema(path: Path) -> bool:
    """Whether a Parquet file's columns have the plain types the columnar fast path reads
    exactly as the row reader does (text as String, or dictionary-encoded: Categorical or
    Enum, which stay so, with no string made per row; numbers as ints/floats, last_update as
    integers or datetimes). Any other type (a bool or list price, an integer kind, text
    lines ...) goes through the row reader, so both engines skip the same rows for the
    same reasons. A file whose schema cannot be read is left to the fast path's report."""
    import polars as pl

    try:
        schema = pl.scan_parquet(path, glob=False).collect_schema()  # a name like q[1].parquet is no glob
    except Exception:  # polars raises many exception types; the reader reports the file
        return True
    for name, dtype in schema.items():
        if name in ("price", "line"):
            ok = dtype.is_integer() or dtype.is_float() or dtype == pl.Null
        elif name == "last_update":
            ok = dtype.is_integer() or isinstance(dtype, pl.Datetime)
        elif name == LINE_ONLY_COLUMN:
            ok = dtype in (pl.Boolean, pl.Null)
        elif name == ODDS_FORMAT_FIELD:
            ok = False  # each row's own odds format: the row reader converts its prices
        elif name in QUOTE_COLUMNS:
            ok = dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum)
        else:
            ok = True
        if not ok:
            return False
    return True


#: The columns that put Parquet quote rows in replay order: each file's running-max clock, the
#: file's place among the files given, the row in its file (one stable sort by them reproduces
#: the k-way merge of the row readers). The sharded batch engine sorts its shards by them too.
PARQUET_ORDER_KEY: Final = ("_clock", "_f", "_r")

#: Columns the batch path adds to a quote table for its own use: ``_now``, the arrival stamp of a
#: decoded recording (a snapshot's fetch time), and ``analysis.batch.PRICE_INT_COLUMN``, which
#: prices arrived as ints. A Parquet file's own columns of these names are no quote field: they
#: are dropped when it is read, as the row reader ignores them (break23's B23-2: the batch engine
#: took a user's ``_now`` as every alert's timestamp, a ``_price_int`` as the prices' types).
STAMP_COLUMN: Final = "_now"
WORKING_COLUMNS: Final = (STAMP_COLUMN, "_price_int")  # (tests pin the second as analysis.batch's)


def stamp_column(columns: Iterable[str]) -> str | None:
    """The column of a table's alert stamps (:data:`STAMP_COLUMN`, which a decoded recording's
    table carries), or ``None``: the alerts are then stamped with their quotes' times."""
    return STAMP_COLUMN if STAMP_COLUMN in columns else None


def parquet_clock(last_update: pl.Expr, held: pl.Expr | None = None) -> pl.Expr:
    """A Parquet file's replay clock at each row: the running maximum of ``last_update`` over
    its rows but those ``held`` (rows skipped: core/merge.py's rule, a skipped row's time moves
    nothing); nulls, negative and unparseable values hold the clock too (no such time is usable:
    it never moves the clock, and -1 is never a row's time); -1 before the first time, so rows
    skipped before a file's first usable row stand before every other."""
    import polars as pl

    lu = last_update.cast(pl.Int64, strict=False)
    lu = pl.when(lu >= 0).then(lu)
    if held is not None:
        lu = pl.when(held).then(None).otherwise(lu)
    return lu.cum_max().forward_fill().fill_null(-1)


def ms_times(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with a Datetime ``last_update`` as Int64 unix ms, as the row reader and the
    detector read it (floored to the millisecond): files of datetimes in other units, or of
    datetimes and integers, then meet in one column and their clocks in one unit (concatenated
    as they are, a microsecond Datetime became integers 1000 times too large)."""
    import polars as pl

    if isinstance(frame.schema.get("last_update"), pl.Datetime):
        return frame.with_columns(pl.col("last_update").dt.epoch("ms"))
    return frame


def file_clock(last_update: pl.Series, held: pl.Series | None = None) -> pl.Series:
    """:func:`parquet_clock` of one file's ``last_update`` column (every row of the file, in its
    order), the rows ``held`` (row numbers in the file, 0-based) moving nothing."""
    import polars as pl

    frame = pl.DataFrame({"_lu": last_update})
    if held is None or held.is_empty():
        return frame.select(parquet_clock(pl.col("_lu"))).to_series()
    mask = pl.int_range(pl.len(), dtype=pl.UInt32).is_in(held.cast(pl.UInt32).implode())
    return frame.select(parquet_clock(pl.col("_lu"), mask)).to_series()


def held_moves_clock(last_update: pl.Series, held: pl.Series) -> bool:
    """Whether rows ``held`` (row numbers in the file) set a file's clock (:func:`file_clock` of
    its ``last_update``) where its usable rows do not: only then is the order by every row's time
    (which the rows' times alone give, before any row is judged) not core/merge.py's. Asked of
    parts of the held rows, it is true of the whole set exactly when it is true of some part: the
    clock differs first at the first held row that raised the running maximum of every row's
    time, a property of that row alone (the sharded path asks it of each shard's rows)."""
    return not held.is_empty() and not file_clock(last_update).equals(file_clock(last_update, held))


@dataclass(frozen=True, slots=True)
class HeldReorder:
    """What core/merge.py's order (held rows move no clock) changes from the order of every row's time
    the files were loaded in (:func:`held_rows_reorder`): nothing, the skip report's order alone, or
    what a detection reads."""

    #: a usable row's clock changes (the usable rows may then meet another file's otherwise): what a
    #: detection reads differs, so it runs again in the rule's order
    detect: bool = False
    #: else, when only the held rows' order among themselves changes: their ``_f, _r`` in the rule's
    #: order. The detector judges a row alone (the same rows are held in any order) and a held row
    #: moves nothing (the alerts and counters are the same): the skip report alone is re-sorted
    #: (review23's R23-4), nothing runs again. ``None``: their order is the loaded one
    skips: pl.DataFrame | None = None


def held_rows_reorder(files: int, held: Iterable[tuple[int, pl.Series, pl.Series]]) -> HeldReorder:
    """What core/merge.py's order (held rows move no clock) changes (:class:`HeldReorder`) from the
    order of every row's time the files were loaded in: a usable row whose file's clock changes (the
    usable rows may then meet another file's otherwise) changes what a detection reads; the held rows
    in another order among themselves change the skip report's order alone. Else nothing changes
    (review23's R23-1: a skipped row in its file's time order changes neither).

    ``held``: ``(file index, the file's last_update column, its held row numbers)`` for the files
    with held rows; ``files``: how many files are merged (one file is its own order: R23-2). The one
    decision of both paths (io.replay.in_replay_order, cluster/shard.py's second run: R23-3)."""
    import polars as pl

    if files < 2:
        return _SAME
    old_keys: list[pl.DataFrame] = []
    new_keys: list[pl.DataFrame] = []
    for f, times, rows in held:
        if rows.is_empty():
            continue
        rows = rows.cast(pl.Int64).sort()
        old, new = file_clock(times), file_clock(times, rows)
        usable = ~pl.select(pl.int_range(len(times), dtype=pl.Int64).is_in(rows.implode())).to_series()
        if not old.filter(usable).equals(new.filter(usable)):
            return HeldReorder(detect=True)
        old_keys.append(pl.DataFrame({"_clock": old.gather(rows), "_f": f, "_r": rows}))
        new_keys.append(pl.DataFrame({"_clock": new.gather(rows), "_f": f, "_r": rows}))
    if len(old_keys) < 2:  # one file's held rows stay in their file's order
        return _SAME
    order = list(PARQUET_ORDER_KEY)
    rule = pl.concat(new_keys).sort(order).select("_f", "_r")
    return _SAME if pl.concat(old_keys).sort(order).select("_f", "_r").equals(rule) else HeldReorder(skips=rule)


_SAME: Final = HeldReorder()


@dataclass(frozen=True, slots=True)
class ParquetPlaces:
    """Where each row of a table of several Parquet files (:func:`parquet_quote_table`) comes
    from: its file (an index into ``paths``) and its row there; called, a row's position."""

    paths: tuple[Path, ...]
    f: pl.Series
    r: pl.Series

    def __call__(self, i: int) -> str:
        return parquet_position(self.paths[self.f[i]].name, self.r[i])

    def file_row(self, i: int) -> tuple[Path, int]:
        """Row ``i``'s file and its row there (0-based), to read a cell as the file holds it."""
        return self.paths[self.f[i]], self.r[i]


@dataclass(frozen=True, slots=True)
class ReplayOrder:
    """What a detection of a table of :func:`parquet_quote_table` needs for core/merge.py's replay
    order once the rows it held no longer move their file's clock (:func:`parquet_replay_order`)."""

    #: the table and its positions in the rule's order, when a detection reads them otherwise: it
    #: runs again on them
    again: tuple[pl.DataFrame, Callable[[int], str]] | None = None
    #: else the held table rows in the rule's order, when only their order among themselves changes
    #: (the skip report's): the rejections are listed in this order; ``None``: the table's order
    skips: pl.Series | None = None


def parquet_replay_order(table: pl.DataFrame, where: Callable[[int], str], held: pl.Series) -> ReplayOrder:
    """What a detection of ``table`` (of :func:`parquet_quote_table`, positions ``where``) that held
    the table rows ``held`` (skipped) needs for the rule's replay order (:class:`ReplayOrder`): the
    table reordered, the held rows reordered, or nothing (:func:`held_rows_reorder`; one file)."""
    import polars as pl

    if not isinstance(where, ParquetPlaces) or held.is_empty() or "last_update" not in table.columns:
        return ReplayOrder()
    keys = pl.DataFrame({"_f": where.f, "_r": where.r, "_lu": table.get_column("last_update")}).with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).is_in(held.implode()).alias("_held"))
    # rows of a file stand in their file's order in the table (its clock never decreases)
    files = [(int(f), part.get_column("_lu"), part.get_column("_r").filter(part.get_column("_held")))
             for (f,), part in keys.partition_by("_f", maintain_order=True, as_dict=True).items()]
    reorder = held_rows_reorder(len(where.paths), files)
    if reorder.skips is not None:  # the held table rows, in the order of their (_f, _r) in the rule's
        rows = keys.select("_f", "_r", pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i")).filter(
            pl.col("_i").is_in(held.implode()))
        skips = reorder.skips.cast({"_f": rows.schema["_f"], "_r": rows.schema["_r"]})
        return ReplayOrder(skips=skips.join(rows, on=["_f", "_r"], how="left", maintain_order="left")
                           .get_column("_i"))
    if not reorder.detect:
        return ReplayOrder()
    clock = keys.select(parquet_clock(pl.col("_lu"), pl.col("_held")).over("_f")).to_series()
    order = (keys.with_columns(clock.alias("_clock"), pl.int_range(pl.len()).alias("_i"))
             .sort(["_clock", "_f", "_r"], maintain_order=True).get_column("_i"))
    return ReplayOrder(again=(table[order], ParquetPlaces(where.paths, where.f.gather(order), where.r.gather(order))))


def rejected_detail(table: pl.DataFrame, row: int, reason: str, place: tuple[str | Path, int] | None = None) -> str:
    """What the row reader says of a row of ``table`` that the batch detector rejected for
    ``reason`` (the message of :func:`quote_from_row`'s error, e.g. ``event_id: missing``), so
    a batch skip report reads as the stream engine's; asked only for the few skips shown. A price
    the table holds as a float but its file as an int (:data:`PRICE_INT_COLUMN`: several files,
    Int64 prices in some) is quoted as the int the file holds (break23's B23-1: ``0.0`` for ``0``):
    the float's int below 2**53, where the float is that int exactly; past it (an invalid price) as
    the row's Parquet file at ``place`` holds it (its path and row there, 0-based; B23-1b: ``...992``
    for ``...993``), read for that row alone (~5 ms for a row of a 500k-row file: never for the
    prices a float holds); without a file (a decoded recording's table) as the float's int."""
    from ..analysis.batch import PRICE_INT_COLUMN

    cells = table.row(row, named=True)
    price = cells.get("price")
    if cells.get(PRICE_INT_COLUMN) and type(price) is float and price.is_integer():
        cells["price"] = int(price) if abs(price) < 2**53 or place is None else parquet_cell(*place, "price")
    try:
        quote_from_row(cells)
    except FeedError as exc:
        if exc.reason == reason:
            return str(exc)
    return "rejected by the batch detector"


def parquet_cell(path: str | Path, row: int, column: str) -> Any:
    """The cell of ``column`` at ``row`` (0-based) of the Parquet file at ``path``, as the file
    holds it (one row read)."""
    import polars as pl

    return pl.scan_parquet(path, glob=False).select(column).slice(row, 1).collect().item()


def listable_rejections(rejected: pl.DataFrame, per_reason: int, files: pl.Series | None = None) -> pl.DataFrame:
    """The rows of ``rejected`` (input order, a ``reason`` column) a skip report can list: the
    first ``per_reason`` of each reason (:meth:`SkipLog.add_counted` decides among them), so a
    column of millions of rejections is never walked row by row. With ``files`` (each row's file)
    the first ``per_reason`` of each reason in each file: the rows a report lists in any order
    that keeps each file's own (the first of a merge are among the first of each part), so the
    rows may be re-sorted afterwards (:attr:`HeldReorder.skips`)."""
    import polars as pl

    n = pl.int_range(pl.len())
    if files is None:
        return rejected.filter(n.over("reason") < per_reason)
    return rejected.filter(n.over(pl.col("reason"), files) < per_reason)


def parquet_position(name: str, row: int) -> str:
    """Where a Parquet row is, as skips and errors name it: ``file:row N`` (1-based)."""
    return f"{name}:row {row + 1}"


def parquet_quote_table(
    files: list[Path], skips: SkipLog, progress: Progress | None = None
) -> tuple[pl.DataFrame, Callable[[int], str]]:
    """Parquet quote tables (of :func:`plain_parquet_schema`) read straight into one polars
    table in replay order, for the batch engine: per-file running-max clocks, then one stable
    sort that reproduces the k-way merge of the row readers. Returns the table and a row ->
    position function; an unreadable file or one without the required columns is a
    whole-file skip, as on the row path.

    Dictionary-encoded text columns stay Categorical (the batch engine takes their codes). One
    usable file is the table as read: its running-max clock never decreases, so the merge is
    its own row order, and nothing is added, sorted or copied."""
    import polars as pl

    from ..analysis.batch import PRICE_INT_COLUMN

    read: list[tuple[Path, pl.DataFrame]] = []
    for path in files:
        df = _read_parquet(path, skips, progress)
        if df is not None:
            read.append((path, df))
    if not read:
        return pl.DataFrame({c: [] for c in REQUIRED_COLUMNS}), lambda i: "?"
    if len(read) == 1:
        only, frame = read[0]
        return frame, lambda i: parquet_position(only.name, i)
    parts = []
    for f_idx, (_, df) in enumerate(read):
        # an Enum's categories are its file's own: two files' Enums (or an Enum and a Categorical)
        # have no common type, so they meet as Categorical (codes mapped, no string per row)
        df = ms_times(df.with_columns(pl.col(c).cast(pl.Categorical) for c, t in df.schema.items()
                                      if isinstance(t, pl.Enum)))
        lu = df.get_column("last_update") if "last_update" in df.columns else pl.Series([None] * df.height)
        clock = pl.select(parquet_clock(pl.lit(lu))).to_series()
        parts.append(df.with_columns(clock.alias("_clock"), pl.lit(f_idx).alias("_f"),
                                     pl.int_range(pl.len()).alias("_r")))
    kinds = {p.schema["price"].is_integer() for p in parts if p.schema.get("price", pl.Null) != pl.Null}
    if len(kinds) > 1:
        # Int64 prices in one file, Float64 in another: the concatenated column is Float64,
        # so say per row which prices arrived as ints (they keep their type in the alerts)
        parts = [p.with_columns(pl.lit(p.schema.get("price", pl.Null).is_integer(), dtype=pl.Boolean)
                                .alias(PRICE_INT_COLUMN)) for p in parts]
    table = pl.concat(parts, how="diagonal_relaxed").sort(list(PARQUET_ORDER_KEY), maintain_order=True)
    # asked for a few rows only (the skips shown): no list of every row's file and place; the files'
    # names only (the files' frames, which the sorted table copied, go with ``read``)
    where = ParquetPlaces(tuple(p for p, _ in read), table.get_column("_f"), table.get_column("_r"))
    read.clear()
    table = table.drop(*PARQUET_ORDER_KEY)
    return table, where


# -- writers ---------------------------------------------------------------------------------

_ENC: Final = msgspec.json.Encoder()
_CHUNK: Final = 50_000  # rows turned into a columnar chunk at a time (Parquet)
_ROW_GROUP: Final = 250_000
_INT64: Final = (-(2**63), 2**63 - 1)


def _non_finite(value: Any) -> str | None:
    """The text of a NaN or infinite price, which no JSON or CSV number can hold: written as
    ``NaN`` / ``Infinity`` / ``-Infinity``, a string the readers skip as ``invalid price``
    (invalid, as SPEC 1 has it, never ``null``: that would be a suspension)."""
    if type(value) is float and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return None


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "line":
        return format_line(value)
    if type(value) is str:
        if "\n" in value or "\r" in value:
            # the reader parses each line on its own (a broken quote never swallows the next
            # rows), so a cell cannot hold a line break: refuse rather than write a bad row
            raise ConfigError(f"{name}: {value!r} holds a line break, which a CSV quote table cannot")
        return value
    return _non_finite(value) or str(value)  # a float's repr reads back as the same float


def _line_only_cell(row: Mapping[str, Any], declared: bool) -> bool:
    """Whether ``row`` is a line-only observation; one in a table written without the
    :data:`LINE_ONLY_COLUMN` (``line_only=False``) is refused: read back it would be a suspension."""
    marked = row.get(LINE_ONLY_COLUMN) is True
    if marked and not declared:
        raise ConfigError(f"{LINE_ONLY_COLUMN}: a line-only observation of {row.get('side')!r} in a table written "
                          "without the line_only column (pass line_only=True)")
    return marked


def write_csv_rows(fh: IO[bytes], rows: Iterable[Mapping[str, Any]], line_only: bool = False) -> int:
    """Write quote rows as CSV (header :data:`QUOTE_COLUMNS`, ``\\n`` line ends, an absent
    value as an empty cell) to a binary file; returns the number of rows. An integer price
    is written as ``-110``, a float one as ``-110.0``, so the reader gives back its type; a
    NaN or infinite one as text (:func:`_non_finite`). Text with a line break cannot be a
    cell (the reader reads one line per row): :class:`ConfigError` naming the column.
    ``line_only`` adds the :data:`LINE_ONLY_COLUMN` (``true`` or empty), which line-only
    observations (SPEC 10) need."""
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    # the reader drops spaces after a delimiter unless the cell is quoted: a row with a cell
    # that starts with a space is written quoted whole, so it reads back as it was
    quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow((*QUOTE_COLUMNS, LINE_ONLY_COLUMN) if line_only else QUOTE_COLUMNS)
    n = 0
    for row in rows:
        cells = [_cell(c, row.get(c)) for c in QUOTE_COLUMNS]
        if _line_only_cell(row, line_only):
            cells.append("true")
        elif line_only:
            cells.append("")
        (quoted if any(c[:1].isspace() for c in cells) else writer).writerow(cells)
        n += 1
    text.flush()
    text.detach()
    return n


def write_ndjson_rows(fh: IO[bytes], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write quote rows as NDJSON (one compact object per line, keys in :data:`QUOTE_COLUMNS`
    order; a NaN or infinite price as text, see :func:`_non_finite`; ``"line_only": true`` on a
    line-only observation, only there); returns the number of rows."""
    batch: list[bytes] = []
    n = 0
    for row in rows:
        out = {c: row.get(c) for c in QUOTE_COLUMNS}
        if row.get(LINE_ONLY_COLUMN) is True:
            out[LINE_ONLY_COLUMN] = True
        text = _non_finite(out["price"])
        if text is not None:
            out["price"] = text  # msgspec would write null (a suspension)
        batch.append(_ENC.encode(out) + b"\n")
        n += 1
        if len(batch) == 4096:
            fh.write(b"".join(batch))
            batch.clear()
    fh.write(b"".join(batch))
    return n


def write_parquet_rows(out: Path, rows: Iterable[Mapping[str, Any]], float_prices: bool = False,
                       line_only: bool = False) -> int:
    """Write quote rows as one Parquet table (zstd, fixed settings, so the same rows give the
    same bytes for one polars version); returns the number of rows.

    A Parquet column has one type: ``price`` is Int64, or Float64 with ``float_prices``
    (needed as soon as one price is fractional, or an int beyond Int64: integral prices then
    read back as floats). ``line_only`` adds the Boolean :data:`LINE_ONLY_COLUMN`, which
    line-only observations (SPEC 10) need. The text columns are dictionary-encoded (polars
    Categorical): ids, books and sides repeat on every row, and readers (``replay``'s batch
    engine among them) take them as categories, with no string per row.
    The table is held in memory whole (about 70 bytes per quote in columnar chunks).
    Raises :class:`ConfigError` when ``out`` cannot be written.
    """
    import polars as pl  # a core dependency, imported lazily to keep `import dropengine` light

    names = (*QUOTE_COLUMNS, LINE_ONLY_COLUMN) if line_only else QUOTE_COLUMNS
    schema: dict[str, Any] = {c: pl.Categorical for c in QUOTE_COLUMNS}
    schema.update(price=pl.Float64 if float_prices else pl.Int64, last_update=pl.Int64, line=pl.Float64)
    if line_only:
        schema[LINE_ONLY_COLUMN] = pl.Boolean
    chunks: list[pl.DataFrame] = []
    columns: dict[str, list[Any]] = {c: [] for c in names}
    n = total = 0
    for row in rows:
        for c in QUOTE_COLUMNS:
            columns[c].append(row.get(c))
        if _line_only_cell(row, line_only):
            columns[LINE_ONLY_COLUMN].append(True)
        elif line_only:
            columns[LINE_ONLY_COLUMN].append(False)
        n += 1
        if n == _CHUNK:
            chunks.append(pl.DataFrame(columns, schema=schema, strict=False))
            columns = {c: [] for c in names}
            total += n
            n = 0
    if n or not chunks:
        chunks.append(pl.DataFrame(columns, schema=schema, strict=False))
        total += n
    frame = pl.concat(chunks, rechunk=False) if len(chunks) > 1 else chunks[0]
    try:
        frame.write_parquet(out, compression="zstd", compression_level=3, statistics=True, row_group_size=_ROW_GROUP)
    except OSError as exc:
        raise ConfigError(f"out: cannot write {str(out)!r}: {exc.strerror or exc}") from None
    return total


def needs_float(price: object) -> bool:
    """Whether a Parquet price column holding ``price`` must be Float64: a float, or an int
    no Int64 holds (an invalid price, ``|A| > 100000``; polars would write it as null, a
    suspension, where as a float it stays the invalid price it is)."""
    return type(price) is float or (type(price) is int and not _INT64[0] <= price <= _INT64[1])


def write_quote_table(out: str | Path, quotes: Iterable[Quote], *, line_only: bool | None = None) -> int:
    """Write ``quotes`` as a quote table whose encoding the name says: ``.csv``, ``.ndjson``
    or ``.jsonl`` (each optionally ``.gz``, written with no name and mtime 0), ``.parquet``
    (Float64 prices when any price is a float or an int beyond Int64). Returns the number of rows; raises
    :class:`ConfigError` for another name or an unwritable path. Read back by
    :func:`read_quote_table` (and ``replay``) it gives the same quotes, bar the Parquet
    price type noted above and a NaN or infinite price in CSV/NDJSON (no number there can
    hold one: it is written as text, which the reader skips as ``invalid price``). Line-only
    observations (SPEC 10) are marked in the :data:`LINE_ONLY_COLUMN`, which the table has
    only when it holds one. To know that, a CSV is written from the quotes in memory; pass
    ``line_only`` (``True``: the column; ``False``: none, a line-only quote is then refused) to
    stream a CSV from an iterator instead."""
    out = Path(out)
    name = out.name.lower()
    gz = name.endswith(".gz")
    suffix = Path(name[:-3] if gz else name).suffix
    if suffix not in (".csv", ".ndjson", ".jsonl", ".parquet") or (gz and suffix == ".parquet"):
        raise ConfigError(f"out: {str(out)!r} must end in .csv, .ndjson or .jsonl (optionally .gz), or .parquet")
    streamed = suffix == ".csv" and line_only is not None
    if suffix != ".ndjson" and suffix != ".jsonl" and not streamed and not isinstance(quotes, (list, tuple)):
        quotes = list(quotes)  # a CSV header and a Parquet schema are written before the rows
    if line_only is not None:
        marked = line_only
    else:
        marked = isinstance(quotes, (list, tuple)) and any(q.line_only for q in quotes)
    rows = [table_row(q) for q in quotes] if suffix == ".parquet" else (table_row(q) for q in quotes)
    if suffix == ".parquet":
        assert isinstance(rows, list)
        return write_parquet_rows(out, rows, float_prices=any(needs_float(r["price"]) for r in rows),
                                  line_only=marked)
    fh = open_writer(out, gz)
    try:
        return write_csv_rows(fh, rows, marked) if suffix == ".csv" else write_ndjson_rows(fh, rows)
    finally:
        close_writer(fh)
