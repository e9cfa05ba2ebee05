"""The bytes on the bus: quote batches, alerts, and the headers that make publishing exact.

Pure (no I/O, no nats import). A quote message is one batch of one partition's quotes that
arrived together, ``{"now_ms": int, "quotes": [Quote...]}``; an alert message is the alert's
wire JSON (tagged by ``type``). ``Nats-Msg-Id`` ``p{I}.{P}.{qseq}.{k}`` lets JetStream drop a
republish inside its duplicate window; ``Dropengine-Source`` ``{qseq}.{k}`` lets a restarted
detector skip what it already published even outside that window.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ..core.alerts import Alert
from ..core.errors import ConfigError, DropEngineError, FeedError, short_repr
from ..core.quote import MAX_MS, Quote

__all__ = [
    "MSG_ID", "PRODUCED_MS", "SOURCE", "QuoteBatch", "decode_alert", "decode_quotes", "encode_alert",
    "encode_quotes", "msg_id", "parse_source", "source_header",
]

#: JetStream's de-duplication header.
MSG_ID: Final = "Nats-Msg-Id"
#: The source position ``{qseq}.{k}`` of an alert.
SOURCE: Final = "Dropengine-Source"
#: Wall-clock ms at which the alert was detected.
PRODUCED_MS: Final = "Dropengine-Produced-Ms"


class QuoteBatch(msgspec.Struct, frozen=True):
    """One quote message: the quotes of one partition that arrived together, and the
    ingest's clock (unix ms) when they did."""

    now_ms: int
    quotes: list[Quote]


_ENCODER: Final = msgspec.json.Encoder()
_QUOTES: Final = msgspec.json.Decoder(QuoteBatch)
_ALERT: Final = msgspec.json.Decoder(Alert)
_SOURCE: Final = re.compile(r"([0-9]{1,19})\.([0-9]{1,9})")


def encode_quotes(now_ms: int, quotes: list[Quote] | tuple[Quote, ...]) -> bytes:
    """The quote message for ``quotes`` received at ``now_ms``."""
    if type(now_ms) is not int or not 0 <= now_ms <= MAX_MS:
        raise ConfigError(f"now_ms: {short_repr(now_ms)} must be an integer from 0 to {MAX_MS} (unix ms)")
    return _ENCODER.encode(QuoteBatch(now_ms, list(quotes)))


def _feed_error(what: str, data: bytes, exc: Exception) -> FeedError:
    reason = exc.reason if isinstance(exc, FeedError) else "bad json"
    return FeedError(f"{what}: {exc} (message {short_repr(bytes(data[:60]))}, {len(data)} bytes)", reason)


def decode_quotes(data: bytes) -> QuoteBatch:
    """A quote message; :class:`FeedError` naming what is wrong (bad JSON, a missing field, a
    quote the :class:`Quote` rules refuse)."""
    try:
        batch = _QUOTES.decode(data)
    except (msgspec.DecodeError, DropEngineError, ValueError, TypeError, RecursionError) as exc:
        raise _feed_error("quote message", data, exc) from None
    if not 0 <= batch.now_ms <= MAX_MS:  # encode_quotes' rule: what the writers can write
        raise FeedError(f"quote message: now_ms {batch.now_ms!r} must be from 0 to {MAX_MS} (unix ms)", "bad time")
    return batch


def encode_alert(alert: Alert) -> bytes:
    """An alert message: the alert's wire JSON."""
    return _ENCODER.encode(alert)


def decode_alert(data: bytes) -> Alert:
    """An alert message as its :data:`Alert`; :class:`FeedError` naming what is wrong."""
    try:
        return _ALERT.decode(data)
    except (msgspec.DecodeError, DropEngineError, ValueError, TypeError, RecursionError) as exc:
        raise _feed_error("alert message", data, exc) from None


def _check_int(name: str, value: object, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ConfigError(f"{name}: {short_repr(value)} must be an integer >= {minimum}")
    return value


def msg_id(i: int, p: int, qseq: int, k: int) -> str:
    """``p{I}.{P}.{qseq}.{k}``: the alert's JetStream message id (alert ``k`` of the quote
    message at stream sequence ``qseq``, partition ``I`` of ``P``)."""
    _check_int("partition", i, 0)
    _check_int("partitions", p, 1)
    if i >= p:
        raise ConfigError(f"partition: {i!r} must be below partitions {p!r}")
    return f"p{i}.{p}.{_check_int('qseq', qseq, 1)}.{_check_int('k', k, 0)}"


def source_header(qseq: int, k: int) -> str:
    """``{qseq}.{k}``: the ``Dropengine-Source`` header."""
    return f"{_check_int('qseq', qseq, 1)}.{_check_int('k', k, 0)}"


def parse_source(text: str | None) -> tuple[int, int] | None:
    """``(qseq, k)`` from a ``Dropengine-Source`` header; ``None`` when absent or malformed."""
    if not isinstance(text, str):
        return None
    m = _SOURCE.fullmatch(text.strip())
    if m is None:
        return None
    qseq, k = int(m.group(1)), int(m.group(2))
    return (qseq, k) if qseq >= 1 else None
