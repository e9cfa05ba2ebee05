"""I/O around the pure core: recordings on disk, live upstream streams (SSE, WebSocket).

The live pieces import their transports lazily: ``websockets`` is needed only for
``transport="ws"`` and ``uvicorn``/``starlette`` only for the servers.
"""

from __future__ import annotations

from .fanin import FanIn
from .files import FORMATS, detect_format, read_recording
from .upstream import LiveStats, Received, StreamFilters, StreamState, UpstreamConfig, UpstreamStream, fetch_sports

__all__ = [
    "FORMATS",
    "FanIn",
    "LiveStats",
    "Received",
    "StreamFilters",
    "StreamState",
    "UpstreamConfig",
    "UpstreamStream",
    "detect_format",
    "fetch_sports",
    "read_recording",
]
