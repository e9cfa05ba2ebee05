"""Readers for recordings on disk: format detection and one quote stream per file.

Every reader yields ``(clock_ms, Quote)`` pairs for :func:`dropengine.merge.merge_by_clock`
and records each skipped line, row or field in a :class:`~dropengine.skips.SkipLog` with
``file:line``. Nothing here decides about drops; it only turns bytes into quotes.

Formats:
- ``frames``: vendor envelopes, one JSON object per line (``.ndjson``/``.jsonl``, ``.gz``);
- ``sse``: the raw text ``curl --no-buffer`` captured from the vendor's SSE stream;
- ``quotes``: SPEC section 2 tables as ``.ndjson``, ``.csv`` or ``.parquet``;
- ``theoddsapi``: The Odds API v4 responses: one JSON file, a directory of them, or
  NDJSON of historical-style snapshots ``{"timestamp", "data"}``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from ..errors import ConfigError, FeedError
from ..frames import FrameDecoder
from ..quote import Quote
from ..skips import SkipLog
from ..sse import SSEParser
from ..tables import quote_from_row
from ..theoddsapi import iso_to_ms, quotes_from_odds_api

__all__ = ["FORMATS", "Progress", "detect_format", "read_recording"]

FORMATS: Final = ("auto", "frames", "sse", "quotes", "theoddsapi")
Progress = Callable[[int], None]
Stream = Iterator[tuple[int, Quote]]

_SSE_FIELDS: Final = ("data:", "event:", "id:", "retry:", ":")
_decode = msgspec.json.decode


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
    if path.name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _stem_suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def detect_format(path: str | Path) -> str:
    """Decide a file's format from its extension, then its first line.

    Raises :class:`ConfigError` naming the path when it cannot be decided.
    """
    p = Path(path)
    if p.is_dir():
        return "theoddsapi"
    if not p.exists():
        raise ConfigError(f"path: {str(p)!r} does not exist")
    suffix = _stem_suffix(p)
    if suffix in (".parquet", ".csv"):
        return "quotes"
    if suffix in (".sse", ".event-stream"):
        return "sse"
    try:
        with _open(p) as fh:
            for raw in fh:
                line = raw.strip()
                if not line:
                    continue
                text = line.decode("utf-8", "replace")
                if text.startswith(_SSE_FIELDS):
                    return "sse"
                try:
                    obj = _decode(line)
                except msgspec.DecodeError:
                    # A pretty-printed JSON document: its first line alone is not JSON.
                    if text in ("[", "{") or suffix == ".json":
                        return "theoddsapi"
                    break
                if isinstance(obj, list):
                    return "theoddsapi"
                if isinstance(obj, dict):
                    if isinstance(obj.get("type"), str):
                        return "frames"
                    if "side" in obj:
                        return "quotes"
                    if isinstance(obj.get("data"), list):
                        return "theoddsapi"
                break
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"path: cannot read {str(p)!r}: {exc}") from None
    raise ConfigError(
        f"path: cannot tell the format of {str(p)!r}; pass --format frames|sse|quotes|theoddsapi"
    )


def read_recording(
    path: str | Path,
    fmt: str,
    skips: SkipLog,
    progress: Progress | None = None,
    decoder: FrameDecoder | None = None,
) -> Stream:
    """Yield ``(clock_ms, quote)`` for one recording in ``fmt`` (``auto`` detects it)."""
    p = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(p)
    if fmt == "frames":
        return _frames(p, skips, progress, decoder or FrameDecoder())
    if fmt == "sse":
        return _sse(p, skips, progress, decoder or FrameDecoder())
    if fmt == "quotes":
        return _quotes(p, skips, progress)
    return _theoddsapi(p, skips, progress)


def _frames(path: Path, skips: SkipLog, progress: Progress | None, decoder: FrameDecoder) -> Stream:
    name = path.name
    with _open(path, progress) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{name}:{lineno}"
            try:
                envelope = _decode(line)
            except msgspec.DecodeError as exc:
                skips.add(where, "bad json", str(exc))
                continue
            for q in decoder.feed(envelope, skips, where):
                yield q.last_update, q


def _sse(path: Path, skips: SkipLog, progress: Progress | None, decoder: FrameDecoder) -> Stream:
    name = path.name
    parser = SSEParser()
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    with _open(path, progress) as fh:
        while True:
            chunk = fh.read(1 << 16)
            text = utf8.decode(chunk, final=not chunk)
            for ev in parser.feed(text):
                where = f"{name}:{ev.line}"
                try:
                    envelope = _decode(ev.data)
                except msgspec.DecodeError as exc:
                    skips.add(where, "bad json", str(exc))
                    continue
                for q in decoder.feed(envelope, skips, where):
                    yield q.last_update, q
            if not chunk:
                break
    if parser.close():
        skips.add(f"{name}:end", "partial event", "the capture ends inside an event; it was discarded")


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
    suffix = _stem_suffix(path)
    if suffix in (".csv", ".parquet"):
        return _row_quotes(_table_rows(path, suffix, skips, progress), skips)
    return _row_quotes(_ndjson_rows(path, skips, progress), skips)


def _ndjson_rows(path: Path, skips: SkipLog, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    with _open(path, progress) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                yield where, _decode(line)
            except msgspec.DecodeError as exc:
                skips.add(where, "bad json", str(exc))


def _table_rows(
    path: Path, suffix: str, skips: SkipLog, progress: Progress | None
) -> Iterator[tuple[str, Any]]:
    if suffix == ".csv":
        yield from _csv_rows(path, skips, progress)
        return
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
    with _open(path, progress) as raw, io.TextIOWrapper(raw, "utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            skips.add(f"{path.name}:1", "bad row", f"unreadable header: {exc}")
            return
        header = [h.strip() for h in header]
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


def _snapshot_stream(events: Any, clock: int | None, skips: SkipLog, where: str) -> Stream:
    quotes = quotes_from_odds_api(events, skips, where)
    if clock is None:
        clock = max((q.last_update for q in quotes), default=0)
    for q in quotes:
        yield clock, q


def _theoddsapi(path: Path, skips: SkipLog, progress: Progress | None) -> Stream:
    if path.is_dir():
        suffixes = (".json", ".json.gz", ".ndjson", ".ndjson.gz")
        files = sorted(f for f in path.iterdir() if f.name.endswith(suffixes))
        for f in files:
            yield from _theoddsapi(f, skips, progress)
        return
    with _open(path, progress) as fh:
        blob = fh.read()
    try:
        doc = _decode(blob)
        docs: list[tuple[str, Any]] = [(path.name, doc)]
    except msgspec.DecodeError:
        docs = []  # NDJSON of snapshots: decode line by line
        for lineno, line in enumerate(blob.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                docs.append((where, _decode(line)))
            except msgspec.DecodeError as exc:
                skips.add(where, "bad json", str(exc))
    for where, doc in docs:
        if isinstance(doc, dict) and "data" in doc:
            clock = None
            if doc.get("timestamp") is not None:
                try:
                    clock = iso_to_ms(doc["timestamp"], "timestamp")
                except FeedError as exc:
                    skips.add(where, exc.reason, str(exc))
            yield from _snapshot_stream(doc["data"], clock, skips, where)
        else:
            yield from _snapshot_stream(doc, None, skips, where)
