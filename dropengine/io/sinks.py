"""Writers for alerts: NDJSON (streamed), CSV and Parquet (collected, written on close).

Every alert type goes through the same writer. NDJSON lines are each alert's wire object
(its ``type`` says which). A table has the columns of :func:`~dropengine.core.alerts.alert_fields`
for the types asked for: today's columns exactly for price drops alone, else a ``type`` column
and every type's own fields (empty where a type has none; a steam's ``books`` and a line
move's ``key_numbers`` as JSON text), so one table holds a mixed run.

In a Parquet table every text column but a steam's ``books`` is dictionary-encoded (polars
Categorical): ids, bookmakers and sides repeat on every row, and a reader gets them back as
categories (polars Categorical, pandas ``category``) with no string per row. ``books`` is plain
text (:data:`PLAIN_TEXT`): each steam's own JSON with its times, hardly ever repeated, where a
dictionary would hold every value once more. A number column is Int64 while every value in it
is an int, else Float64 (CSV: each number written as it arrived). The batch engine's alerts
(:meth:`AlertWriter.write_batch`) go to a table straight from its alerts frame, with exactly
the cells the alert values would give.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, get_args

import msgspec

from ..core.alerts import ALERT_FIELDS, NUMBER_FIELDS, SIGNALS, TIME_FIELDS, Alert, alert_fields, alert_row
from ..core.errors import ConfigError
from ..core.rules import Direction
from .files import part_file, replace_whole

if TYPE_CHECKING:  # polars loads only when a table is written
    import polars as pl

    from ..analysis.batch import BatchResult

__all__ = ["OUTPUT_SUFFIXES", "PLAIN_TEXT", "AlertWriter"]

OUTPUT_SUFFIXES: Final = (".ndjson", ".jsonl", ".csv", ".parquet")
_ENC = msgspec.json.Encoder()

#: How ``--output x.parquet`` writes (benchmarks/output_floor.py times the same settings): zstd
#: level 1, the size of the default level at about half its time.
PARQUET_WRITE: Final[dict[str, Any]] = {"compression": "zstd", "compression_level": 1}


class AlertWriter:
    """Write alerts to stdout (NDJSON) or to a file chosen by extension. ``types`` are the
    alert types the run may produce (they choose a table's columns; default: price drops).
    ``count`` is the number of alerts written, ``counts`` the same by type."""

    def __init__(
        self, path: Path | None = None, stream: IO[bytes] | None = None, types: Iterable[str] = ("odds_drop",)
    ) -> None:
        self.path = path
        self.count = 0
        self.counts: dict[str, int] = {}
        self.columns = alert_fields(frozenset(types))
        self._rows: list[dict[str, Any]] = []
        #: a batch run's alerts table, typed as :meth:`close` types the rows (write_batch)
        self._frame: pl.DataFrame | None = None
        self._written = False  # (:attr:`written`: a CSV/Parquet file is written once, by the first close to)
        #: the empty file made below for a path that did not exist (its target's), until the table is written
        self._made: Path | None = None
        self._fh: IO[bytes] | None = None
        if path is None:
            self.kind = "ndjson"
            self._fh = stream if stream is not None else sys.stdout.buffer
            self._own = False
            return
        suffix = path.suffix.lower()
        if suffix not in OUTPUT_SUFFIXES:
            raise ConfigError(f"output: {str(path)!r} must end in {', '.join(OUTPUT_SUFFIXES)}")
        self.kind = {".jsonl": "ndjson", ".ndjson": "ndjson"}.get(suffix, suffix[1:])
        self._own = True
        try:
            if self.kind == "ndjson":
                self._fh = open(path, "wb")  # noqa: SIM115  # closed in close()
            else:
                target = Path(os.path.realpath(path))
                made = not target.exists()
                path.touch()  # fail now, not after the whole replay, if it cannot be written
                self._made = target if made else None
        except OSError as exc:
            raise ConfigError(f"output: cannot write {str(path)!r}: {exc.strerror or exc}") from None

    def write(self, alerts: Sequence[Alert]) -> None:
        if self._frame is not None and alerts:
            # the file is one table: a batch run's frame cannot be mixed with rows written after it
            raise ConfigError(
                f"output: {str(self.path)!r} already holds a whole batch run (write_batch); "
                "write the other alerts to another file"
            )
        self.count += len(alerts)
        counts = self.counts
        for a in alerts:
            counts[a.type] = counts.get(a.type, 0) + 1
        if self._fh is not None:
            self._fh.write(b"".join(_ENC.encode(a) + b"\n" for a in alerts))
        else:
            columns = self.columns
            self._rows.extend(alert_row(a, columns) for a in alerts)

    def write_batch(self, result: BatchResult) -> None:
        """The alerts of a batch run (:class:`~dropengine.analysis.batch.BatchResult`), in detection
        order. A CSV or Parquet file takes the run's alerts frame column by column (no row is built
        per alert), with exactly the cells :meth:`write` of ``result.alert_values()`` would give:
        price drops by the frame's type flags, several types by the types of the alert values'
        numbers (a CSV column of ints and floats both goes through the values). NDJSON (and a
        writer already holding rows) takes the values."""
        frame = None
        alerts = result.alerts
        if self.kind in ("csv", "parquet") and not self._rows and self._frame is None:
            if self.columns == ALERT_FIELDS and tuple(alerts.columns) == ALERT_FIELDS:
                frame = _drops_table(result, self.kind)
            elif result.signals and tuple(alerts.columns) == self.columns:
                # the numbers' types from the run's columns: no alert value is built
                numbers = result.number_types([c for c in alerts.columns if c in NUMBER_FIELDS])
                frame = _signals_table(alerts, numbers, self.kind)
        if frame is None:
            self.write(result.alert_values())
            return
        self._frame = frame
        self.count += frame.height
        for kind, n in _type_counts(frame):
            self.counts[kind] = self.counts.get(kind, 0) + n

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    @property
    def written(self) -> bool:
        """Whether :meth:`close` has written the file (CSV, Parquet) or flushed the NDJSON
        stream (and closed its file): false before, and after a close whose write failed."""
        return self._written

    def _encode(self, frame: pl.DataFrame, target: Path | IO[bytes]) -> None:
        """``frame`` as this writer's file kind (CSV or Parquet) into ``target``."""
        if self.kind == "csv":
            frame.write_csv(target)
        else:
            _write_parquet(frame, target)

    def close(self) -> None:
        """Flush and close the NDJSON stream, or write the CSV/Parquet file whole: to a file beside
        it (beside a symlink's target: the output is written through the link) put in its place
        with the old file's mode once complete (:func:`~dropengine.io.files.part_file`,
        :func:`~dropengine.io.files.replace_whole`, as ``simulate --out``), so the path holds the
        whole table or what it held before, never part of one; a FIFO, a device, a socket or a
        folder not ours is written in place, as before. A close whose write failed (an ``OSError``,
        or polars' own ``KeyboardInterrupt`` when a Ctrl-C aborts the write) keeps the table: close
        again to write it; the empty file ``__init__`` made for a path that did not exist goes
        meanwhile. After a written file a close does nothing."""
        if self._fh is not None:
            self._fh.flush()
            if self._own:
                self._fh.close()
            self._fh = None
            self._written = True
            return
        if self.path is None or self.kind not in ("csv", "parquet") or self._written:
            return  # (a second close keeps the file the first one wrote)
        frame = self._frame if self._frame is not None else self._rows_table()
        self._frame, self._rows = frame, []  # kept until the file is written
        path = self.path
        part = part_file(path)
        try:
            try:
                if part is None:
                    # (in place: a FIFO, a device, a socket. Opened once, here: polars' writers open a
                    # path twice (to create it, then to write), and a FIFO's reader takes the first
                    # close for the end of the file, so the write then waited for a reader for ever)
                    with open(path, "wb") as fh:
                        self._encode(frame, fh)
                else:
                    self._encode(frame, part)
                    replace_whole(part, path)
            except BaseException:
                if part is not None:
                    part.unlink(missing_ok=True)
                if self._made is not None and self._made.exists() and not self._made.stat().st_size:
                    self._made.unlink()  # (made empty by __init__: the path is as it was, absent)
                raise
        except OSError as exc:
            raise ConfigError(f"output: cannot write {str(path)!r}: {exc}") from None
        self._written = True
        self._frame = None

    def _rows_table(self) -> pl.DataFrame:
        """The rows :meth:`write` kept, as a typed table: text by :func:`_text_type`, times Int64,
        a number column Int64 while every value is an int, else Float64 (CSV: floats as text)."""
        import polars as pl

        names = self.columns
        columns: dict[str, Any] = {c: [r.get(c) for r in self._rows] for c in names}
        schema: dict[str, Any] = {c: _text_type(self.kind, c) for c in names}
        for c in TIME_FIELDS:
            if c in schema:
                schema[c] = pl.Int64
        for c in NUMBER_FIELDS:  # each keeps its type: an int column while every value is an int
            if c not in schema:
                continue
            if all(v is None or type(v) is int for v in columns[c]):
                schema[c] = pl.Int64
            elif self.kind == "csv":
                # CSV is text: write each price as it arrived, so -120 stays -120 beside -112.5
                columns[c] = [None if v is None else _ENC.encode(v).decode() for v in columns[c]]
                schema[c] = pl.String
            else:
                schema[c] = pl.Float64  # a typed column holds one type
        return pl.DataFrame(columns, schema=schema)

    def __enter__(self) -> AlertWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _write_parquet(frame: pl.DataFrame, path: Path | IO[bytes]) -> None:
    """Write ``frame`` to ``path`` with :data:`PARQUET_WRITE`: the file a reader gets from
    ``frame.write_parquet(path, **PARQUET_WRITE)`` (the same schema, recorded the same way, and
    the same values and encodings), at less cost.

    Told no Arrow schema, polars exports a table to Arrow at its oldest level: every String
    column, and every Categorical's dictionary, is copied out of polars' string views into a
    large-string buffer grown by doubling before it is encoded (a steam run's write at 10M
    quotes: ~100k page faults, ~8k without the copies). Given the
    frame's own schema (string views), the writer encodes the views as they are. The Arrow schema
    the file records (``ARROW:schema``, by which Arrow readers such as pyarrow type its columns)
    is the one polars records without it, taken from its write of the frame's empty head (its
    writer adds its own ``ARROW:schema`` only when the metadata given has none). The
    bytes are the same but for where a plain-encoded text column's data pages are cut (rows per
    ~1 MiB page by the column's estimated size: the views' text alone, where the large strings
    add their 8-byte offsets): a steam's ``books`` alone at 10M quotes (all distinct, so not
    dictionary-encoded), 227 bytes less."""
    import polars as pl

    head = io.BytesIO()
    frame.head(0).write_parquet(head, **PARQUET_WRITE)
    head.seek(0)
    recorded = pl.read_parquet_metadata(head)
    frame = frame.with_columns(_constant_categoricals(frame))
    frame.write_parquet(path, **PARQUET_WRITE, arrow_schema=frame.schema, metadata=recorded)


