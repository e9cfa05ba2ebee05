"""Readers for recordings on disk: format detection and one stream per file.

Every reader yields ``(clock_ms, item)`` pairs for :func:`dropengine.core.merge.merge_by_clock`
and records each skipped line, row or field in a :class:`~dropengine.core.skips.SkipLog` with
its position. Nothing here decides about drops; it only turns bytes into quotes.

Items are of three kinds, so that the merge happens *before* anything stateful:
- a :class:`~dropengine.core.quote.Quote` (quote tables);
- an :class:`Envelope` (vendor frames and SSE captures), decoded after the merge by one
  shared :class:`~dropengine.formats.frames.FrameDecoder`, so a recording rotated across several
  files keeps its ``_diff`` bases;
- a :class:`Snapshot`: the quotes of one The Odds API response, stamped with its fetch time.

Formats: ``frames`` (vendor envelopes as NDJSON), ``sse`` (raw text captured by
``curl --no-buffer``), ``quotes`` (SPEC section 2 tables as NDJSON, CSV or Parquet),
``theoddsapi`` (v4 responses: a JSON file, a directory of them, or NDJSON snapshots).
Any file may be gzipped (``.gz``).

A file that cannot be read or used at all (not gzip, cut before its first line, a format
that cannot be told or that dropengine does not read, a table without the required
columns) is one whole-file skip (:meth:`~dropengine.core.skips.SkipLog.add_file`), never an
exception: the other files are read. Only a path that does not exist is the caller's
error (:class:`ConfigError`).
"""

from __future__ import annotations

import atexit
import bz2
import codecs
import csv
import gzip
import io
import lzma
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

from ..core.errors import ConfigError, FeedError
from ..core.quote import Quote
from ..core.skips import SkipLog
from ..formats.frames import coerce_ms
from ..formats.jsonline import decode_json
from ..formats.sse import SSEParser
from ..formats.tables import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, quote_from_row
from ..formats.theoddsapi import iso_to_ms, quotes_from_odds_api

__all__ = [
    "FORMATS",
    "Envelope",
    "Progress",
    "Snapshot",
    "detect_format",
    "expand_paths",
    "line_format",
    "open_recordings",
    "read_recording",
    "table_lacks_columns",
]

FORMATS: Final = ("auto", "frames", "sse", "quotes", "theoddsapi")
#: Files a directory of The Odds API responses is made of.
ODDS_API_SUFFIXES: Final = (".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
Progress = Callable[[int], None]

_SSE_FIELDS: Final = ("data:", "event:", "id:", "retry:", ":")
_BOM: Final = b"\xef\xbb\xbf"
_CR: Final = ord("\r")
_PARQUET_MAGIC: Final = b"PAR1"
_READ_ERRORS: Final = (OSError, EOFError, zlib.error, lzma.LZMAError)  # includes gzip.BadGzipFile
#: Compressed archives recognised only to say how to read them: (magic, what, command).
_ARCHIVES: Final = ((b"\x28\xb5\x2f\xfd", "zstd file", "zstd -dc"), (b"PK\x03\x04", "zip archive", "unzip -p"))
#: The columns a quote table may have: one named twice makes the table ambiguous.
_KNOWN_COLUMNS: Final = frozenset(REQUIRED_COLUMNS) | frozenset(OPTIONAL_COLUMNS)
#: Format detection counts the votes of at most this many lines that vote ...
DETECT_LINES: Final = 50
#: ... and stops as soon as one format has this many clear votes, or after this many lines.
DETECT_DECISIVE: Final = 3
DETECT_MAX_LINES: Final = 1000
#: What each shape of line is, for messages ("looks like ...").
_SHAPES: Final = {
    "frames": "vendor frames (envelopes with a type)",
    "quotes": "quote-table rows",
    "theoddsapi": "The Odds API responses",
    "sse": "a raw SSE capture",
    "betfair": "Betfair Exchange stream (mcm) messages",
    "alerts": "dropengine alerts (odds_drop: the output of replay or serve, not odds)",
}
#: Shapes recognised only to say what a file is: no reader reads them.
_FOREIGN: Final = frozenset({"betfair", "alerts"})
_BETFAIR_OPS: Final = frozenset({"mcm", "ocm", "connection", "status", "marketSubscription", "heartbeat"})


class Envelope(NamedTuple):
    """A vendor envelope still to be decoded, with its position for skip reports."""

    where: str
    obj: Any


class Snapshot(NamedTuple):
    """The quotes of one The Odds API response; ``clock`` stamps its alerts."""

    clock: int
    quotes: list[Quote]


Item = Quote | Envelope | Snapshot
Stream = Iterator[tuple[int, Item]]


class _Counting(io.RawIOBase):
    """A raw file that reports how many bytes were read (for a progress bar on .gz too)."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if n and self._progress is not None:
            self._progress(n)
        return n or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open(path: Path, progress: Progress | None = None) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip, bzip2 or xz: told by its first bytes,
    not its extension (a gzip file saved without ``.gz`` is common). zstd and zip archives
    raise :class:`OSError` saying how to read them."""
    raw = io.BufferedReader(_Counting(open(path, "rb"), progress), 1 << 20)  # noqa: SIM115
    try:
        head = raw.peek(6)[:6]
        if head.startswith(b"\x1f\x8b"):
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        if head.startswith(b"BZh"):
            return bz2.BZ2File(raw, "rb")
        if head.startswith(b"\xfd7zXZ\x00"):
            return lzma.LZMAFile(raw, "rb")
        for magic, kind, tool in _ARCHIVES:
            if head.startswith(magic):
                raise OSError(f"it is a {kind}, which dropengine does not read: decompress it first, or pipe "
                              f"it: {tool} {path.name} | dropengine replay /dev/stdin")
        if path.name.lower().endswith(".gz"):
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]  # reports "not gzip"
    except BaseException:
        raw.close()
        raise
    return raw


