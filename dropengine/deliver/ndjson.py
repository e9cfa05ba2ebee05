"""The NDJSON sink: what ``watch`` and ``replay`` print, through :class:`~dropengine.io.sinks.AlertWriter`.

It writes at once, in the caller's turn (a line to stdout or an NDJSON file is what the
detection loop did before sinks existed, and a full pipe is the reader's to drain), so it
has no queue. Safe to offer from several threads.

A file that cannot be written (a full disk, a quota, a closed pipe) never stops the caller:
the first write error is kept in :attr:`NdjsonSink.error` and logged once, that alert and
every later one are counted as failed (nothing more is written: a half-flushed buffer must
not reappear later). Only stdout keeps raising (a closed stdout pipe ends ``watch``, as it
always did).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..core.alerts import Alert
from ..core.errors import ConfigError
from ..io.sinks import AlertWriter
from .base import SinkCounters

__all__ = ["NdjsonSink"]

log = logging.getLogger("dropengine.deliver")


class NdjsonSink:
    """Alerts as JSON lines: to ``writer`` (an :class:`AlertWriter`), or to ``path`` (an
    ``.ndjson``/``.jsonl`` file), or to ``stream`` (default: stdout). Each offer is written
    and flushed; :attr:`writer`'s counts (by type) stay available."""

    def __init__(self, writer: AlertWriter | None = None, *, path: Path | str | None = None,
                 stream: IO[bytes] | None = None) -> None:
        if path is not None and not str(path).lower().endswith((".ndjson", ".jsonl")):
            raise ConfigError(f"path: {str(path)!r} must end in .ndjson or .jsonl (one JSON line per alert)")
        self.writer = writer if writer is not None else AlertWriter(Path(path) if path is not None else None,
                                                                   stream=stream)
        self.name = "stdout" if self.writer.path is None else f"ndjson {self.writer.path}"
        self.counters = SinkCounters()
        #: the first write error of a file sink ("No space left on device"); None while it writes
        self.error: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NdjsonSink({self.name}, written={self.counters.delivered})"

    def offer(self, alert: Alert, delivery: str | None = None) -> bool:
        """Write ``alert`` now; ``False`` (counted as failed) once a file cannot be written
        (stdout's write errors, such as a closed pipe, raise)."""
        return self.offer_many((alert,)) == 1

    def offer_many(self, alerts: Sequence[Alert]) -> int:
        """Write ``alerts`` in one write and flush; returns how many were written."""
        with self._lock:
            self.counters.offered += len(alerts)
            if self.error is not None:
                self.counters.failed += len(alerts)
                return 0
            try:
                self.writer.write(alerts)
                self.writer.flush()
            except OSError as exc:
                if self.writer.path is None:
                    raise  # stdout: the caller's to handle (a closed pipe ends the run)
                self._broken(exc)
                self.counters.failed += len(alerts)
                return 0
            self.counters.delivered += len(alerts)
        return len(alerts)

    def _broken(self, exc: OSError) -> None:
        self.error = exc.strerror or type(exc).__name__
        log.warning("sink %s: cannot write (%s): this and later alerts are not written", self.name, self.error)

    async def start(self) -> None:
        """Nothing to start: the writer is open."""

    async def aclose(self, drain_s: float = 10.0) -> None:
        """Close the writer (stdout is flushed, not closed); a file's close error is counted
        as :attr:`error`, not raised."""
        with self._lock:
            try:
                self.writer.close()
            except OSError as exc:
                if self.writer.path is None:
                    raise
                if self.error is None:
                    self._broken(exc)