def _type_counts(frame: pl.DataFrame) -> list[tuple[str, int]]:
    """The alert types in a table's ``type`` column and how many rows each has, in order of
    first appearance (:attr:`AlertWriter.counts`). The detector writes only the words of
    :data:`SIGNALS`: each is counted by one comparison per row and found first by the first
    row that holds it, in one ``select`` (10M quotes, CPU: 1.6 ms for 5.0M line moves, 6 ms for
    8.0M alerts of every type, where ``unique`` + ``unique_counts`` hashed every row twice: 30
    and 46 ms; a ``group_by`` held ~0.1 GB of hash tables). A table with another value or a
    null (checked: the counts must add up to its rows) is counted by ``unique`` as before."""
    import polars as pl

    if not frame.height:
        return []
    types = frame.get_column("type")
    is_word = [pl.col("type") == w for w in SIGNALS]
    row = frame.select(
        *(e.sum().alias(f"n{i}") for i, e in enumerate(is_word)),
        *(e.arg_max().alias(f"at{i}") for i, e in enumerate(is_word)),
    ).row(0)
    counts, firsts = row[: len(SIGNALS)], row[len(SIGNALS) :]
    if sum(counts) == frame.height:
        return [(w, n) for _, w, n in sorted((at, w, n) for at, w, n in zip(firsts, SIGNALS, counts, strict=True) if n)]
    return [
        (str(kind), n)
        for kind, n in zip(types.unique(maintain_order=True).to_list(), types.unique_counts().to_list(), strict=True)
    ]