def _suffix(path: Path) -> str:
    """The extension that names the format, after any compression extension."""
    name = path.name.lower()
    for ext in (".gz", ".bz2", ".xz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return Path(name).suffix


def expand_paths(paths: list[Path], skips: SkipLog) -> list[Path]:
    """Directories become their The Odds API files (sorted); an empty one is reported."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(ODDS_API_SUFFIXES))
            if not files:
                subdirs = sorted(f.name for f in p.iterdir() if f.is_dir())
                shown = ", ".join(subdirs[:5]) + (", ..." if len(subdirs) > 5 else "")
                hint = (f" (its subdirectories are not read: {shown}; give them as paths)" if subdirs else "")
                skips.add(str(p), "empty directory", f"no .json / .ndjson files in it{hint}")
            out.extend(files)
        else:
            out.append(p)
    return out


def line_format(obj: Any) -> tuple[str | None, bool]:
    """What one decoded JSON line looks like: ``(format, clear)``.

    ``format`` is one of ``frames``, ``quotes``, ``theoddsapi`` or a foreign shape
    (``betfair``, ``alerts``), or ``None`` when the line says nothing (``{}``, ``null``, a
    number). ``clear`` is False for a line that fits a format only weakly (``[]``, an
    empty The Odds API response): such lines vote only when no line votes clearly.
    """
    if isinstance(obj, dict):
        op = obj.get("op")
        if isinstance(op, str) and (op in _BETFAIR_OPS or "clk" in obj or "pt" in obj):
            return "betfair", True
        etype = obj.get("type")
        if isinstance(etype, str):
            return ("alerts" if etype == "odds_drop" else "frames"), True
        if "side" in obj:
            return "quotes", True
        if "bookmakers" in obj or isinstance(obj.get("data"), list):
            return "theoddsapi", True
        return None, False
    if isinstance(obj, list):
        if not obj:
            return "theoddsapi", False
        first = obj[0]
        if isinstance(first, dict) and ("bookmakers" in first or "home_team" in first):
            return "theoddsapi", True
    return None, False


def _elect(votes: list[str]) -> str | None:
    """The format with the most votes; a tie goes to the one that voted first."""
    if not votes:
        return None
    counts: dict[str, int] = {}
    for v in votes:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts.values())
    return next(v for v in votes if counts[v] == best)


def detect_format(path: str | Path) -> str:
    """Decide a file's format from its extension, else by a vote of its first lines.

    Each decodable line votes for the format it looks like (:func:`line_format`); lines
    that say nothing (``{}``, ``null``, bad JSON) do not vote. Reading stops after
    :data:`DETECT_DECISIVE` clear votes that all agree, after :data:`DETECT_LINES` votes, or
    after :data:`DETECT_MAX_LINES` non-blank lines. The format with most clear votes wins
    (a tie: the one seen first); weak votes (``[]``) count only when there is no clear
    one. A line that disagrees with the decision is reported by the reader as a bad line.

    Raises :class:`ConfigError` when the path does not exist, and :class:`FeedError`
    (reason ``unreadable file`` or ``unusable file``, the message says why) when the file
    cannot be read, its format cannot be told, or it is a format dropengine does not read.
    """
    p = Path(path)
    if p.is_dir():
        return "theoddsapi"
    if not p.exists():
        raise ConfigError(f"path: {str(p)!r} does not exist")
    try:
        p = _spool(p)  # a pipe is read once: detection and the reader share one copy
    except OSError as exc:
        raise FeedError(f"cannot read it: {type(exc).__name__}: {exc}", "unreadable file") from None
    suffix = _suffix(p)
    if suffix in (".parquet", ".csv"):
        return "quotes"
    if suffix in (".sse", ".event-stream"):
        return "sse"
    try:
        with _open(p) as fh:
            if fh.read(4) == _PARQUET_MAGIC:
                return "quotes"  # a Parquet table without its extension (a pipe)
    except _READ_ERRORS:
        pass  # reported below, when the lines are read
    clear: list[str] = []
    weak: list[str] = []
    first_line: bytes | None = None
    sse_prefixes = tuple(f.encode() for f in _SSE_FIELDS)
    try:
        with _open(p) as fh:
            n = 0
            for _, raw in _lines(fh):
                line = raw.strip()
                n += 1
                if first_line is None:
                    first_line = line[:60]
                if line.startswith(sse_prefixes):
                    clear.append("sse")
                else:
                    try:
                        fmt, is_clear = line_format(decode_json(line))
                    except FeedError:
                        if line in (b"[", b"{") or suffix == ".json":
                            return "theoddsapi"  # a pretty-printed JSON document
                        if n == 1 and _looks_like_csv_header(line):
                            return "quotes"  # a CSV table without its extension (a pipe)
                        fmt, is_clear = None, False
                    if fmt is not None:
                        (clear if is_clear else weak).append(fmt)
                if len(clear) >= DETECT_DECISIVE and clear.count(clear[0]) == len(clear):
                    break  # unanimous so far; with any disagreement, read on and count
                if len(clear) + len(weak) >= DETECT_LINES or n >= DETECT_MAX_LINES:
                    break
    except _READ_ERRORS as exc:
        if not clear and not weak:
            raise FeedError(f"cannot read it: {type(exc).__name__}: {exc}", "unreadable file") from None
        # decide from what could be read; the reader reads it again and reports the cut
    fmt = _elect(clear) or _elect(weak)
    if fmt in _FOREIGN:
        raise FeedError(f"looks like {_SHAPES[fmt]}, which dropengine does not read", "unusable file")
    if fmt is not None:
        return fmt
    if first_line is None:
        return "frames"  # an empty file: any format reads it as nothing; reported as empty
    shown = first_line.decode("utf-8", "replace")
    raise FeedError(
        f"cannot tell the format (no line of the first {n} looks like odds; the first is {shown!r}); "
        "pass --format frames|sse|quotes|theoddsapi",
        "unusable file",
    )


def open_recordings(
    paths: list[Path], fmt: str, skips: SkipLog, progress: Progress | None = None
) -> tuple[dict[str, str], list[Stream]]:
    """Every file of ``paths`` (directories expanded) as a stream, with its format.

    Formats are detected first, before anything is read. A file that cannot be read or
    told is one whole-file skip (its format shows as ``skipped``) and the others go on;
    a path that does not exist raises :class:`ConfigError`.
    """
    formats: dict[str, str] = {}
    streams: list[Stream] = []
    for given in expand_paths(paths, skips):
        resolved = _resolve(given, fmt, skips)
        if resolved is None:
            formats[str(given)] = "skipped"
            continue
        p, f = resolved
        formats[str(given)] = f
        streams.append(read_recording(p, f, skips, progress))
    return formats, streams


def _resolve(path: Path, fmt: str, skips: SkipLog) -> tuple[Path, str] | None:
    """A file ready to read (a pipe copied) and its format (``auto`` detected), or None
    when it cannot be read or told: then it is a whole-file skip in ``skips``."""
    p = _seekable(path, skips)
    if p is None:
        return None
    if fmt == "auto":
        try:
            fmt = detect_format(p)
        except FeedError as exc:
            skips.add_file(p.name, exc.reason, str(exc))
            return None
    return p, fmt


def _seekable(path: Path, skips: SkipLog) -> Path | None:
    """``path``, or for a pipe, FIFO or ``/dev/stdin`` (``zcat x.gz | replay /dev/stdin``,
    ``replay <(zcat x.gz)``) a copy of it in a temporary file of the same name.

    Such input can be read once only, but detection reads the first lines before the reader
    reads it all (the reader found it empty; a FIFO waited for ever for a second writer).
    The copy is removed at exit. ``None`` (a whole-file skip) when it cannot be read.
    """
    try:
        return _spool(path)
    except OSError as exc:
        skips.add_file(path.name, "unreadable file", f"cannot read it: {type(exc).__name__}: {exc}")
        return None


#: Pipes already copied, by the path given: every later read (detection first, then the
#: reader, or a server's start-up check, then its source) gets the same copy.
_SPOOLED: dict[str, Path] = {}


def _spool(path: Path) -> Path:
    """``path`` itself when it is a regular file (or missing), else its copy (see
    :func:`_seekable`); raises :class:`OSError` when it cannot be read."""
    if path.is_file() or not path.exists():
        return path
    copy = _SPOOLED.get(str(path))
    if copy is None:
        tmp = Path(tempfile.mkdtemp(prefix="dropengine-"))
        atexit.register(shutil.rmtree, tmp, True)
        copy = tmp / path.name
        with open(path, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        _SPOOLED[str(path)] = copy
    return copy


def read_recording(path: str | Path, fmt: str, skips: SkipLog, progress: Progress | None = None) -> Stream:
    """Yield ``(clock_ms, item)`` for one recording in ``fmt`` (``auto`` detects it).

    A file that cannot be read or told is a whole-file skip in ``skips`` (nothing yielded).
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    if p.is_dir():
        raise ConfigError(f"path: {str(p)!r} is a directory; give its files (replay() expands directories)")
    resolved = _resolve(p, fmt, skips)
    if resolved is None:
        return iter(())
    p, fmt = resolved
    reader = {"frames": _frames, "sse": _sse, "quotes": _quotes, "theoddsapi": _theoddsapi}[fmt]
    return _guarded(p, reader(p, skips, progress), skips)


def _guarded(path: Path, stream: Stream, skips: SkipLog) -> Stream:
    """Turn a read error mid-file (truncated .gz, not gzip at all, I/O) into a reported skip."""
    empty = True
    try:
        for pair in stream:
            empty = False
            yield pair
    except _READ_ERRORS as exc:
        skips.add_file(path.name, "unreadable file", f"{type(exc).__name__}: {exc} (everything before it was read)")
        return
    if empty and path.stat().st_size == 0:
        skips.add_file(path.name, "empty file", "the file has no data")


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with 1-based numbers, for every line-based reader and detection.

    A line ends at LF, CRLF or a lone CR (old-Mac line ends, or a mix): a JSON text never
    holds a raw CR, so splitting there cannot cut a valid line. A UTF-8 BOM on line 1 is
    dropped (one mid-file, from ``cat a b``, is dropped by
    :func:`~dropengine.formats.jsonline.decode_json`).
    """
    extra = 0  # lines found inside physical lines (split at lone CRs) so far
    for i, line in enumerate(fh, 1):
        if _CR in line:  # an int test is a memchr: ~10x cheaper per line than b"\r" in line
            parts = line.rstrip(b"\r\n").split(b"\r")
            if len(parts) > 1:
                for j, part in enumerate(parts):
                    if i == 1 and j == 0 and part.startswith(_BOM):
                        part = part[len(_BOM) :]
                    if part.strip():
                        yield i + extra + j, part
                extra += len(parts) - 1
                continue
        if i == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line.strip():
            yield i + extra, line


_SKIPPED: Final = object()


def _json_line(text: bytes | str, where: str, expected: str | None, skips: SkipLog) -> Any:
    """One line (or SSE event) decoded, or ``_SKIPPED`` after recording why in ``skips``:
    it is not JSON (``bad json``), or it clearly is a line of another format than
    ``expected`` (``wrong format``; ``None`` checks nothing)."""
    try:
        obj = decode_json(text)
    except FeedError as exc:
        skips.add(where, exc.reason, str(exc))
        return _SKIPPED
    if expected is not None:
        fmt, clear = line_format(obj)
        if clear and fmt != expected:
            skips.add(where, "wrong format", f"the line looks like {_SHAPES[fmt or '']}; the file is read as "
                                             f"{_SHAPES[expected]}")
            return _SKIPPED
    return obj


def _envelope_clock(obj: Any, clock: int) -> int:
    """An envelope's clock: the newest integer ``last_update`` among its rows (else ``clock``)."""
    data = obj.get("data") if isinstance(obj, dict) else None
    if isinstance(data, list):
        for row in data:
            lu = row.get("last_update") if isinstance(row, dict) else None
            if type(lu) is int and lu > clock:
                clock = lu
    return clock


def _frames(path: Path, skips: SkipLog, progress: Progress | None) -> Stream:
    name = path.name
    clock = 0
    with _open(path, progress) as fh:
        for lineno, line in _lines(fh):
            where = f"{name}:{lineno}"
            obj = _json_line(line, where, "frames", skips)
            if obj is _SKIPPED:
                continue
            clock = _envelope_clock(obj, clock)
            yield clock, Envelope(where, obj)


def _sse(path: Path, skips: SkipLog, progress: Progress | None) -> Stream:
    name = path.name
    parser = SSEParser()
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    clock = 0
    with _open(path, progress) as fh:
        while True:
            chunk = fh.read(1 << 16)
            for ev in parser.feed(utf8.decode(chunk, final=not chunk)):
                where = f"{name}:{ev.line}"
                obj = _json_line(ev.data, where, "frames", skips)
                if obj is _SKIPPED:
                    continue
                clock = _envelope_clock(obj, clock)
                yield clock, Envelope(where, obj)
            if not chunk:
                break
    if parser.close():
        skips.add(f"{name}:EOF", "partial event", "the capture ends inside an event; it was discarded")


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
    suffix = _suffix(path)
    if suffix in (".csv", ".parquet", ".ndjson", ".jsonl", ".json"):
        return suffix if suffix in (".csv", ".parquet") else ".ndjson"
    try:
        with _open(path) as fh:
            if fh.read(4) == _PARQUET_MAGIC:
                return ".parquet"
        with _open(path) as fh:
            first = next((line for _, line in _lines(fh)), b"")
    except _READ_ERRORS:
        return ".ndjson"  # the reader reports what it cannot read
    return ".ndjson" if first.lstrip().startswith(b"{") else ".csv"


def _looks_like_csv_header(line: bytes) -> bool:
    """A CSV header naming every required column of a quote table."""
    return _header_delimiter(line.decode("utf-8", "replace")) is not None


_DELIMITERS: Final = (",", ";", "\t", "|")


def _header_delimiter(line: str) -> str | None:
    """The delimiter by which a header line names every required column: a comma, or the
    semicolon a spreadsheet in a European locale writes, a tab, a bar; ``None`` if none does."""
    for d in _DELIMITERS:
        if d in line or d == ",":
            names = {c.strip().strip('"') for c in line.split(d)}
            if all(c in names for c in REQUIRED_COLUMNS):
                return d
    return None


def _quotes(path: Path, skips: SkipLog, progress: Progress | None) -> Stream:
    suffix = _table_kind(path)
    if suffix == ".csv":
        return _row_quotes(_csv_rows(path, skips, progress), skips)
    if suffix == ".parquet":
        return _row_quotes(_parquet_rows(path, skips, progress), skips)
    return _row_quotes(_ndjson_rows(path, skips, progress), skips)


def _ndjson_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    with _open(path, progress) as fh:
        for lineno, line in _lines(fh):
            where = f"{path.name}:{lineno}"
            obj = _json_line(line, where, "quotes", skips)
            if obj is not _SKIPPED:
                yield where, obj


def table_lacks_columns(path: Path, columns: list[str], rows: int | None, skips: SkipLog) -> bool:
    """Report a table without the required columns once, as a whole-file skip (every row
    of it would fail the same way); returns whether it was reported."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not missing:
        return False
    shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
    count = "" if rows is None else f"; its {rows:,} rows were not read"
    skips.add_file(path.name, "unusable file",
                   f"not a quote table: missing column(s) {', '.join(missing)} (it has: {shown}){count}")
    return True


def _parquet_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    import polars as pl  # a core dependency, imported lazily to keep `import dropengine` light

    try:
        frame = pl.read_parquet(path, glob=False)  # a name like q[1].parquet is no glob
    except Exception as exc:  # polars raises many exception types; translate them all here
        skips.add_file(path.name, "unreadable file", f"{type(exc).__name__}: {exc}")
        return
    if progress is not None:
        progress(path.stat().st_size)
    if table_lacks_columns(path, frame.columns, frame.height, skips):
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


def _csv_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    """CSV rows as dicts of text (an empty cell is ""), positioned by file line.

    The stdlib parser is used rather than polars so that one ragged or broken line is
    skipped and reported instead of failing the whole file; each line is parsed on its own
    (:class:`_OneLine`), so a broken line never takes the next ones with it. A header
    without the required columns is one report for the whole file. The delimiter is the one
    by which the header names the required columns (``,``, ``;``, tab or ``|``).
    """
    name = path.name
    one = _OneLine()
    reader = csv.reader(one, strict=True)
    header: list[str] | None = None
    width = 0
    with _open(path, progress) as raw, io.TextIOWrapper(raw, _text_encoding(raw), errors="replace", newline="") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("\ufeff"):  # a BOM mid-file: CSVs from a spreadsheet, concatenated
                line = line.lstrip("\ufeff")
            one.line = line
            if header is None and line.strip():
                reader = csv.reader(one, delimiter=_header_delimiter(line) or ",", strict=True)
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
                width = len(header)
                twice = sorted({c for c in header if c in _KNOWN_COLUMNS and header.count(c) > 1})
                if any(c not in header for c in REQUIRED_COLUMNS) or twice:
                    rows = sum(1 for rest in fh if rest.strip())
                    if not table_lacks_columns(path, header, rows, skips):
                        skips.add_file(name, "unusable file",
                                       f"the header (line {lineno}) names {', '.join(twice)} twice: which one "
                                       f"is meant cannot be told; its {rows:,} rows were not read")
                    return
                continue
            if len(cells) != width:
                skips.add(f"{name}:{lineno}", "bad row", f"{len(cells)} cells, the header has {width}")
                continue
            if cells[0] == header[0] and [c.strip() for c in cells] == header:
                continue  # the header again: files concatenated (cat a.csv b.csv); nothing is wrong
            yield f"{name}:{lineno}", dict(zip(header, cells, strict=True))


def _snapshot(doc: Any, skips: SkipLog, where: str) -> Snapshot | None:
    """One response (or historical ``{"timestamp", "data"}`` object) as a stamped snapshot."""
    clock: int | None = None
    events = doc
    if isinstance(doc, dict) and "data" in doc:
        events = doc["data"]
        if doc.get("timestamp") is not None:
            try:
                ts = doc["timestamp"]
                clock = coerce_ms(ts, "timestamp") if isinstance(ts, int) else iso_to_ms(ts, "timestamp")
            except FeedError as exc:
                skips.add(where, exc.reason, str(exc))
    if isinstance(events, dict):  # a single-event response (/events/{id}/odds)
        events = [events]
    quotes = quotes_from_odds_api(events, skips, where)
    if not quotes:
        return None
    if clock is None:
        clock = max(q.last_update for q in quotes)
    return Snapshot(clock, quotes)


def _theoddsapi(path: Path, skips: SkipLog, progress: Progress | None) -> Stream:
    """A ``.json`` file is one document (possibly pretty-printed); anything else is NDJSON.

    A ``.json`` file is read whole and closed before its snapshot is yielded: a directory
    of thousands of responses is merged with every stream open at once, and holding each
    file open ran into the open-file limit (256 by default on macOS)."""
    name = path.name
    if _suffix(path) == ".json":
        with _open(path, progress) as fh:
            blob = fh.read().removeprefix(_BOM)
        yield from _snapshots(iter([(name, blob)] if blob.strip() else []), name, skips)
        return
    with _open(path, progress) as fh:
        yield from _snapshots(((f"{name}:{lineno}", line) for lineno, line in _lines(fh)), name, skips)


def _snapshots(docs: Iterator[tuple[str, bytes]], name: str, skips: SkipLog) -> Stream:
    for where, text in docs:
        doc = _json_line(text, where, "theoddsapi" if where != name else None, skips)
        if doc is _SKIPPED:
            continue
        snap = _snapshot(doc, skips, where)
        if snap is not None:
            yield snap.clock, snap
