"""Recordings on disk: the format registry, format detection and one stream per file.

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
``theoddsapi`` (v4 responses: a JSON file, a directory of them, or NDJSON snapshots),
``betfair`` (Betfair Exchange stream recordings: NDJSON ``mcm`` messages, decoded per file by
:class:`~dropengine.formats.betfair.BetfairDecoder`; ``inputs.betfair_price`` picks the quote).
Any file may be gzipped (``.gz``). :data:`REGISTRY` maps each name to what detects it
(the extensions that name it; every other file is told by a vote of its lines, each line's
shape judged by :func:`dropengine.formats.jsonline.line_format`) and to its reader. Bytes
come through the one opener (:mod:`dropengine.io.files`); quote tables are read by
:mod:`dropengine.io.tables`; what a line, event or document means is :mod:`dropengine.formats`'.

A file that cannot be read or used at all (not gzip, cut before its first line, a format
that cannot be told or that dropengine does not read, a table without the required
columns) is one whole-file skip (:meth:`~dropengine.core.skips.SkipLog.add_file`), never an
exception: the other files are read. Only a path that does not exist is the caller's
error (:class:`ConfigError`).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

from ..core.errors import ConfigError, FeedError
from ..core.quote import Quote
from ..core.skips import SkipLog
from ..formats.betfair import BetfairDecoder
from ..formats.frames import envelope_clock
from ..formats.jsonline import FOREIGN_SHAPES, SHAPES, SKIPPED, decode_json, decode_line, line_format
from ..formats.sse import LINE_PREFIXES, SSEParser
from ..formats.theoddsapi import snapshot_of
from .files import (
    PARQUET_MAGIC,
    READ_ERRORS,
    Progress,
    expand_paths,
    guarded,
    lines,
    open_bytes,
    seekable,
    spool,
    suffix_of,
)
from .inputs import DEFAULT_INPUTS, InputOptions
from .tables import looks_like_csv_header, read_quote_table, rows_carry_mapping, table_lacks_columns

__all__ = [
    "FORMATS",
    "REGISTRY",
    "Envelope",
    "Progress",
    "RecordingFormat",
    "Snapshot",
    "betfair_messages",
    "detect_format",
    "expand_paths",
    "line_format",
    "open_recordings",
    "read_recording",
    "table_lacks_columns",
]

#: Format detection counts the votes of at most this many lines that vote ...
DETECT_LINES: Final = 50
#: ... and stops as soon as one format has this many clear votes, or after this many lines.
DETECT_DECISIVE: Final = 3
DETECT_MAX_LINES: Final = 1000


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
#: ``reader(path, skips, progress, inputs)``: every reader sees the user's input choices
Reader = Callable[[Path, SkipLog, "Progress | None", InputOptions], Stream]


def _frames(path: Path, skips: SkipLog, progress: Progress | None, inputs: InputOptions) -> Stream:
    name = path.name
    clock = 0
    with open_bytes(path, progress) as fh:
        for lineno, line in lines(fh):
            where = f"{name}:{lineno}"
            obj = decode_line(line, where, "frames", skips)
            if obj is SKIPPED:
                continue
            clock = envelope_clock(obj, clock)
            yield clock, Envelope(where, obj)


def _sse(path: Path, skips: SkipLog, progress: Progress | None, inputs: InputOptions) -> Stream:
    name = path.name
    parser = SSEParser()
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    clock = 0
    with open_bytes(path, progress) as fh:
        while True:
            chunk = fh.read(1 << 16)
            for ev in parser.feed(utf8.decode(chunk, final=not chunk)):
                where = f"{name}:{ev.line}"
                obj = decode_line(ev.data, where, "frames", skips)
                if obj is SKIPPED:
                    continue
                clock = envelope_clock(obj, clock)
                yield clock, Envelope(where, obj)
            if not chunk:
                break
    if parser.close():
        skips.add(f"{name}:EOF", "partial event", "the capture ends inside an event; it was discarded")


def _theoddsapi(path: Path, skips: SkipLog, progress: Progress | None, inputs: InputOptions) -> Stream:
    """A ``.json`` file is one document (possibly pretty-printed); anything else is NDJSON.

    A ``.json`` file is read whole and closed before its snapshot is yielded: a directory
    of thousands of responses is merged with every stream open at once, and holding each
    file open ran into the open-file limit (256 by default on macOS)."""
    name = path.name
    if suffix_of(path) == ".json":
        with open_bytes(path, progress) as fh:
            blob = fh.read().removeprefix(codecs.BOM_UTF8)
        yield from _snapshots(iter([(name, blob)] if blob.strip() else []), name, skips)
        return
    with open_bytes(path, progress) as fh:
        yield from _snapshots(((f"{name}:{lineno}", line) for lineno, line in lines(fh)), name, skips)


def _snapshots(docs: Iterator[tuple[str, bytes]], name: str, skips: SkipLog) -> Stream:
    for where, text in docs:
        doc = decode_line(text, where, "theoddsapi" if where != name else None, skips)
        if doc is SKIPPED:
            continue
        snap = snapshot_of(doc, skips, where)
        if snap is not None:
            yield snap[0], Snapshot(*snap)


def _quotes(path: Path, skips: SkipLog, progress: Progress | None, inputs: InputOptions) -> Stream:
    return read_quote_table(path, skips, progress, inputs=inputs)


def betfair_messages(path: Path, skips: SkipLog, progress: Progress | None = None) -> Iterator[tuple[str, Any]]:
    """``(position, message)`` for each decodable line of a Betfair stream recording (the rest
    are skips): what :class:`~dropengine.formats.betfair.BetfairDecoder` is fed, here and by
    :mod:`dropengine.io.starting`."""
    name = path.name
    with open_bytes(path, progress) as fh:
        for lineno, line in lines(fh):
            where = f"{name}:{lineno}"
            obj = _non_finite_tokens(line) if b"NaN" in line or b"Infinity" in line else SKIPPED
            if obj is SKIPPED:
                obj = decode_line(line, where, "betfair", skips)
            if obj is not SKIPPED:
                yield where, obj


def _non_finite_tokens(line: bytes) -> Any:
    """A Betfair line written by Python's ``json.dumps`` with a float NaN or Infinity (a bare
    ``NaN`` token, which JSON has not): read with those tokens as floats, so the decoder skips
    that one field, with its place, and not the whole message (a final definition with every
    runner's bsp).
    :data:`SKIPPED` when it is not such a line either (the usual decoder then reports it)."""
    try:
        obj = json.loads(line)  # NaN, Infinity: non-finite floats, which the decoder skips with their place
    except (ValueError, RecursionError):
        return SKIPPED
    return obj if line_format(obj) == ("betfair", True) else SKIPPED


def _betfair(path: Path, skips: SkipLog, progress: Progress | None, inputs: InputOptions) -> Stream:
    """Betfair Exchange stream messages (NDJSON ``mcm``), one decoder (market state) per file;
    each quote is stamped with its message's publish time."""
    decoder = BetfairDecoder(inputs.betfair_price)
    for where, obj in betfair_messages(path, skips, progress):
        for quote in decoder.feed(obj, where, skips):
            yield quote.last_update, quote
    for market_id in decoder.market_ids():  # prices kept for a definition that never came
        view = decoder.market(market_id)
        if view is not None and view.market_type is None and view.runners:
            skips.add(f"{path.name} {market_id}", "no market definition",
                      f"market {market_id}: {len(view.runners)} runner(s) with prices but no marketDefinition "
                      "(with its marketType) in the file, so nothing of it is quoted (a recording cut before it, "
                      "or a subscription without definitions)")
    if decoder.price == "back" and not decoder.ladders and decoder.market_ids():
        skips.add(path.name, "no back ladder", "--betfair-price back: the file has no atb/batb/bdatb ladder (a BASIC "
                                               "file carries last traded prices only), so no back price; use "
                                               "--betfair-price ltp")


class RecordingFormat(NamedTuple):
    """One recording format: its name, the extensions that name it (after any compression
    extension; a file with another one is told by its lines), and its reader."""

    name: str
    suffixes: tuple[str, ...]
    read: Reader


#: The formats dropengine reads, by name (``--format``): detection and reading both go through it.
REGISTRY: Final[dict[str, RecordingFormat]] = {
    f.name: f for f in (
        RecordingFormat("frames", (), _frames),
        RecordingFormat("sse", (".sse", ".event-stream"), _sse),
        RecordingFormat("quotes", (".parquet", ".csv"), _quotes),
        RecordingFormat("theoddsapi", (), _theoddsapi),
        RecordingFormat("betfair", (), _betfair),
    )
}
FORMATS: Final = ("auto", *REGISTRY)
_BY_SUFFIX: Final = {s: f.name for f in REGISTRY.values() for s in f.suffixes}


def _elect(votes: list[str]) -> str | None:
    """The format with the most votes; a tie goes to the one that voted first."""
    if not votes:
        return None
    counts: dict[str, int] = {}
    for v in votes:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts.values())
    return next(v for v in votes if counts[v] == best)


