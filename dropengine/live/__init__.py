"""Live upstream streams (SSE, WebSocket), their retry loop and the fan-in of many sports.

The live pieces import their transports lazily: ``websockets`` is needed only for
``transport="ws"`` and ``uvicorn``/``starlette`` only for the servers.
"""

from __future__ import annotations

from .fanin import FanIn
from .upstream import LiveStats, Received, StreamFilters, StreamState, UpstreamConfig, UpstreamStream, fetch_sports

__all__ = [
    "FanIn",
    "LiveStats",
    "Received",
    "StreamFilters",
    "StreamState",
    "UpstreamConfig",
    "UpstreamStream",
    "fetch_sports",
]