def _constant_categoricals(frame: pl.DataFrame) -> list[pl.Series]:
    """The Categorical columns of ``frame`` that hold one value on every row, or none on any,
    as Enums of that one value (or of none), which :func:`_write_parquet` writes the same: a row
    group's dictionary is the values it holds in order of appearance (here the one value, or
    none) either way. An Enum's codes are written as they are; a Categorical's are re-mapped to
    the file's dictionary row by row (a hash-set insert per row, ~30-45 ms for 5M rows). A line
    move table has six such columns (``type``, ``sport_key``, ``kind``; ``player``, ``market``,
    ``leader``). A column with some nulls or two values stays Categorical: its row groups'
    dictionaries are each its own. The Enum is cut into the column's own chunks: where polars
    cuts a file's pages follows the chunks it is handed (a column of chunks of 1 and 351 rows
    made one chunk was written as one data page where polars wrote two: the same cells, other
    bytes)."""
    import polars as pl

    def repeated(col: pl.Series, word: str | None, enum: pl.Enum) -> pl.Series:
        one = pl.Series(col.name, [word], dtype=enum)
        if col.n_chunks() == 1:
            return one.new_from_index(0, col.len())
        return pl.concat([one.new_from_index(0, chunk.len()) for chunk in col.get_chunks()], rechunk=False)

    out: list[pl.Series] = []
    for name, dtype in frame.schema.items():
        if dtype != pl.Categorical:
            continue
        col = frame.get_column(name)
        if col.null_count() == col.len():
            out.append(repeated(col, None, pl.Enum([])))
        elif not col.null_count():
            codes = col.to_physical()
            # (~1,000 rows spread over the column tell most columns of several values for ~0.05 ms,
            # where min and max read every row: 1.6 ms a column of 5M)
            some = codes.gather_every(max(1, codes.len() // 1024))
            if some.min() == some.max() and codes.min() == codes.max():
                word = col[0]
                out.append(repeated(col, word, pl.Enum([word])))
    return out


#: Text columns a Parquet table holds as plain text, not dictionary-encoded: a steam's ``books``
#: (its counted moves' JSON, with their times: 459,384 steams at 10M quotes, 459,384 distinct
#: texts, ~410 MB). A dictionary of all-distinct values buys nothing and costs its build: the
#: cast to Categorical (hashing every text while the String column lives: the steams' peak) and
#: the export of its codes on the write.
PLAIN_TEXT: Final = frozenset({"books"})


def _text_type(kind: str, name: str) -> Any:
    """The type of a table's text column ``name`` (the one rule, for every writer): dictionary-
    encoded (Categorical) in Parquet but :data:`PLAIN_TEXT`; plain text in CSV (which has no types)."""
    import polars as pl

    return pl.Categorical if kind == "parquet" and name not in PLAIN_TEXT else pl.String


def _json_text(column: pl.Series) -> pl.Series:
    """Each float of ``column`` as :meth:`AlertWriter.write` writes a number into CSV (its JSON
    text, the shortest text that reads back as that float): encoded once per distinct value."""
    import polars as pl

    texts = {v: _ENC.encode(v).decode() for v in column.drop_nulls().unique().to_list()}
    text = column.replace_strict(texts, default=None, return_dtype=pl.String)
    if not (column == 0).any():
        return text
    # 0.0 and -0.0 are one value to unique(), two texts to JSON: the sign (of 1/x) tells them apart
    zero = (
        pl.when(1.0 / pl.lit(column) < 0)
        .then(pl.lit(_ENC.encode(-0.0).decode()))
        .otherwise(pl.lit(_ENC.encode(0.0).decode()))
    )
    return pl.select(pl.when(pl.lit(column) == 0).then(zero).otherwise(pl.lit(text)).alias(column.name)).to_series()


def _int_values(name: str, column: pl.Series, flags: pl.DataFrame | None) -> bool | pl.Series:
    """Which values of the drops frame's number ``column`` are ints as :meth:`BatchResult.drops`
    gives them: ``True`` every one, ``False`` none, else a flag per row. An integer column holds
    ints; a float column holds the prices the type flags say arrived as ints (``delta``: where
    both did) and floats otherwise; ``line`` holds floats (:attr:`Quote.line`)."""
    if column.dtype.is_integer() or column.null_count() == column.len():
        return True
    if name == "line" or flags is None:
        return False
    if name == "prev":
        return flags.get_column("prev_int").fill_null(False)
    if name == "new":
        return flags.get_column("new_int").fill_null(False)
    return (flags.get_column("prev_int") & flags.get_column("new_int")).fill_null(False)


#: Text columns whose every value is one of a few known words (SPEC 4's alert types and move
#: directions): made Categorical from a comparison per word, not a string hashed per row.
_FEW_TEXTS: Final[dict[str, tuple[str, ...]]] = {"type": SIGNALS, "direction": get_args(Direction)}


def _text_column(frame: pl.DataFrame, name: str, kind: str) -> pl.Expr | None:
    """The expression typing text column ``name`` of ``frame`` as a table holds it
    (:func:`_text_type`), or ``None`` when the column is no text. A String column of one of
    :data:`_FEW_TEXTS` whose values are all among its words (the detector's own; checked) is
    built from one comparison per word: 5-6x less work than a cast to Categorical, which hashes
    every row's string (0.3-0.5 s CPU for each such column of 8M alerts)."""
    import polars as pl

    dtype = frame.schema[name]
    if not (dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum)):
        return None
    text = _text_type(kind, name)
    words = _FEW_TEXTS.get(name)
    if dtype == text or words is None or dtype != pl.String or text != pl.Categorical:
        return pl.col(name).cast(text)
    col = frame.get_column(name)
    counts = frame.select(*((pl.col(name) == w).sum().alias(w) for w in words)).row(0)
    if not any(counts) or sum(counts) + col.null_count() != col.len():
        # a word not in the list: each row's string cast (no word at all: nulls or no row, cheap)
        return pl.col(name).cast(text)
    out = pl.lit(None, dtype=text)
    for w, n in zip(words, counts, strict=True):
        if n:
            out = pl.when(pl.col(name) == w).then(pl.lit(w, dtype=text)).otherwise(out)
    return out.alias(name)


def _drops_table(result: BatchResult, kind: str) -> pl.DataFrame | None:
    """The price drops of a batch run as :meth:`AlertWriter.close` writes their values
    (``result.drops()``), from the alerts frame: a number column is Int64 while every value in
    it is an int, else Float64 (CSV: each value as it arrived, an int as an int and a float as
    its JSON text), times Int64, text typed by :func:`_text_type`. ``None`` when the frame's columns
    are not of the types of a drops table. The columns are typed in one ``select`` (polars
    types them in parallel), each cast only where the type differs."""
    import polars as pl

    alerts = result.alerts
    flags = result.price_types if result.price_types.height == alerts.height else None
    exprs: list[pl.Expr] = []
    computed: list[pl.Series] = []  # CSV cells made per value (replace the column in place)
    for c in ALERT_FIELDS:
        col = alerts.get_column(c)
        if c in TIME_FIELDS:
            if not (col.dtype.is_integer() or col.dtype == pl.Null):
                return None
            exprs.append(pl.col(c).cast(pl.Int64))
        elif c == "type":  # every row is a price drop: made, not cast row by row
            exprs.append(pl.repeat(pl.lit("odds_drop", dtype=_text_type(kind, c)), pl.len()).alias(c))
        elif c not in NUMBER_FIELDS:
            expr = _text_column(alerts, c, kind)
            if expr is None:
                return None
            exprs.append(expr)
        elif not (col.dtype.is_numeric() or col.dtype == pl.Null):
            return None
        else:
            ints = _int_values(c, col, flags)
            if ints is True or (ints is not False and bool(ints.all())):
                exprs.append(pl.col(c).cast(pl.Int64))  # every value an int (or none): an int column
            elif kind == "parquet":
                exprs.append(pl.col(c).cast(pl.Float64))  # a typed column holds one type
            else:
                exprs.append(pl.col(c))
                if ints is False:
                    computed.append(_json_text(col.cast(pl.Float64)))
                else:
                    as_int = col.cast(pl.Int64, strict=False).cast(pl.String)
                    computed.append(
                        pl.select(
                            pl.when(pl.lit(ints))
                            .then(pl.lit(as_int))
                            .otherwise(pl.lit(_json_text(col.cast(pl.Float64))))
                            .alias(c)
                        ).to_series()
                    )
    frame = alerts.select(exprs)
    return frame.with_columns(computed) if computed else frame


def _signals_table(alerts: pl.DataFrame, numbers: dict[str, set[type]], kind: str) -> pl.DataFrame | None:
    """A batch run's table of several alert types (:attr:`BatchResult.alerts`: the rows
    :func:`alert_row` writes, numbers as Float64) typed as :meth:`AlertWriter.close` types the
    rows of its alert values (``numbers``: each number column's Python types among them,
    :meth:`BatchResult.number_types`): a number column Int64 while every value is an int, else Float64 (CSV:
    floats as their JSON text), times Int64, text typed by :func:`_text_type`. ``None`` (write the
    values) for a CSV column holding ints and floats both, or columns of other types. The
    columns are typed in one ``select`` (in parallel), each cast only where the type differs."""
    import polars as pl

    exprs: list[pl.Expr] = []
    computed: list[pl.Series] = []  # CSV cells made per value (replace the column in place)
    for c in alerts.columns:
        col = alerts.get_column(c)
        if c in TIME_FIELDS:
            if not (col.dtype.is_integer() or col.dtype == pl.Null):
                return None
            exprs.append(pl.col(c).cast(pl.Int64))
        elif c not in NUMBER_FIELDS:
            expr = _text_column(alerts, c, kind)
            if expr is None:
                return None
            exprs.append(expr)
        elif not (col.dtype.is_numeric() or col.dtype == pl.Null) or not numbers[c] <= {int, float}:
            return None
        elif numbers[c] <= {int}:
            exprs.append(pl.col(c).cast(pl.Int64))  # every value an int (or none): an int column
        elif kind == "parquet":
            exprs.append(pl.col(c).cast(pl.Float64))
        elif int in numbers[c]:
            return None  # ints beside floats in CSV: each written as it is, from the values
        else:
            exprs.append(pl.col(c))
            computed.append(_json_text(col.cast(pl.Float64)))
    frame = alerts.select(exprs)
    return frame.with_columns(computed) if computed else frame
