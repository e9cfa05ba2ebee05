"""The NDJSON sink: what ``watch`` and ``replay`` print, through :class:`~dropengine.io.sinks.AlertWriter`.

It writes at once, in the caller's turn (a line to stdout or an NDJSON file is what the
detection loop did before sinks existed, and a full pipe is the reader's to drain), so it
has no queue: :meth:`NdjsonSink.offer` always accepts. Safe to offer from several threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..core.alerts import Alert
from ..core.errors import ConfigError
from ..io.sinks import AlertWriter
from .base import SinkCounters

__all__ = ["NdjsonSink"]


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
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NdjsonSink({self.name}, written={self.counters.delivered})"

    def offer(self, alert: Alert, delivery: str | None = None) -> bool:
        """Write ``alert`` now; always ``True`` (a write error, such as a closed pipe, raises)."""
        return self.offer_many((alert,)) == 1

    def offer_many(self, alerts: Sequence[Alert]) -> int:
        """Write ``alerts`` in one write and flush; returns how many."""
        with self._lock:
            self.counters.offered += len(alerts)
            self.writer.write(alerts)
            self.writer.flush()
            self.counters.delivered += len(alerts)
        return len(alerts)

    async def start(self) -> None:
        """Nothing to start: the writer is open."""

    async def aclose(self, drain_s: float = 10.0) -> None:
        """Close the writer (stdout is flushed, not closed)."""
        with self._lock:
            self.writer.close()
