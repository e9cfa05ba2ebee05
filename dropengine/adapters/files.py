"""Readers for recordings on disk: format detection and one stream per file.

Every reader yields ``(clock_ms, item)`` pairs for :func:`dropengine.merge.merge_by_clock`
and records each skipped line, row or field in a :class:`~dropengine.skips.SkipLog` with
its position. Nothing here decides about drops; it only turns bytes into quotes.

Items are of three kinds, so that the merge happens *before* anything stateful:
- a :class:`~dropengine.quote.Quote` (quote tables);
- an :class:`Envelope` (vendor frames and SSE captures), decoded after the merge by one
  shared :class:`~dropengine.frames.FrameDecoder`, so a recording rotated across several
  files keeps its ``_diff`` bases;
- a :class:`Snapshot`: the quotes of one The Odds API response, stamped with its fetch time.

Formats: ``frames`` (vendor envelopes as NDJSON), ``sse`` (raw text captured by
``curl --no-buffer``), ``quotes`` (SPEC section 2 tables as NDJSON, CSV or Parquet),
``theoddsapi`` (v4 responses: a JSON file, a directory of them, or NDJSON snapshots).
Any file may be gzipped (``.gz``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import msgspec

from ..errors import ConfigError, FeedError
from ..frames import coerce_ms
from ..quote import Quote
from ..skips import SkipLog
from ..sse import SSEParser
from ..tables import quote_from_row
from ..theoddsapi import iso_to_ms, quotes_from_odds_api

__all__ = [
    "FORMATS",
    "Envelope",
    "Progress",
    "Snapshot",
    "detect_format",
    "expand_paths",
    "read_recording",
]

FORMATS: Final = ("auto", "frames", "sse", "quotes", "theoddsapi")
#: Files a directory of The Odds API responses is made of.
ODDS_API_SUFFIXES: Final = (".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
Progress = Callable[[int], None]

_SSE_FIELDS: Final = ("data:", "event:", "id:", "retry:", ":")
_BOM: Final = b"\xef\xbb\xbf"
_READ_ERRORS: Final = (OSError, EOFError, zlib.error)  # includes gzip.BadGzipFile
_decode = msgspec.json.decode


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
    raw: IO[bytes] = io.BufferedReader(_Counting(open(path, "rb"), progress), 1 << 20)  # noqa: SIM115
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def expand_paths(paths: list[Path], skips: SkipLog) -> list[Path]:
    """Directories become their The Odds API files (sorted); an empty one is reported."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(ODDS_API_SUFFIXES))
            if not files:
                skips.add(str(p), "empty directory", "no .json / .ndjson files in it")
            out.extend(files)
        else:
            out.append(p)
    return out


def detect_format(path: str | Path) -> str:
    """Decide a file's format from its extension, then from its first decodable lines.

    Raises :class:`ConfigError` naming the path when it cannot be decided.
    """
    p = Path(path)
    if p.is_dir():
        return "theoddsapi"
    if not p.exists():
        raise ConfigError(f"path: {str(p)!r} does not exist")
    suffix = _suffix(p)
    if suffix in (".parquet", ".csv"):
        return "quotes"
    if suffix in (".sse", ".event-stream"):
        return "sse"
    seen_text = False
    try:
        with _open(p) as fh:
            for n, raw in enumerate(fh):
                line = raw.strip()
                if n == 0 and line.startswith(_BOM):
                    line = line[len(_BOM) :].strip()
                if not line:
                    continue
                seen_text = True
                if line.startswith(tuple(f.encode() for f in _SSE_FIELDS)):
                    return "sse"
                try:
                    obj = _decode(line)
                except msgspec.DecodeError:
                    if line in (b"[", b"{") or suffix == ".json":
                        return "theoddsapi"  # a pretty-printed JSON document
                    if n >= 50:
                        break
                    continue  # one bad line does not decide for the whole file
                if isinstance(obj, list):
                    return "theoddsapi"
                if isinstance(obj, dict):
                    if isinstance(obj.get("type"), str):
                        return "frames"
                    if "side" in obj:
                        return "quotes"
                    if "data" in obj or "bookmakers" in obj:
                        return "theoddsapi"
                break
    except _READ_ERRORS as exc:
        raise ConfigError(f"path: cannot read {str(p)!r}: {exc}") from None
    if not seen_text:
        return "frames"  # an empty file: any format reads it as nothing; reported as empty
    raise ConfigError(f"path: cannot tell the format of {str(p)!r}; pass --format frames|sse|quotes|theoddsapi")


