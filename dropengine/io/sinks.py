"""Writers for alerts: NDJSON (streamed), CSV and Parquet (collected, written on close).

Every alert type goes through the same writer. NDJSON lines are each alert's wire object
(its ``type`` says which). A table has the columns of :func:`~dropengine.core.alerts.alert_fields`
for the types asked for: today's columns exactly for price drops alone, else a ``type`` column
and every type's own fields (empty where a type has none; a steam's ``books`` and a line
move's ``key_numbers`` as JSON text), so one table holds a mixed run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import msgspec

from ..core.alerts import NUMBER_FIELDS, TIME_FIELDS, Alert, alert_fields, alert_row
from ..core.errors import ConfigError

__all__ = ["OUTPUT_SUFFIXES", "AlertWriter"]

OUTPUT_SUFFIXES: Final = (".ndjson", ".jsonl", ".csv", ".parquet")
_ENC = msgspec.json.Encoder()


class AlertWriter:
    """Write alerts to stdout (NDJSON) or to a file chosen by extension. ``types`` are the
    alert types the run may produce (they choose a table's columns; default: price drops).
    ``count`` is the number of alerts written, ``counts`` the same by type."""

    def __init__(self, path: Path | None = None, stream: IO[bytes] | None = None,
                 types: Iterable[str] = ("odds_drop",)) -> None:
        self.path = path
        self.count = 0
        self.counts: dict[str, int] = {}
        self.columns = alert_fields(frozenset(types))
        self._rows: list[dict[str, Any]] = []
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
                path.touch()  # fail now, not after the whole replay, if it cannot be written
        except OSError as exc:
            raise ConfigError(f"output: cannot write {str(path)!r}: {exc.strerror or exc}") from None

    def write(self, alerts: Sequence[Alert]) -> None:
        self.count += len(alerts)
        counts = self.counts
        for a in alerts:
            counts[a.type] = counts.get(a.type, 0) + 1
        if self._fh is not None:
            self._fh.write(b"".join(_ENC.encode(a) + b"\n" for a in alerts))
        else:
            columns = self.columns
            self._rows.extend(alert_row(a, columns) for a in alerts)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            if self._own:
                self._fh.close()
            self._fh = None
            return
        if self.path is None or self.kind not in ("csv", "parquet"):
            return
        import polars as pl

        names = self.columns
        columns: dict[str, Any] = {c: [r.get(c) for r in self._rows] for c in names}
        schema: dict[str, Any] = {c: pl.String for c in names}
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
            else:
                schema[c] = pl.Float64  # a typed column holds one type
        frame = pl.DataFrame(columns, schema=schema)
        try:
            if self.kind == "csv":
                frame.write_csv(self.path)
            else:
                frame.write_parquet(self.path)
        except OSError as exc:
            raise ConfigError(f"output: cannot write {str(self.path)!r}: {exc}") from None

    def __enter__(self) -> AlertWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
