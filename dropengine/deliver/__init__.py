"""Delivery of alerts to where users are: stdout/NDJSON, signed webhooks, Discord, Telegram.

- :mod:`.rules` (pure): signatures, delivery ids, retry waits, rate-limit windows, the one
  readable line per alert, the dead-letter record, ``--sink`` specs.
- :mod:`.base`: the :class:`Sink` protocol and the bounded, non-blocking queue with its
  accounting (``offered == delivered + failed + dropped``) and dead-letter file.
- :mod:`.http`: :class:`WebhookSink`, :class:`DiscordSink`, :class:`TelegramSink`.
- :mod:`.ndjson`: :class:`NdjsonSink` (what ``watch`` prints, through ``io.sinks.AlertWriter``).
- :mod:`.background`: :class:`BackgroundSinks`, the sync facade (a thread with its own loop).
- :mod:`.options`: the sink settings of ``watch`` and ``serve`` as one value, and the sinks they
  build (the click flags are :mod:`dropengine.cli.sinks`).
"""

from __future__ import annotations

from .background import BackgroundSinks
from .base import DEFAULT_QUEUE, DeadLetterFile, QueuedSink, Sink, SinkCounters
from .http import TELEGRAM_BASE_URL, DiscordSink, TelegramSink, WebhookSink
from .ndjson import NdjsonSink
from .rules import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RateLimiter,
    RetrySchedule,
    alert_line,
    sign,
    verify,
)

__all__ = [
    "DEFAULT_QUEUE",
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TELEGRAM_BASE_URL",
    "TIMESTAMP_HEADER",
    "BackgroundSinks",
    "DeadLetterFile",
    "DiscordSink",
    "NdjsonSink",
    "QueuedSink",
    "RateLimiter",
    "RetrySchedule",
    "Sink",
    "SinkCounters",
    "TelegramSink",
    "WebhookSink",
    "alert_line",
    "sign",
    "verify",
]
