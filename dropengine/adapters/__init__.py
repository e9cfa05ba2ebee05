"""I/O around the pure core: recordings on disk (and, later, live upstream transports)."""

from __future__ import annotations

from .files import FORMATS, detect_format, read_recording

__all__ = ["FORMATS", "detect_format", "read_recording"]
