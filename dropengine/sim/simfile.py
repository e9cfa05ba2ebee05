"""Write a simulated recording (:mod:`dropengine.sim.simulate`) to disk in a replayable format.

The format follows the file name (or ``fmt``):

| output | format | what is written |
|---|---|---|
| ``.ndjson``, ``.jsonl`` (``.gz`` too) | ``frames`` | vendor envelopes, one JSON object per line (SPEC section 5) |
| ``.sse`` (``.gz`` too) | ``sse`` | the same envelopes as the ``data:`` lines ``curl --no-buffer`` captures |
| ``.csv`` (``.gz`` too), ``.parquet`` | ``quotes`` | SPEC section 2 quote rows, one per price field |

``fmt="quotes"`` with an ``.ndjson`` name writes quote rows as NDJSON instead of frames.

The same configuration gives byte-identical files: JSON is encoded with a fixed key order,
gzip headers carry no file name and ``mtime=0``, CSV cells are written as the library
formats them, and Parquet is written by polars in one pass with fixed settings (its footer
names the polars version, so files are identical for one installation, not across polars
upgrades).

Parquet text columns (ids, books, sides, teams ...) are dictionary-encoded (polars
Categorical), so ``replay --engine batch`` reads the keys as categories, with no string made
per row (:func:`dropengine.io.tables.write_parquet_rows`).

Memory: frames, SSE and CSV stream, whatever the length of the recording (about 40 MB for
any size). Parquet rows are converted to columnar chunks of 50,000 rows as they come and the
table is written at the end, so it is held in memory whole: about 70 bytes per quote in
columnar form, and a peak of about 0.3 KB per quote in all, polars included (343,000 quotes
peak at 133 MB; 241 MB with plain text columns). A few million quotes are fine; for larger
recordings write CSV or frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from ..core.errors import ConfigError
from ..formats.sse import encode_event
from ..formats.vendor import price_fields_of, row_kind
from ..io.files import close_writer, open_writer
from ..io.tables import write_csv_rows, write_ndjson_rows, write_parquet_rows
from .simulate import SimConfig, quote_rows_from_envelopes, simulate_envelopes

__all__ = ["SIM_FORMATS", "sim_format", "write_simulation"]

SIM_FORMATS: Final = ("frames", "sse", "quotes")
_ENC = msgspec.json.Encoder()


def _name(path: Path) -> tuple[str, bool]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return Path(name[:-3]).suffix, True
    return Path(name).suffix, False


def sim_format(out: Path, fmt: str | None = None) -> str:
    """The format :func:`write_simulation` uses for ``out``; raises :class:`ConfigError` naming the problem."""
    suffix, gz = _name(out)
    if fmt is not None and fmt not in SIM_FORMATS:
        raise ConfigError(f"format: {fmt!r} must be one of {', '.join(SIM_FORMATS)}")
    allowed = {
        ".ndjson": ("frames", "quotes"), ".jsonl": ("frames", "quotes"), ".sse": ("sse",),
        ".csv": ("quotes",), ".parquet": ("quotes",),
    }
    if suffix not in allowed or (gz and suffix == ".parquet"):
        raise ConfigError(
            f"out: {str(out)!r} must end in .ndjson, .jsonl, .sse or .csv (optionally .gz), or .parquet"
        )
    chosen = fmt if fmt is not None else allowed[suffix][0]
    if chosen not in allowed[suffix]:
        raise ConfigError(f"format: {chosen!r} cannot be written to a {suffix} file")
    return chosen


class _Counter:
    """Counts envelopes and vendor rows as they stream past."""

    def __init__(self) -> None:
        self.envelopes = 0
        self.rows = 0
        self.quotes = 0

    def envelopes_of(self, cfg: SimConfig) -> Iterator[dict[str, Any]]:
        for env in simulate_envelopes(cfg):
            self.envelopes += 1
            data = env.get("data")
            if isinstance(data, list):
                self.rows += len(data)
                self.quotes += sum(_quotes_in_row(r) for r in data)
            yield env

    def result(self) -> dict[str, int]:
        return {"envelopes": self.envelopes, "rows": self.rows, "quotes": self.quotes}


def _quotes_in_row(row: Mapping[str, Any]) -> int:
    """How many quotes a simulated (full, valid) vendor row decodes to."""
    return len(price_fields_of(row, row_kind(row) or "game"))


def write_simulation(cfg: SimConfig, out: Path, fmt: str | None = None) -> dict[str, int]:
    """Simulate ``cfg`` into ``out``; returns counts ``envelopes``, ``rows`` (vendor rows), ``quotes``.

    ``fmt`` is ``frames``, ``sse`` or ``quotes``; by default the extension decides (see the
    module docstring). Raises :class:`ConfigError` for an unsupported name or an unwritable
    path (nothing is simulated before the file is opened).
    """
    out = Path(out)
    kind = sim_format(out, fmt)
    suffix, gz = _name(out)
    counter = _Counter()
    envelopes = counter.envelopes_of(cfg)
    if suffix == ".parquet":
        _check_writable(out)
        write_parquet_rows(out, quote_rows_from_envelopes(envelopes), line_only=bool(cfg.line_only))
        return counter.result()
    fh = open_writer(out, gz)
    try:
        if kind == "frames":
            _write_lines(fh, (_ENC.encode(env) + b"\n" for env in envelopes))
        elif kind == "sse":
            _write_lines(fh, (encode_event(_ENC.encode(env)) for env in envelopes))
        elif suffix == ".csv":
            # line-only books' observations need the optional line_only column (SPEC 10); a
            # simulation without them writes the columns it always wrote
            write_csv_rows(fh, quote_rows_from_envelopes(envelopes), line_only=bool(cfg.line_only))
        else:
            write_ndjson_rows(fh, quote_rows_from_envelopes(envelopes))
    finally:
        close_writer(fh)
    return counter.result()


def _write_lines(fh: IO[bytes], lines: Iterator[bytes]) -> None:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == 4096:
            fh.write(b"".join(batch))
            batch.clear()
    fh.write(b"".join(batch))


def _check_writable(out: Path) -> None:
    try:
        with open(out, "wb"):
            pass
    except OSError as exc:
        raise ConfigError(f"out: cannot write {str(out)!r}: {exc.strerror or exc}") from None
