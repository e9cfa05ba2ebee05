"""The bytes on the bus: quote batches, alerts, and the headers that make publishing exact.

Pure (no I/O, no nats import). A quote message is one batch of one partition's quotes that
arrived together, ``{"now_ms": int, "quotes": [Quote...]}``; an alert message is the alert's
wire JSON (tagged by ``type``). ``Nats-Msg-Id`` ``p{I}.{P}.{qepoch}.{qseq}.{k}`` lets JetStream
drop a republish inside its duplicate window; ``Dropengine-Source`` ``{qepoch}.{qseq}.{k}`` lets
a restarted detector skip what it already published even outside that window. ``qepoch`` is
the quote stream's epoch (its creation time): a recreated quote stream numbers its messages
from 1 again, and positions of another epoch are never compared.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ..core.alerts import Alert, Drop, LineMove, Steam
from ..core.errors import ConfigError, DropEngineError, FeedError, short_repr
from ..core.quote import KINDS, MAX_MS, Quote
from ..core.rules import is_valid_price

__all__ = [
    "MSG_ID", "PRODUCED_MS", "SOURCE", "QuoteBatch", "decode_alert", "decode_quotes", "encode_alert",
    "encode_quotes", "msg_id", "parse_source", "parse_source_epoch", "source_header",
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
_SOURCE: Final = re.compile(r"(?:([0-9a-z]{1,12})\.)?([0-9]{1,19})\.([0-9]{1,9})", re.ASCII)
_EPOCH: Final = re.compile(r"[0-9a-z]{1,12}", re.ASCII)


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
    """An alert message as its :data:`Alert`; :class:`FeedError` naming what is wrong: not
    the wire JSON of an alert, or one no engine produces (:func:`_impossible`), since
    anything that can publish to the subject could otherwise have every frontend serve it."""
    try:
        alert = _ALERT.decode(data)
    except (msgspec.DecodeError, DropEngineError, ValueError, TypeError, RecursionError) as exc:
        raise _feed_error("alert message", data, exc) from None
    problem = _impossible(alert)
    if problem is not None:
        raise FeedError(f"alert message: {problem} (message {short_repr(bytes(data[:60]))}, {len(data)} bytes)",
                        "bad field")
    return alert


def _impossible(alert: Alert) -> str | None:
    """What makes ``alert`` one no engine produces (``None``: nothing): an empty id, a kind
    that is not a row kind, a time outside unix ms, a price that is not a valid American price
    (the engine never alerts on one)."""
    names = ["sport_key", "event_id", "side", "market_key"]
    if not isinstance(alert, Steam):
        names.append("bookmaker")
    for name in names:
        if not getattr(alert, name):
            return f"{name} is empty"
    if alert.kind not in KINDS:
        return f"kind {short_repr(alert.kind)} is not one of {', '.join(KINDS)}"
    for name in ("last_update", "timestamp"):
        value = getattr(alert, name)
        if not 0 <= value <= MAX_MS:
            return f"{name} {value!r} is not unix ms (0 to {MAX_MS})"
    if isinstance(alert, Drop):
        for name in ("prev", "new"):
            if not is_valid_price(getattr(alert, name)):
                return f"{name} {getattr(alert, name)!r} is not a valid American price"
    elif isinstance(alert, LineMove):
        for name in ("prev_price", "new_price"):
            value = getattr(alert, name)
            if value is not None and not is_valid_price(value):
                return f"{name} {value!r} is not a valid American price"
    elif not alert.books or not alert.leader:
        return "a steam without books or leader"
    return None


def _check_int(name: str, value: object, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ConfigError(f"{name}: {short_repr(value)} must be an integer >= {minimum}")
    return value


def _check_epoch(qepoch: object) -> str:
    if not isinstance(qepoch, str) or not _EPOCH.fullmatch(qepoch):
        raise ConfigError(f"qepoch: {short_repr(qepoch)} must be 1-12 lowercase letters or digits (a stream epoch)")
    return qepoch


def msg_id(i: int, p: int, qseq: int, k: int, *, qepoch: str | None = None) -> str:
    """``p{I}.{P}.{qepoch}.{qseq}.{k}``: the alert's JetStream message id (alert ``k`` of the
    quote message at stream sequence ``qseq`` of the quote stream of epoch ``qepoch``,
    partition ``I`` of ``P``). The epoch keeps the ids of a recreated quote stream (whose
    sequences start again) apart from the old ones inside the duplicate window; without one
    (``None``) the id is ``p{I}.{P}.{qseq}.{k}``."""
    _check_int("partition", i, 0)
    _check_int("partitions", p, 1)
    if i >= p:
        raise ConfigError(f"partition: {i!r} must be below partitions {p!r}")
    return f"p{i}.{p}.{source_header(qseq, k, qepoch=qepoch)}"


def source_header(qseq: int, k: int, *, qepoch: str | None = None) -> str:
    """``{qepoch}.{qseq}.{k}`` (``{qseq}.{k}`` without an epoch): the ``Dropengine-Source`` header."""
    pos = f"{_check_int('qseq', qseq, 1)}.{_check_int('k', k, 0)}"
    return pos if qepoch is None else f"{_check_epoch(qepoch)}.{pos}"


def parse_source(text: str | None) -> tuple[int, int] | None:
    """``(qseq, k)`` from a ``Dropengine-Source`` header (with or without its quote epoch);
    ``None`` when absent or malformed."""
    got = parse_source_epoch(text)
    return None if got is None else got[1]


def parse_source_epoch(text: str | None) -> tuple[str | None, tuple[int, int]] | None:
    """``(qepoch, (qseq, k))`` from a ``Dropengine-Source`` header (``qepoch`` ``None`` for a
    header written without one); ``None`` when absent or malformed."""
    if not isinstance(text, str):
        return None
    m = _SOURCE.fullmatch(text.strip())
    if m is None:
        return None
    qseq, k = int(m.group(2)), int(m.group(3))
    return (m.group(1), (qseq, k)) if qseq >= 1 else None
