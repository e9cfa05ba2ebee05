"""The message bus (NATS JetStream): the durable alert log, the partitioned quote stream,
and the connection they share (issue 13, ``pip install 'dropengine[bus]'``).

Importing this package does not import nats; the modules that talk to the server do, when
first used. :mod:`.config` and :mod:`.codec` are pure.
"""

from __future__ import annotations

from .codec import QuoteBatch, decode_alert, decode_quotes, encode_alert, encode_quotes, msg_id, parse_source
from .config import BusConfig
from .connect import Bus, connect, ensure_streams
from .log import AlertLog, LogEntry, LogInfo, QuoteLog

__all__ = [
    "AlertLog", "Bus", "BusConfig", "LogEntry", "LogInfo", "QuoteBatch", "QuoteLog", "connect", "decode_alert",
    "decode_quotes", "encode_alert", "encode_quotes", "ensure_streams", "msg_id", "parse_source",
]
