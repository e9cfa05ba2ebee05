"""The alert log and the quote stream on JetStream: :class:`AlertLog` and :class:`QuoteLog`.

An alert's id is its stream sequence in ``{PREFIX}_ALERTS`` (dense over all partitions) and
the log's epoch is named by the stream's creation time, so every frontend gives an alert the
same SSE id ``{epoch}-{seq}`` (API13, SPEC 7).

Reading (:meth:`AlertLog.read`, :meth:`AlertLog.follow`, :meth:`QuoteLog.read`) uses an
ephemeral push consumer (memory, R1, no acks, flow control, idle heartbeats) that this module
checks itself, the way nats-py's "ordered consumer" does, but with the recovery under our
control: each delivery's consumer sequence must be the previous one plus one, and a heartbeat
must report the last consumer sequence we received. Any miss (a slow-consumer drop, a
reconnect, a consumer lost with its server, a leader change that stalls it, silence for two
heartbeats) closes that consumer and creates a new one from the next stream sequence we have
not yet yielded. So a reader never skips a message the stream holds and never yields one
twice; messages the stream no longer holds (trimmed, purged, deleted) show as a jump of the
stream sequence, which the caller sees (the frontend turns it into a ``reset``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..core.alerts import Alert
from ..core.epoch import new_epoch
from ..core.errors import BusError, ConfigError, FeedError, FencedError, short_repr
from ..core.quote import Quote
from .codec import (
    MSG_ID,
    PRODUCED_MS,
    SOURCE,
    QuoteBatch,
    decode_alert,
    decode_quotes,
    encode_alert,
    encode_quotes,
    msg_id,
    parse_source_epoch,
    source_header,
)
from .connect import (
    STREAM_NOT_FOUND,
    WRONG_LAST_SEQUENCE,
    Bus,
    BusUnavailable,
    StreamNotFound,
    _nats_errors,
    describe,
    retry_unavailable,
    transient,
)

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["AlertLog", "LogEntry", "LogInfo", "LogRewound", "QuoteLog", "epoch_of", "new_quote_id"]

log = logging.getLogger("dropengine.bus")

EXPECTED_LAST_SUBJECT_SEQ: Final = "Nats-Expected-Last-Subject-Sequence"
_STATUS: Final = "Status"
_ACK_PREFIX: Final = "$JS.ACK."
_UNIX: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_ONE_US: Final = datetime.timedelta(microseconds=1)


def epoch_of(created: datetime.datetime | None) -> str:
    """The log's epoch: ``new_epoch(created_us)`` of the stream's creation time (UTC)."""
    if created is None:
        raise BusError("the alert stream reports no creation time (nats-server too old?)")
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.UTC)
    return new_epoch((created - _UNIX) // _ONE_US)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One alert of the log: its stream sequence (the SSE id's number), the alert, when it was
    detected (wall ms), its partition (from the subject) and its source position
    ``(qseq, k)`` (``None`` when the message carries none)."""

    seq: int
    alert: Alert
    produced_ms: int
    partition: int
    source: tuple[int, int] | None
    #: The quote stream's epoch the source position belongs to (``None``: written without one).
    source_epoch: str | None = None


@dataclass(frozen=True, slots=True)
class LogInfo:
    """The log's epoch and the sequences it holds (empty: ``first_seq == last_seq + 1``)."""

    epoch: str
    first_seq: int
    last_seq: int


def _check_seq(name: str, value: object, minimum: int = 1) -> int:
    if type(value) is not int or value < minimum:
        raise ConfigError(f"{name}: {short_repr(value)} must be an integer >= {minimum}")
    return value