def detect_format(path: str | Path, *, fallback: str | None = None) -> str:
    """Decide a file's format from its extension, else by a vote of its first lines.

    Each decodable line votes for the format it looks like (:func:`line_format`); lines
    that say nothing (``{}``, ``null``, bad JSON) do not vote. Reading stops after
    :data:`DETECT_DECISIVE` clear votes that all agree, after :data:`DETECT_LINES` votes, or
    after :data:`DETECT_MAX_LINES` non-blank lines. The format with most clear votes wins
    (a tie: the one seen first); weak votes (``[]``) count only when there is no clear
    one. A line that disagrees with the decision is reported by the reader as a bad line.

    ``fallback`` is the format of a file whose lines do not tell (``quotes`` when the user
    maps a table's columns: its header names other columns than SPEC 2's).

    Raises :class:`ConfigError` when the path does not exist, and :class:`FeedError`
    (reason ``unreadable file`` or ``unusable file``, the message says why) when the file
    cannot be read, its format cannot be told (and there is no ``fallback``), or it is a
    format dropengine does not read.
    """
    p = Path(path)
    if p.is_dir():
        return "theoddsapi"
    if not p.exists():
        raise ConfigError(f"path: {str(p)!r} does not exist")
    try:
        p = spool(p)  # a pipe is read once: detection and the reader share one copy
    except OSError as exc:
        raise FeedError(f"cannot read it: {type(exc).__name__}: {exc}", "unreadable file") from None
    suffix = suffix_of(p)
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    try:
        with open_bytes(p) as fh:
            if fh.read(4) == PARQUET_MAGIC:
                return "quotes"  # a Parquet table without its extension (a pipe)
    except READ_ERRORS:
        pass  # reported below, when the lines are read
    clear: list[str] = []
    weak: list[str] = []
    first_line: bytes | None = None
    sse_prefixes = tuple(f.encode() for f in LINE_PREFIXES)
    try:
        with open_bytes(p) as fh:
            n = 0
            for _, raw in lines(fh):
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
                        if (line in (b"[", b"{") or suffix == ".json") and not clear and not weak:
                            return "theoddsapi"  # a pretty-printed JSON document (not a bad line of NDJSON)
                        if n == 1 and looks_like_csv_header(line):
                            return "quotes"  # a CSV table without its extension (a pipe)
                        fmt, is_clear = None, False
                    if fmt is not None:
                        (clear if is_clear else weak).append(fmt)
                if len(clear) >= DETECT_DECISIVE and clear.count(clear[0]) == len(clear):
                    break  # unanimous so far; with any disagreement, read on and count
                if len(clear) + len(weak) >= DETECT_LINES or n >= DETECT_MAX_LINES:
                    break
    except READ_ERRORS as exc:
        if not clear and not weak:
            raise FeedError(f"cannot read it: {type(exc).__name__}: {exc}", "unreadable file") from None
        # decide from what could be read; the reader reads it again and reports the cut
    fmt = _elect(clear) or _elect(weak)
    if fmt in FOREIGN_SHAPES and fmt not in REGISTRY:
        raise FeedError(f"looks like {SHAPES[fmt]}, which dropengine does not read", "unusable file")
    if fmt is not None:
        return fmt
    if first_line is None:
        return "frames"  # an empty file: any format reads it as nothing; reported as empty
    if fallback is not None:
        return fallback
    shown = first_line.decode("utf-8", "replace")
    raise FeedError(
        f"cannot tell the format (no line of the first {n} looks like odds; the first is {shown!r}); "
        f"pass --format {'|'.join(REGISTRY)}",
        "unusable file",
    )


