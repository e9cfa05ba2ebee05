"""Live upstream streams (SSE, WebSocket), their retry loop and the fan-in of many sports.

The live pieces import their transports lazily: ``websockets`` is needed only for
``transport="ws"`` and ``uvicorn``/``starlette`` only for the servers.
"""

from __future__ import annotations

from ..formats.query import StreamQuery
from .fanin import FanIn
from .transport import UpstreamConfig
from .upstream import LiveStats, Received, StreamState, UpstreamStream, fetch_sports

__all__ = [
    "FanIn",
    "LiveStats",
    "Received",
    "StreamQuery",
    "StreamState",
    "UpstreamConfig",
    "UpstreamStream",
    "fetch_sports",
]
