"""Writers for alerts: NDJSON (streamed), CSV and Parquet (collected, written on close)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import msgspec

from ..core.alerts import ALERT_FIELDS, Drop
from ..core.errors import ConfigError

__all__ = ["OUTPUT_SUFFIXES", "AlertWriter"]

OUTPUT_SUFFIXES: Final = (".ndjson", ".jsonl", ".csv", ".parquet")
_NUMERIC: Final = ("prev", "new", "delta", "line")
_INTS: Final = ("last_update", "timestamp", "elapsed_ms")
_ENC = msgspec.json.Encoder()


class AlertWriter:
    """Write alerts to stdout (NDJSON) or to a file chosen by extension."""

    def __init__(self, path: Path | None = None, stream: IO[bytes] | None = None) -> None:
        self.path = path
        self.count = 0
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

    def write(self, drops: list[Drop]) -> None:
        self.count += len(drops)
        if self._fh is not None:
            self._fh.write(b"".join(_ENC.encode(d) + b"\n" for d in drops))
        else:
            self._rows.extend(d.to_dict() for d in drops)

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

        columns: dict[str, Any] = {c: [r.get(c) for r in self._rows] for c in ALERT_FIELDS}
        schema: dict[str, Any] = {c: pl.String for c in ALERT_FIELDS}
        for c in _INTS:
            schema[c] = pl.Int64
        for c in _NUMERIC:
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