def open_recordings(
    paths: list[Path],
    fmt: str,
    skips: SkipLog,
    progress: Progress | None = None,
    *,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> tuple[dict[str, str], list[Stream]]:
    """Every file of ``paths`` (directories expanded) as a stream, with its format;
    ``inputs`` (odds format, Betfair price, mapping) goes to every reader.

    Formats are detected first, before anything is read. A file that cannot be read or
    told is one whole-file skip (its format shows as ``skipped``) and the others go on;
    a path that does not exist raises :class:`ConfigError`.
    """
    formats: dict[str, str] = {}
    streams: list[Stream] = []
    for given in expand_paths(paths, skips):
        resolved = _resolve(given, fmt, skips, inputs)
        if resolved is None:
            formats[str(given)] = "skipped"
            continue
        p, f = resolved
        formats[str(given)] = f
        streams.append(read_recording(p, f, skips, progress, inputs=inputs))
    return formats, streams


#: Formats whose lines a mapped table's NDJSON rows can look like (a ``type`` or ``data`` column):
#: with a column mapping, ``auto`` reads such a file as a quote table (Betfair and SSE lines cannot be rows)
_ROW_LIKE: Final = frozenset({"frames", "theoddsapi"})


def _resolve(path: Path, fmt: str, skips: SkipLog, inputs: InputOptions = DEFAULT_INPUTS) -> tuple[Path, str] | None:
    """A file ready to read (a pipe copied) and its format (``auto`` detected), or None when it
    cannot be read or told: then it is a whole-file skip in ``skips``. With a column mapping the
    user says the input is a table: a file whose lines do not tell, or that look like vendor
    frames or The Odds API responses (NDJSON rows with a ``type`` field, say) while its first
    row has every column the mapping names, is a quote table; a real recording given beside a
    mapped table stays what it is."""
    p = seekable(path, skips)
    if p is None:
        return None
    if fmt == "auto":
        mapped = inputs.mapping is not None
        try:
            fmt = detect_format(p, fallback="quotes" if mapped else None)
            if mapped and fmt in _ROW_LIKE and rows_carry_mapping(p, inputs):
                fmt = "quotes"  # its rows have the mapping's columns: a table (else a recording beside one)
        except FeedError as exc:
            skips.add_file(p.name, exc.reason, str(exc))
            return None
    return p, fmt


def read_recording(
    path: str | Path,
    fmt: str,
    skips: SkipLog,
    progress: Progress | None = None,
    *,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> Stream:
    """Yield ``(clock_ms, item)`` for one recording in ``fmt`` (``auto`` detects it);
    ``inputs`` carries the user's choices about the data (:class:`InputOptions`).

    A file that cannot be read or told is a whole-file skip in ``skips`` (nothing yielded).
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    if p.is_dir():
        raise ConfigError(f"path: {str(p)!r} is a directory; give its files (replay() expands directories)")
    resolved = _resolve(p, fmt, skips, inputs)
    if resolved is None:
        return iter(())
    p, fmt = resolved
    return guarded(p, REGISTRY[fmt].read(p, skips, progress, inputs), skips)