async def _publish(bus: Bus, subject: str, payload: bytes, headers: dict[str, str], what: str, stream: str) -> Any:
    """One JetStream publish, retried (same headers, so the same ``Nats-Msg-Id``) a bounded
    number of times while no server answers; :class:`BusError` if another stream than
    ``stream`` took it (a subject overlap: a misconfiguration, reported at once)."""
    from nats.errors import ConnectionClosedError

    cfg = bus.config
    delay = 0.05
    last: BaseException | None = None
    for attempt in range(cfg.publish_attempts):
        if bus.nc.is_closed:
            raise BusError(f"{what}: the bus connection is closed")
        try:
            ack = await bus.js.publish(subject, payload, timeout=cfg.request_timeout_s, headers=dict(headers))
            if ack.stream != stream:
                raise BusError(f"{what}: stored by stream {ack.stream!r}, not {stream} (subjects overlap)")
            return ack
        except ConnectionClosedError as exc:
            raise bus.error(exc, what) from None
        except _nats_errors() as exc:
            if not transient(exc):
                raise
            last = exc
            if attempt + 1 < cfg.publish_attempts:
                log.debug("%s: attempt %d failed (%s); retrying", what, attempt + 1, describe(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
    assert last is not None
    raise BusUnavailable(f"{what}: no answer after {cfg.publish_attempts} attempts on {bus.server}: "
                         f"{describe(last)}")


@dataclass(slots=True)
class _Delivered:
    seq: int
    pending: int
    msg: Msg


class _Reader:
    """Stream messages from ``start`` (optionally only ``subject``), in order, each once,
    through self-checked ephemeral push consumers (see the module docstring)."""

    def __init__(self, bus: Bus, stream: str, subject: str | None, what: str,
                 *, created: datetime.datetime | None = None) -> None:
        self.bus = bus
        self.stream = stream
        self.subject = subject
        self.what = what
        self.restarts = 0
        #: With ``created``: before each new consumer, check that the stream is still the one
        #: created then (not deleted and recreated: another epoch, whose sequences mean other
        #: messages); a mismatch is a BusError, a failed look a restart like any other.
        self.created = created

    async def _same_stream(self) -> None:
        if self.created is None:
            return
        si = await self.bus.js.stream_info(self.stream)
        if si.created != self.created:
            raise BusError(f"{self.what}: stream {self.stream} was recreated "
                           f"(epoch {epoch_of(self.created)} -> {epoch_of(si.created)})")

    async def _open(self, start: int, inbox: str) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        hb = self.bus.config.heartbeat_s
        cfg = ConsumerConfig(
            deliver_subject=inbox,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=AckPolicy.NONE,
            max_deliver=1,
            flow_control=True,
            idle_heartbeat=hb,
            mem_storage=True,
            num_replicas=1,
            # an abandoned consumer (its reader gone with its process) is removed by the server
            inactive_threshold=max(5.0, 5 * hb),
            filter_subject=self.subject,
        )
        return await self.bus.js.add_consumer(self.stream, config=cfg, timeout=self.bus.config.request_timeout_s)

    async def messages(self, start: int, *, stop: int | None) -> AsyncGenerator[_Delivered, None]:
        """Messages with seq >= ``start``; with ``stop``: only up to ``stop`` and only those
        held now (then it ends), and a bounded number of retries; without: forever."""
        from nats.js.errors import NotFoundError

        bus = self.bus
        nc = bus.nc
        silence = 2 * bus.config.heartbeat_s + 0.5
        next_seq = start
        # restarts in a row without a message yielded: they back off (never a hot loop against
        # a sick server) and bound a read
        failures = 0
        while True:
            queue: asyncio.Queue[Msg] = asyncio.Queue()

            async def enqueue(msg: Msg, queue: asyncio.Queue[Msg] = queue) -> None:
                queue.put_nowait(msg)

            sub = None
            consumer: str | None = None
            reason = ""
            try:
                if self.restarts:
                    await self._same_stream()
                inbox = nc.new_inbox()
                sub = await nc.subscribe(inbox, cb=enqueue)
                info = await self._open(next_seq, inbox)
                consumer = info.name
                if stop is not None and not info.num_pending:
                    return
                expect = 1  # the next consumer sequence
                while True:
                    try:
                        msg = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        try:
                            msg = await asyncio.wait_for(queue.get(), timeout=silence)
                        except TimeoutError:
                            reason = f"no message or heartbeat for {silence:g} s"
                            break
                    headers = msg.headers
                    # a control message (heartbeat, flow control, consumer status) has no body and
                    # no $JS.ACK reply; a STORED message may carry any headers (a hostile "Status"
                    # too): it is a delivery, judged by its JetStream metadata below
                    if (headers is not None and _STATUS in headers and not msg.data
                            and not (msg.reply or "").startswith(_ACK_PREFIX)):
                        status = headers[_STATUS]
                        if status == "100":
                            if msg.reply:  # flow control request: we are caught up to here
                                await nc.publish(msg.reply, b"")
                                continue
                            stalled = headers.get("Nats-Consumer-Stalled")
                            if stalled:
                                await nc.publish(stalled, b"")
                            last = headers.get("Nats-Last-Consumer")
                            if last is not None and _decimal(last) != expect - 1:
                                reason = f"heartbeat reports delivery {last}, we have {expect - 1}"
                                break
                            continue
                        reason = f"consumer status {status} {headers.get('Description', '')}".rstrip()
                        break
                    tokens = (msg.reply or "").split(".")
                    if len(tokens) == 9:
                        sseq, cseq, pending = int(tokens[5]), int(tokens[6]), int(tokens[8])
                    elif len(tokens) >= 11:
                        sseq, cseq, pending = int(tokens[7]), int(tokens[8]), int(tokens[10])
                    else:
                        reason = f"a delivery without JetStream metadata ({short_repr(msg.reply)})"
                        break
                    if cseq != expect:
                        reason = f"delivery {cseq} after {expect - 1} (messages lost in transit)"
                        break
                    expect += 1
                    if sseq < next_seq:
                        continue
                    if stop is not None and sseq > stop:
                        return
                    next_seq = sseq + 1
                    failures = 0
                    yield _Delivered(sseq, pending, msg)
                    if stop is not None and (sseq >= stop or pending == 0):
                        return
            except NotFoundError as exc:
                if exc.err_code == STREAM_NOT_FOUND or "stream" in (exc.description or "").lower():
                    raise StreamNotFound(f"{self.what}: stream {self.stream} not found on {bus.server}") from None
                reason = describe(exc)
            except _nats_errors() as exc:
                from nats.errors import ConnectionClosedError

                if isinstance(exc, ConnectionClosedError) or nc.is_closed:
                    raise bus.error(exc, self.what) from None
                reason = describe(exc)
            finally:
                if sub is not None:
                    with contextlib.suppress(*_nats_errors()):
                        await sub.unsubscribe()
                if consumer is not None and not reason:
                    # a normal end (read done, or the caller stopped): remove the consumer now
                    # rather than after its inactive threshold; best effort, bounded
                    # (cleanup must never mask the caller's own exception)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(bus.js.delete_consumer(self.stream, consumer), timeout=1.0)
            self.restarts += 1
            failures += 1
            if stop is not None and failures > bus.config.publish_attempts:
                # the stream exists (not found is raised above): the bus did not answer in time
                raise BusUnavailable(f"{self.what}: gave up after {failures} failed attempts on {bus.server}: "
                                     f"{reason}")
            log.info("%s: reading again from seq %d (%s)", self.what, next_seq, reason)
            if failures > 1:
                await asyncio.sleep(min(0.05 * 2 ** min(failures - 2, 5), 1.0))


class LogRewound(BusError):
    """A fenced publish found the subject's last sequence BELOW the one expected: the alert
    log was recreated (another epoch) or purged. Not another writer (sequences never move
    back): the writer re-reads the log's position and goes on."""

    def __init__(self, message: str, last_seq: int) -> None:
        super().__init__(message)
        self.last_seq = last_seq


class AlertLog:
    """The alert log of ``bus`` (stream ``{PREFIX}_ALERTS``).

    ``partitions`` (P) is needed only to publish: the message id is ``p{I}.{P}.{qseq}.{k}``
    (also accepted per :meth:`publish` call). ``bad_messages`` counts log messages that are
    not alerts (skipped by the readers, logged with their sequence: the caller sees a hole).
    """

    def __init__(self, bus: Bus, *, partitions: int | None = None) -> None:
        self.bus = bus
        self.partitions = partitions
        self.bad_messages = 0
        self.duplicates = 0

    async def info(self) -> LogInfo:
        """The log's epoch and first/last sequence (from the stream's info)."""
        si = await _stream_info(self.bus, self.bus.config.alert_stream, "alert log")
        state = si.state
        last = int(state.last_seq or 0)
        first = int(state.first_seq) if state.messages else last + 1
        return LogInfo(epoch_of(si.created), first, last)

    async def epoch(self) -> str:
        """The log's epoch (changes when the stream is recreated)."""
        return (await self.info()).epoch

    async def publish(
        self, partition: int, alert: Alert, *, qseq: int, k: int, produced_ms: int, expect_last: int | None,
        partitions: int | None = None, qepoch: str | None = None,
    ) -> int:
        """Append ``alert`` (alert ``k`` of quote message ``qseq`` of the quote stream of epoch
        ``qepoch``) to ``partition``'s subject; its stream sequence. A republish inside the
        duplicate window returns the original's sequence; ``expect_last`` (the subject's last
        sequence this writer knows, 0 for none) fences: if another writer moved the subject,
        :class:`FencedError`; if the subject's last sequence is BELOW it (the log was
        recreated or purged: no writer moves a subject back), :class:`LogRewound`."""
        cfg = self.bus.config
        p = partitions if partitions is not None else self.partitions
        if p is None:
            raise ConfigError("partitions: None; AlertLog(bus, partitions=P) or publish(..., partitions=P) is "
                              "needed for the message id p{I}.{P}.{qseq}.{k}")
        mid = msg_id(partition, p, qseq, k, qepoch=qepoch)
        if type(produced_ms) is not int or produced_ms < 0:
            raise ConfigError(f"produced_ms: {short_repr(produced_ms)} must be a non-negative integer (unix ms)")
        # (no Nats-Expected-Stream header: JetStream stores every header with the message and
        # each reader parses them all; the ack names the stream, checked in _publish)
        headers = {MSG_ID: mid, SOURCE: source_header(qseq, k, qepoch=qepoch), PRODUCED_MS: str(produced_ms)}
        if expect_last is not None:
            headers[EXPECTED_LAST_SUBJECT_SEQ] = str(_check_seq("expect_last", expect_last, 0))
        subject = cfg.alert_subject(partition)
        what = f"publish alert {mid} to {subject}"
        from nats.js.errors import APIError

        try:
            ack = await _publish(self.bus, subject, encode_alert(alert), headers, what, cfg.alert_stream)
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                # An earlier attempt of this very publish may have landed (its ack lost) and
                # moved the subject: then it is ours, not another writer's.
                seq, mine = await self._last_with_id(subject)
                if mine == mid:
                    self.duplicates += 1
                    return seq
                if expect_last is not None and seq < expect_last:
                    raise LogRewound(
                        f"{what}: expected last sequence {expect_last} but the subject's last is {seq}: the alert "
                        f"log {cfg.alert_stream} was recreated or purged (now epoch {await self.epoch()}) on "
                        f"{self.bus.server}", seq) from None
                raise FencedError(
                    f"{what}: expected last sequence {expect_last} but another writer moved it "
                    f"(now {seq}, message {mine!r}) on {self.bus.server}"
                ) from None
            raise self.bus.error(exc, what) from None
        except _nats_errors() as exc:
            raise self.bus.error(exc, what) from None
        if ack.duplicate:
            self.duplicates += 1
        return int(ack.seq)

    async def _last_with_id(self, subject: str) -> tuple[int, str | None]:
        from nats.js.errors import NotFoundError

        with self.bus.translate(f"last message of {subject}"):
            try:
                raw = await self.bus.js.get_last_msg(self.bus.config.alert_stream, subject)
            except NotFoundError:
                return 0, None
        return int(raw.seq or 0), (raw.headers or {}).get(MSG_ID)

    async def last_for(self, partition: int) -> tuple[int, tuple[int, int] | None]:
        """The last stream sequence of ``partition``'s subject (0 if none) and its source
        position. Read from the stream leader (not a direct get from a replica that may lag),
        since a detector fences its first publish with it."""
        seq, _, source = await self.last_source(partition)
        return seq, source

    async def last_source(self, partition: int) -> tuple[int, str | None, tuple[int, int] | None]:
        """:meth:`last_for` with the quote epoch of the source position (``None`` when the
        message names none): ``(seq, qepoch, (qseq, k))``."""
        from nats.js.errors import NotFoundError

        subject = self.bus.config.alert_subject(partition)
        with self.bus.translate(f"last message of {subject}"):
            try:
                raw = await self.bus.js.get_last_msg(self.bus.config.alert_stream, subject)
            except NotFoundError:
                return 0, None, None
        got = parse_source_epoch((raw.headers or {}).get(SOURCE))
        return (int(raw.seq or 0), None, None) if got is None else (int(raw.seq or 0), got[0], got[1])

    def _entry(self, d: _Delivered) -> LogEntry | None:
        msg = d.msg
        try:
            alert = decode_alert(msg.data)
        except FeedError as exc:
            self.bad_messages += 1
            log.warning("alert log: message %d is not an alert, skipped: %s", d.seq, exc)
            return None
        headers = msg.headers or {}
        produced = headers.get(PRODUCED_MS)
        produced_ms = _decimal(produced)
        if produced_ms < 0:
            produced_ms = _stamp_ms(msg)
        got = parse_source_epoch(headers.get(SOURCE))
        return LogEntry(d.seq, alert, produced_ms, _decimal(msg.subject.rsplit(".", 1)[-1]),
                        None if got is None else got[1], None if got is None else got[0])

    async def read(self, start_seq: int, stop_seq: int) -> AsyncGenerator[LogEntry, None]:
        """Every entry with ``start_seq <= seq <= stop_seq`` the log holds now, in order, then
        ends (a backfill). Deleted or trimmed messages are simply absent."""
        _check_seq("start_seq", start_seq)
        _check_seq("stop_seq", stop_seq, 0)
        if stop_seq < start_seq:
            return
        reader = _Reader(self.bus, self.bus.config.alert_stream, None, f"read {self.bus.config.alert_stream}")
        async for d in reader.messages(start_seq, stop=stop_seq):
            entry = self._entry(d)
            if entry is not None:
                yield entry

    async def follow(self, start_seq: int) -> AsyncGenerator[LogEntry, None]:
        """Every entry from ``start_seq`` on, live, forever, in stream order, each once, across
        reconnects and leader changes. Sequences the log no longer holds are skipped: the
        caller checks contiguity. :class:`BusError` if the stream is deleted or recreated
        (another epoch) meanwhile."""
        _check_seq("start_seq", start_seq)
        cfg = self.bus.config
        # forever means through an outage at the start too (a leader election): waited out
        created = (await retry_unavailable(f"follow {cfg.alert_stream}", lambda: _stream_info(
            self.bus, cfg.alert_stream, "alert log"), logger=log)).created
        reader = _Reader(self.bus, cfg.alert_stream, None, f"follow {cfg.alert_stream}", created=created)
        async for d in reader.messages(start_seq, stop=None):
            entry = self._entry(d)
            if entry is not None:
                yield entry


async def _stream_info(bus: Bus, stream: str, what: str) -> Any:
    """The stream's info; :class:`BusError` naming it when it does not exist (a definite
    answer), :class:`BusUnavailable` when the bus does not answer."""
    from nats.js.errors import NotFoundError

    with bus.translate(f"info of {stream}"):
        try:
            si = await bus.js.stream_info(stream)
        except NotFoundError:
            raise StreamNotFound(f"no {what} {stream} on {bus.server} (stream not found)") from None
    # Prefixes that differ only in case or '-'/'_' name one stream: it is this deployment's
    # only when it holds this prefix's subjects (else another deployment's log would be read
    # as ours; ensure_streams refuses to create it for the second one)
    cfg = bus.config
    want = [cfg.alert_subjects] if stream == cfg.alert_stream else [cfg.quote_subjects]
    have = list(si.config.subjects or [])
    if sorted(have) != want:
        raise BusError(f"the {what} {stream} on {bus.server} holds the subjects {have!r}, not {want!r}: it belongs "
                       f"to another deployment (another --bus-prefix than {cfg.prefix!r})")
    return si


def _stamp_ms(msg: Msg) -> int:
    tokens = (msg.reply or "").split(".")
    ts = tokens[7] if len(tokens) == 9 else tokens[9] if len(tokens) >= 11 else "0"
    ns = _decimal(ts)
    return ns // 1_000_000 if ns >= 0 else 0


def _decimal(text: str | None) -> int:
    """``text`` as a non-negative decimal integer of at most 19 ASCII digits, else -1 (a
    header anyone may write: ``str.isdigit`` is also true for "\u00b2", which ``int`` refuses)."""
    if text is None or not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return -1
    return int(text)


def new_quote_id(partition: int) -> str:
    """A fresh ``Nats-Msg-Id`` for one quote message of ``partition`` (random: a replay may
    publish the same quotes twice on purpose)."""
    return f"q{partition}.{secrets.token_hex(8)}"


class QuoteLog:
    """The quote stream of ``bus`` (``{PREFIX}_QUOTES``), one subject per partition."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.bad_messages = 0

    async def publish(self, partition: int, now_ms: int, quotes: list[Quote] | tuple[Quote, ...], *,
                      message_id: str | None = None) -> int:
        """Append one batch of ``partition``'s quotes; its stream sequence. A retried attempt
        carries the same message id (``message_id``, default a random one), so it is stored
        once: a caller that retries after :class:`BusUnavailable` passes the same id again."""
        cfg = self.bus.config
        subject = cfg.quote_subject(partition)
        payload = encode_quotes(now_ms, quotes)
        headers = {MSG_ID: message_id if message_id is not None else new_quote_id(partition)}
        what = f"publish quotes to {subject}"
        try:
            ack = await _publish(self.bus, subject, payload, headers, what, cfg.quote_stream)
        except _nats_errors() as exc:
            raise self.bus.error(exc, what) from None
        return int(ack.seq)

    async def last_seq(self, partition: int) -> int:
        """The stream sequence of ``partition``'s last quote message (0 if none)."""
        from nats.js.errors import NotFoundError

        subject = self.bus.config.quote_subject(partition)
        with self.bus.translate(f"last message of {subject}"):
            try:
                raw = await self.bus.js.get_last_msg(self.bus.config.quote_stream, subject)
            except NotFoundError:
                return 0
        return int(raw.seq or 0)

    async def read(self, partition: int, start_seq: int) -> AsyncGenerator[tuple[int, QuoteBatch | FeedError], None]:
        """``partition``'s quote messages from ``start_seq`` on, live, forever: ``(seq, batch)``,
        or ``(seq, FeedError)`` for a message that is not a quote batch (counted, logged).
        :class:`BusError` if the stream is deleted or recreated meanwhile (its sequences, which
        checkpoints record, would mean other messages)."""
        _check_seq("start_seq", start_seq)
        cfg = self.bus.config
        subject = cfg.quote_subject(partition)
        created = (await retry_unavailable(f"read {subject}", lambda: _stream_info(
            self.bus, cfg.quote_stream, "quote stream"), logger=log)).created
        reader = _Reader(self.bus, cfg.quote_stream, subject, f"read {subject}", created=created)
        async for d in reader.messages(start_seq, stop=None):
            item: QuoteBatch | FeedError
            try:
                item = decode_quotes(d.msg.data)
            except FeedError as exc:
                self.bad_messages += 1
                log.warning("quote stream: message %d of %s is not a quote batch: %s", d.seq, subject, exc)
                item = exc
            yield d.seq, item
