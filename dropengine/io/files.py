"""Opening recordings: the one opener every reader (and format detection) reads bytes through.

A file is decompressed by what its first bytes say (gzip, bzip2, xz), not its extension; a
pipe, FIFO or ``/dev/stdin`` is copied once to a temporary file so detection and the reader
can both read it; a read error mid-file becomes a whole-file skip that keeps what was read.
Line-based readers take their lines from :func:`lines` (LF, CRLF or a lone CR; BOM dropped).
"""

from __future__ import annotations

import atexit
import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from ..core.errors import ConfigError
from ..core.skips import SkipLog

__all__ = [
    "ODDS_API_SUFFIXES", "PARQUET_MAGIC", "READ_ERRORS", "Progress", "close_writer", "expand_paths", "guarded",
    "lines", "open_bytes", "open_writer", "part_file", "replace_whole", "seekable", "spool", "suffix_of",
]

Progress = Callable[[int], None]
#: Files a directory of The Odds API responses is made of.
ODDS_API_SUFFIXES: Final = (".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_BOM: Final = b"\xef\xbb\xbf"
_CR: Final = ord("\r")
PARQUET_MAGIC: Final = b"PAR1"
#: What reading a damaged or unreadable file raises (includes gzip.BadGzipFile).
READ_ERRORS: Final = (OSError, EOFError, zlib.error, lzma.LZMAError)
#: Compressed archives recognised only to say how to read them: (magic, what, command).
_ARCHIVES: Final = ((b"\x28\xb5\x2f\xfd", "zstd file", "zstd -dc"), (b"PK\x03\x04", "zip archive", "unzip -p"))
_T = TypeVar("_T")


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


def open_bytes(path: Path, progress: Progress | None = None) -> IO[bytes]:
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


def open_writer(out: Path, gz: bool) -> IO[bytes]:
    """``out`` opened to write bytes, through gzip when ``gz``: with no file name and mtime 0
    in the gzip header, so the bytes depend on the content only (the same input, the same
    file). :class:`ConfigError` naming ``out`` when it cannot be written. Close with
    :func:`close_writer`."""
    try:
        raw = open(out, "wb")  # noqa: SIM115 - closed by close_writer (through the gzip wrapper)
    except OSError as exc:
        raise ConfigError(f"out: cannot write {str(out)!r}: {exc.strerror or exc}") from None
    if not gz:
        return raw
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # type: ignore[return-value]


def close_writer(fh: IO[bytes]) -> None:
    """Close what :func:`open_writer` opened: the gzip stream (its trailer), then the file."""
    inner = getattr(fh, "fileobj", None)
    fh.close()
    if inner is not None:
        inner.close()


def suffix_of(path: Path) -> str:
    """The extension that names the format, after any compression extension."""
    name = path.name.lower()
    for ext in (".gz", ".bz2", ".xz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return Path(name).suffix


def expand_paths(paths: list[Path], skips: SkipLog) -> list[Path]:
    """Directories become their The Odds API files and their Parquet quote tables (sorted by
    name; a directory of Parquet files only is a directory of shards, read the same way); an
    empty one is reported. Other files in a directory (a README, a derived CSV) are not read:
    give them as paths."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            wanted = (*ODDS_API_SUFFIXES, ".parquet")
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                           and f.name.lower().endswith(wanted))
            if not files:
                subdirs = sorted(f.name for f in p.iterdir() if f.is_dir())
                shown = ", ".join(subdirs[:5]) + (", ..." if len(subdirs) > 5 else "")
                hint = (f" (its subdirectories are not read: {shown}; give them as paths)" if subdirs else "")
                skips.add(str(p), "empty directory", f"no .json / .ndjson files in it{hint}")
            out.extend(files)
        else:
            out.append(p)
    return out


def seekable(path: Path, skips: SkipLog) -> Path | None:
    """``path``, or for a pipe, FIFO or ``/dev/stdin`` (``zcat x.gz | replay /dev/stdin``,
    ``replay <(zcat x.gz)``) a copy of it in a temporary file of the same name.

    Such input can be read once only, but detection reads the first lines before the reader
    reads it all (the reader found it empty; a FIFO waited for ever for a second writer).
    The copy is removed at exit. ``None`` (a whole-file skip) when it cannot be read.
    """
    try:
        return spool(path)
    except OSError as exc:
        skips.add_file(path.name, "unreadable file", f"cannot read it: {type(exc).__name__}: {exc}")
        return None


#: Pipes already copied, by the path given: every later read (detection first, then the
#: reader, or a server's start-up check, then its source) gets the same copy.
_SPOOLED: dict[str, Path] = {}


def spool(path: Path) -> Path:
    """``path`` itself when it is a regular file (or missing), else its copy (see
    :func:`seekable`); raises :class:`OSError` when it cannot be read."""
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


def guarded(path: Path, stream: Iterator[_T], skips: SkipLog) -> Iterator[_T]:
    """Turn a read error mid-file (truncated .gz, not gzip at all, I/O) into a reported skip."""
    empty = True
    # (a reader that skipped the whole file already said why, e.g. _read_parquet's "unreadable
    # file" for a zero-byte .parquet, as the batch loads say: not a second skip for it, B25-1)
    reported = len(skips.files)
    try:
        for pair in stream:
            empty = False
            yield pair
    except READ_ERRORS as exc:
        skips.add_file(path.name, "unreadable file", f"{type(exc).__name__}: {exc} (everything before it was read)")
        return
    if empty and path.stat().st_size == 0 and len(skips.files) == reported:
        skips.add_file(path.name, "empty file", "the file has no data")


def lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
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


def part_file(out: Path) -> Path | None:
    """The file an output is written to and renamed over ``out``'s target from once complete, so that
    ``out`` holds the whole file or what it held before (:func:`replace_whole`), or ``None``: written in
    place. Named from the name given (``.PID.part.NAME``: its extensions are the output's) in the
    target's directory (a symbolic link stays one: its target is replaced). One rule for every output
    written whole: ``simulate --out`` and ``replay --output`` (CSV, Parquet).

    In place: a FIFO, a device or a socket (``os.stat`` follows links, also ``/proc/self/fd``'s: a link to
    ``/dev/stdout`` into a pipe is the pipe), a file in a directory this process may not write, and a part
    name past the directory's name limit even when shortened to ``.PID.part`` + the name's last two
    extensions (``out``'s own name may be up to the limit)."""
    try:
        if not stat.S_ISREG(os.stat(out).st_mode):
            return None
    except FileNotFoundError:
        pass  # nothing yet (or a dangling link: its target is made)
    except OSError:  # (not a directory on the way, a loop of links: the writer names it)
        return None
    directory = Path(os.path.realpath(out)).parent
    name = f".{os.getpid()}.part.{out.name}"
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
        if len(os.fsencode(name)) > limit:  # (a long name: its last two extensions, which say the format)
            name = f".{os.getpid()}.part" + "".join(Path(out.name).suffixes[-2:])
        # (one fallback for both: the part file cannot be made there, the file itself may be)
        if len(os.fsencode(name)) > limit or not os.access(directory, os.W_OK):
            return None
    except OSError:  # (no such directory: the writer says so)
        return None
    return directory / name


def replace_whole(part: Path, out: Path) -> None:
    """Put the complete ``part`` (:func:`part_file`) in the place of ``out``'s target, with a previous
    file's mode (its permissions are the output's, not the umask's)."""
    target = Path(os.path.realpath(out))
    if target.exists():
        shutil.copymode(target, part)
    os.replace(part, target)
