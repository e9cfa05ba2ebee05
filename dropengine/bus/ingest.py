"""Quotes onto the bus: today's sources (a replayed recording, the live fan-in) feeding the
partitioned quote stream instead of one engine.

:class:`BusIngest` is an ``ingest(quotes, now_ms)`` callable as :mod:`dropengine.server.sources`
calls it. It splits each batch by partition (:func:`~dropengine.core.partition.partition_of`
of the quote's ``event_id``, the one rule every partitioned piece uses), keeps each
partition's quotes in their arrival order, and publishes one message per partition (more when
a batch would exceed the server's largest message). It returns only when every message is
acknowledged, so a source that awaits it (the sources do) never runs ahead of the bus: that is
the backpressure, and at most one message per partition is in flight. While the quote stream
does not answer (a leader election, a node down) a message is retried with its own message id
until the bus stores it (once), holding the source back; a definite refusal ends it.

Order is what detection needs: a partition's messages are published one after another, and a
batch's messages before the next batch's. The messages of one batch share its ``now_ms``, so a
detector stamps their alerts as one engine given the whole batch would (detection does not
depend on how the input is chunked, SPEC 3).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from ..core.errors import BusError, ConfigError, short_repr
from ..core.partition import partition_of
from ..core.quote import Quote
from .codec import encode_quotes
from .connect import Bus, BusUnavailable, StreamNotFound, record_partitions, retry_unavailable
from .log import QuoteLog, new_quote_id

__all__ = ["BusIngest", "IngestStats"]

#: Keep a message this far below the server's ``max_payload`` (room for headers).
_PAYLOAD_SHARE: Final = 0.9
#: ``max_payload`` when the server does not say (nats-server's default).
_DEFAULT_MAX_PAYLOAD: Final = 1 << 20
#: Pauses between attempts to publish while the bus does not answer (doubling).
_RETRY_FIRST_S: Final = 0.1
_RETRY_MAX_S: Final = 2.0

log = logging.getLogger("dropengine.bus.ingest")


@dataclass(frozen=True, slots=True)
class IngestStats:
    """What an ingest has published."""

    #: Batches handed to it (calls).
    batches: int = 0
    #: Quotes published.
    quotes: int = 0
    #: Messages published (per partition, split ones counted each).
    messages: int = 0
    #: Bytes of message payload published.
    bytes: int = 0
    #: The quote stream's last sequence published (0: none).
    last_seq: int = 0
    #: Publish attempts repeated because the bus did not answer (same message id).
    retries: int = 0


class BusIngest:
    """``await BusIngest(bus, partitions)(quotes, now_ms)`` publishes ``quotes`` to the quote
    stream of ``bus``, one message per partition of ``partitions`` (recorded in the stream
    before the first message, so detectors of another count refuse to start)."""

    def __init__(self, bus: Bus, partitions: int, *, repartition: bool = False, record: bool = True) -> None:
        partition_of("", partitions)  # the core's check of the count (ConfigError naming it)
        self.bus = bus
        self.partitions = partitions
        #: Before the first message, the count is recorded in the quote stream (``record``), as
        #: ``ensure_streams(partitions=)`` does: another recorded count is a ConfigError naming
        #: both unless ``repartition``. (``record=False``: a caller that recorded it already.)
        self.repartition = repartition
        self._recorded = not record
        self.log = QuoteLog(bus)
        self._n: dict[str, int] = dict.fromkeys(IngestStats.__dataclass_fields__, 0)
        #: Messages published per partition.
        self.per_partition = [0] * partitions
        #: The stream sequence of each partition's last message (0: none yet).
        self.last_seqs = [0] * partitions
        max_payload = getattr(getattr(bus, "nc", None), "max_payload", None)
        self.max_bytes = int((max_payload if isinstance(max_payload, int) and max_payload > 0
                              else _DEFAULT_MAX_PAYLOAD) * _PAYLOAD_SHARE)

    @property
    def stats(self) -> IngestStats:
        """A frozen copy of the counters."""
        return IngestStats(**self._n)

    async def __call__(self, quotes: list[Quote], now_ms: int) -> None:
        if type(now_ms) is not int or now_ms < 0:
            raise ConfigError(f"now_ms: {short_repr(now_ms)} must be a non-negative integer (unix ms)")
        groups: dict[int, list[Quote]] = {}
        count = self.partitions
        for q in quotes:
            i = partition_of(q.event_id, count)
            group = groups.get(i)
            if group is None:
                groups[i] = [q]
            else:
                group.append(q)
        self._n["batches"] += 1
        if not groups:
            return
        if not self._recorded:  # the detectors check it: another P would silently lose events
            await retry_unavailable("ingest: record the partition count",
                                    lambda: record_partitions(self.bus, self.partitions, repartition=self.repartition))
            self._recorded = True
        if len(groups) == 1:
            ((i, group),) = groups.items()
            await self._partition(i, group, now_ms)
            return
        # partitions in parallel (one message in flight each), each partition's in order
        results = await asyncio.gather(*(self._partition(i, g, now_ms) for i, g in groups.items()),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _partition(self, i: int, quotes: list[Quote], now_ms: int) -> None:
        for chunk in self._chunks(quotes, now_ms):
            seq = await self._publish(i, now_ms, chunk)
            n = self._n
            n["messages"] += 1
            n["quotes"] += len(chunk)
            if seq > n["last_seq"]:
                n["last_seq"] = seq
            self.per_partition[i] += 1
            self.last_seqs[i] = seq

    async def _publish(self, i: int, now_ms: int, chunk: list[Quote]) -> int:
        """One message, published until the bus stores it: while the quote stream does not
        answer (no leader during an election, a timeout) it is retried with the SAME message
        id, so it is stored once however often an attempt landed unacknowledged, and the
        source is held back meanwhile (backpressure). A definite refusal (too large, the
        stream deleted, the connection closed) leaves as :class:`BusError`."""
        message_id = new_quote_id(i)

        async def attempt() -> int:
            return await self.log.publish(i, now_ms, chunk, message_id=message_id)

        async def failed() -> None:
            self._n["retries"] += 1
            # no responders is also what a DELETED stream answers: look whether it is there
            await self._stream_exists()

        return await retry_unavailable(f"ingest: partition {i} (the source is held back meanwhile)", attempt,
                                       logger=log, first_s=_RETRY_FIRST_S, max_s=_RETRY_MAX_S, on_failure=failed)

    async def _stream_exists(self) -> None:
        """:class:`StreamNotFound` when the quote stream is gone; a bus that does not answer
        this either is just the outage going on."""
        from nats.js.errors import NotFoundError

        stream = self.bus.config.quote_stream
        try:
            with self.bus.translate(f"info of {stream}"):
                try:
                    await self.bus.js.stream_info(stream)
                except NotFoundError:
                    raise StreamNotFound(f"the quote stream {stream} on {self.bus.server} was deleted "
                                         "(stream not found): nothing stores the quotes") from None
        except BusUnavailable:
            pass

    def _chunks(self, quotes: list[Quote], now_ms: int) -> list[list[Quote]]:
        """``quotes`` in consecutive pieces each of which fits one message."""
        size = len(encode_quotes(now_ms, quotes))
        if size <= self.max_bytes:
            self._n["bytes"] += size
            return [quotes]
        if len(quotes) == 1:
            raise BusError(f"a quote of event {short_repr(quotes[0].event_id)} is {size} bytes encoded, more than "
                           f"the bus's largest message ({self.max_bytes} bytes)")
        mid = len(quotes) // 2
        return self._chunks(quotes[:mid], now_ms) + self._chunks(quotes[mid:], now_ms)
