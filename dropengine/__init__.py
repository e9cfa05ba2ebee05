"""dropengine: price-drop (line-move, steam) alerts from sports-betting odds streams.

The core is pure and synchronous: build :class:`Quote` values, feed them to a
:class:`DropEngine`, get :class:`Drop` alerts back (and, when asked, :class:`LineMove` and
:class:`Steam`). Adapters (recordings on disk, live
SSE/WebSocket streams in :mod:`dropengine.live`) and the CLI are thin loops around it.
:func:`watch` iterates alerts of a live upstream with the engine inside (loaded on first use:
``import dropengine`` opens no socket and imports no HTTP library); :mod:`dropengine.client`
reads a ``/v1/odds-drop`` alert stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .core.alerts import (
    SIGNALS,
    Alert,
    Drop,
    LineMove,
    Signal,
    Steam,
    SteamBook,
    encode_alert,
    encode_alerts,
    encode_drop,
    encode_drops,
)
from .core.engine import DropEngine, EngineConfig, EngineCounters
from .core.errors import (
    AuthError,
    BusError,
    ClusterError,
    ConfigError,
    DropEngineError,
    FeedError,
    FencedError,
    SnapshotError,
    UpstreamError,
)
from .core.filters import AlertFilter, DirectionChoice
from .core.keys import Secret
from .core.merge import merge_by_clock
from .core.odds import (
    american_to_decimal,
    american_to_prob,
    cents,
    decimal_to_american,
    delta,
    direction_of,
    is_valid_price,
    prob_to_american,
)
from .core.options import DetectOptions, KeyNumbers, Reference, Unit
from .core.partition import partition_of
from .core.quote import Quote
from .core.retry import Backoff, Outcome, RetryPolicy
from .core.sides import SideInfo, format_line, h2h_side, parse_side, prop_side, runner_side, spread_side, total_side
from .core.skips import Skip, SkipLog
from .formats.frames import FrameDecoder
from .formats.sse import SSEEvent, SSEParser
from .formats.tables import quote_from_row
from .formats.theoddsapi import quotes_from_odds_api
from .io.replay import ReplayStats, replay

if TYPE_CHECKING:
    from .live.watch import watch

__all__ = [
    "SIGNALS",
    "Alert",
    "AlertFilter",
    "AuthError",
    "Backoff",
    "BusError",
    "ClusterError",
    "ConfigError",
    "DetectOptions",
    "DirectionChoice",
    "Drop",
    "DropEngine",
    "DropEngineError",
    "EngineConfig",
    "EngineCounters",
    "FeedError",
    "FencedError",
    "FrameDecoder",
    "KeyNumbers",
    "LineMove",
    "Outcome",
    "Quote",
    "Reference",
    "ReplayStats",
    "RetryPolicy",
    "SSEEvent",
    "SSEParser",
    "Secret",
    "SideInfo",
    "Signal",
    "Skip",
    "SkipLog",
    "SnapshotError",
    "Steam",
    "SteamBook",
    "Unit",
    "UpstreamError",
    "__version__",
    "american_to_decimal",
    "american_to_prob",
    "cents",
    "decimal_to_american",
    "delta",
    "direction_of",
    "encode_alert",
    "encode_alerts",
    "encode_drop",
    "encode_drops",
    "format_line",
    "h2h_side",
    "is_valid_price",
    "merge_by_clock",
    "parse_side",
    "partition_of",
    "prob_to_american",
    "prop_side",
    "quote_from_row",
    "quotes_from_odds_api",
    "replay",
    "runner_side",
    "spread_side",
    "total_side",
    "watch",
]


def __getattr__(name: str) -> Any:
    """``dropengine.watch`` is loaded on first use: it brings the live layer (httpx)."""
    if name == "watch":
        from .live.watch import watch as fn

        globals()["watch"] = fn
        return fn
    raise AttributeError(f"module 'dropengine' has no attribute {name!r}")