def read_recording(path: str | Path, fmt: str, skips: SkipLog, progress: Progress | None = None) -> Stream:
    """Yield ``(clock_ms, item)`` for one recording in ``fmt`` (``auto`` detects it)."""
    p = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    if p.is_dir():
        raise ConfigError(f"path: {str(p)!r} is a directory; give its files (replay() expands directories)")
    if fmt == "auto":
        fmt = detect_format(p)
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
        skips.add(path.name, "unreadable file", f"{type(exc).__name__}: {exc} (everything before it was read)")
        return
    if empty and path.stat().st_size == 0:
        skips.add(path.name, "empty file", "the file has no data")


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with 1-based numbers; a UTF-8 BOM on line 1 is dropped."""
    for lineno, line in enumerate(fh, 1):
        if lineno == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line.strip():
            yield lineno, line


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
            try:
                obj = _decode(line)
            except msgspec.DecodeError as exc:
                skips.add(where, "bad json", str(exc))
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
                try:
                    obj = _decode(ev.data)
                except msgspec.DecodeError as exc:
                    skips.add(where, "bad json", str(exc))
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


def _quotes(path: Path, skips: SkipLog, progress: Progress | None) -> Stream:
    suffix = _suffix(path)
    if suffix == ".csv":
        return _row_quotes(_csv_rows(path, skips, progress), skips)
    if suffix == ".parquet":
        return _row_quotes(_parquet_rows(path, skips, progress), skips)
    return _row_quotes(_ndjson_rows(path, skips, progress), skips)


def _ndjson_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    with _open(path, progress) as fh:
        for lineno, line in _lines(fh):
            where = f"{path.name}:{lineno}"
            try:
                yield where, _decode(line)
            except msgspec.DecodeError as exc:
                skips.add(where, "bad json", str(exc))


def _parquet_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    import polars as pl  # a core dependency, imported lazily to keep `import dropengine` light

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises many exception types; translate them all here
        skips.add(path.name, "unreadable file", f"{type(exc).__name__}: {exc}")
        return
    if progress is not None:
        progress(path.stat().st_size)
    for i, row in enumerate(frame.iter_rows(named=True), 1):
        yield f"{path.name}:row {i}", row


def _csv_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    """CSV rows as dicts of text (an empty cell is ""), positioned by file line.

    The stdlib reader is used rather than polars so that one ragged or broken line is
    skipped and reported instead of failing the whole file.
    """
    with _open(path, progress) as raw, io.TextIOWrapper(raw, "utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        except csv.Error as exc:
            skips.add(f"{path.name}:1", "bad row", f"unreadable header: {exc}")
            return
        missing = [c for c in ("event_id", "bookmaker", "side", "price", "last_update") if c not in header]
        if missing:
            skips.add(f"{path.name}:1", "bad header", f"missing column(s) {', '.join(missing)} in {header!r}")
        width = len(header)
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                skips.add(f"{path.name}:{start}", "bad row", str(exc))
                continue
            if not cells:
                continue
            if len(cells) != width:
                skips.add(f"{path.name}:{start}", "bad row", f"{len(cells)} cells, the header has {width}")
                continue
            yield f"{path.name}:{start}", dict(zip(header, cells, strict=True))


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
    """A ``.json`` file is one document (possibly pretty-printed); anything else is NDJSON."""
    name = path.name
    with _open(path, progress) as fh:
        docs: Iterator[tuple[str, bytes]]
        if _suffix(path) == ".json":
            blob = fh.read().removeprefix(_BOM)
            docs = iter([(name, blob)] if blob.strip() else [])
        else:
            docs = ((f"{name}:{lineno}", line) for lineno, line in _lines(fh))
        for where, text in docs:
            try:
                doc = _decode(text)
            except msgspec.DecodeError as exc:
                skips.add(where, "bad json", str(exc))
                continue
            snap = _snapshot(doc, skips, where)
            if snap is not None:
                yield snap.clock, snap
