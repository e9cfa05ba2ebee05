"""One partition's detector: quotes from the bus in, alerts to the alert log out, exactly once.

A :class:`Detector` runs one :class:`~dropengine.core.engine.DropEngine` over the quote
messages of partition ``I`` of ``P`` (subject ``{prefix}.quotes.{I}``) and publishes every
alert to ``{prefix}.alerts.{I}``. Partitions split by event (:func:`~dropengine.core.partition.partition_of`)
and no detection state crosses events, so ``P`` detectors together publish what one engine
over all the quotes detects (in another interleaving between partitions).

Exactly once, across crashes:

- **Position.** Every few seconds, after a fully processed quote message, the engine's
  snapshot and that message's stream sequence are saved (:mod:`.checkpoint`). A restart
  restores them and reads on from the next message; the engine is deterministic (alerts are
  stamped with the message's ``now_ms``), so it detects again exactly the alerts it had
  detected after the checkpoint.
- **Source skip.** Each alert carries its source position ``(qseq, k)`` (quote message, index
  among that message's alerts). At start the detector reads the position of the last alert on
  its subject and skips every re-detected alert at or before it: exact, however old.
- **Message ids.** ``Nats-Msg-Id: p{I}.{P}.{qepoch}.{qseq}.{k}``: a publish repeated after a
  lost acknowledgement is dropped by the stream's duplicate window.
- **Quote epoch.** Positions count in one quote stream, named by its creation time (its
  epoch, in the checkpoint, the source header and the message id): a checkpoint of another
  epoch is refused, and a source position of another epoch is never compared.
- **One writer.** A lease (:mod:`.lease`) names the partition's detector; each publish also
  expects the subject's last sequence to be the one this detector last wrote, so a second
  writer (a paused process whose lease expired) fails with :class:`FencedError` and stops
  instead of publishing a second copy. A subject found BELOW the expected sequence was
  recreated or purged (:class:`~.log.LogRewound`), not written by another detector: the
  detector re-reads its position and goes on.

At start the detector also refuses a partition count other than the one ingest recorded in
the quote stream, and records its options in the registry (:mod:`.registry`) for the frontends.

A quote message that cannot be decoded is skipped, counted and logged with its sequence; a
quote of another partition (an ``ingest`` run with another ``--partitions``) is dropped and
counted, so state never mixes partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ..core.alerts import Alert
from ..core.engine import DropEngine
from ..core.errors import BusError, ConfigError, FeedError, FencedError, SnapshotError, short_repr
from ..core.options import DetectOptions
from ..core.partition import partition_of
from ..core.quote import Quote
from . import checkpoint as ckpt
from .codec import QuoteBatch
from .connect import Bus, recorded_partitions, retry_unavailable
from .lease import Lease, LeaseValue, new_owner
from .log import AlertLog, LogRewound, QuoteLog, epoch_of
from .registry import record_detector

__all__ = ["Detector", "DetectorStats", "missing_streams"]

log = logging.getLogger("dropengine.bus.detector")

#: Longest pause between two attempts to publish while the bus is unreachable.
_RETRY_MAX_S: Final = 2.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DetectorStats:
    """What a detector has done since it started (a status line, a test's check)."""

    #: Quote messages fully processed (decoded or not).
    messages: int = 0
    #: Quotes handed to the engine.
    quotes: int = 0
    #: Alerts the engine detected (re-detections after a restart included).
    detected: int = 0
    #: Alerts this process appended to the log.
    published: int = 0
    #: Re-detected alerts not published again: their source position was already in the log.
    skipped: int = 0
    #: Publishes the log's duplicate window dropped (a repeat after a lost acknowledgement).
    duplicates: int = 0
    #: Quote messages that could not be decoded (skipped).
    bad_messages: int = 0
    #: Quotes of another partition in this partition's subject (dropped).
    foreign: int = 0
    #: Checkpoints saved.
    checkpoints: int = 0
    #: The stream sequence of the last quote message processed (0: none yet).
    quote_seq: int = 0

    def line(self) -> str:
        """One status line."""
        return (f"{self.messages:,} messages, {self.quotes:,} quotes, {self.detected:,} alerts detected, "
                f"{self.published:,} published, {self.skipped:,} already in the log, {self.bad_messages:,} bad "
                f"messages, {self.foreign:,} foreign quotes, {self.checkpoints:,} checkpoints, "
                f"at quote message {self.quote_seq:,}")


class Detector:
    """The detector of partition ``partition`` of ``partitions`` with ``options``.

    ``checkpoint_every_s``: seconds between checkpoints (after a fully processed message;
    also once when it stops). ``lease_ttl_s``: the lease's length (renewed every third).
    ``clock``: seconds since the epoch (``time.time``), for the lease, the checkpoints and
    the alerts' produced time. ``fresh``: ignore a saved checkpoint and start an empty engine
    from the start of the retained quote log (alerts whose source position the log already
    holds are still not published again). ``wait``: wait for a lease held by another
    detector (a standby) instead of raising :class:`~.lease.LeaseHeld`; ``on_wait`` hears of
    each holder waited for, ``on_start`` of the detector once it holds the lease and has
    loaded its checkpoint.
    """

    def __init__(self, bus: Bus, partition: int, partitions: int, options: DetectOptions, *,
                 checkpoint_every_s: float = 2.0, lease_ttl_s: float = 6.0,
                 clock: Callable[[], float] = time.time, fresh: bool = False, wait: bool = True,
                 owner: str | None = None, on_wait: Callable[[LeaseValue], None] | None = None,
                 on_start: Callable[[Detector], None] | None = None) -> None:
        if not isinstance(options, DetectOptions):
            raise ConfigError(f"options: {short_repr(options)} is not a DetectOptions")
        if not (isinstance(partitions, int) and isinstance(partition, int) and 0 <= partition < partitions):
            raise ConfigError(f"partition: {partition!r}/{partitions!r} must be I/P with 0 <= I < P")
        partition_of("", partitions)  # the core's check of the partition count
        if not (isinstance(checkpoint_every_s, (int, float)) and 0 < checkpoint_every_s <= 86400):
            raise ConfigError(f"checkpoint_every_s: {short_repr(checkpoint_every_s)} must be a positive number of "
                              "seconds (at most a day)")
        self.bus = bus
        self.partition = partition
        self.partitions = partitions
        self.options = options
        self.checkpoint_every_s = float(checkpoint_every_s)
        self.fresh = fresh
        self.wait = wait
        self.on_wait = on_wait
        self.on_start = on_start
        self._clock = clock
        self.name = ckpt.object_name(partition, partitions)
        self.lease = Lease(bus, self.name, owner or new_owner(), lease_ttl_s, clock=clock)
        self.engine: DropEngine | None = None
        #: Where the run started reading (set once the checkpoint is loaded).
        self.start_seq = 0
        #: How the engine started: "checkpoint at N", "fresh" or "empty".
        self.origin = ""
        #: Quote messages (of every partition) after the checkpoint that the quote stream no
        #: longer held at start (retention): a gap in this detector's input, logged.
        self.trimmed = 0
        self._n: dict[str, int] = dict.fromkeys(DetectorStats.__dataclass_fields__, 0)
        self._alerts = AlertLog(bus, partitions=partitions)
        self._quotes = QuoteLog(bus)
        #: The quote stream's epoch (set at start): positions and message ids count in it.
        self.quote_epoch = ""
        self._quote_last = 0  # the quote stream's last sequence, as last looked at
        #: The alert log's epoch when its position was last read.
        self.log_epoch = ""
        self._expect = 0  # the last stream sequence on this partition's alert subject
        self._last_source: tuple[int, int] = (0, -1)  # re-detections at or before it are skipped
        self._saved_seq = -1  # the quote_seq of the last checkpoint saved
        self._last_save = 0.0  # when (the clock) the last checkpoint was taken
        self._until: int | None = None  # run(until_seq=)

    @property
    def stats(self) -> DetectorStats:
        """A frozen copy of the counters."""
        return DetectorStats(**self._n)

    def _ms(self) -> int:
        return int(self._clock() * 1000)

    # -- start ---------------------------------------------------------------------------
    async def _start(self) -> None:
        """The lease is held: look at the quote stream (its epoch, its partition count), record
        this detector's options, load the checkpoint, find the log's last source position."""
        await self._retry(f"look at {self.bus.config.quote_stream}", self._look_at_quotes)
        await self._retry(f"record {self.name} in {self.bus.config.detector_bucket}", lambda: record_detector(
            self.bus, self.partition, self.partitions, self.options, self._ms()))
        cp = None if self.fresh else await self._retry(
            f"load checkpoint {self.name}", lambda: ckpt.load(self.bus, self.partition, self.partitions))
        if cp is not None:
            ckpt.check_options(cp, self.options)
            ckpt.check_quote_epoch(cp, self.quote_epoch)
            try:
                self.engine = DropEngine.restore(cp.engine)
            except SnapshotError as exc:
                raise SnapshotError(f"checkpoint {self.name} (bucket {self.bus.config.checkpoint_bucket}): {exc}; "
                                    "start with --fresh to discard it") from None
            self.start_seq = cp.quote_seq + 1
            self._n["quote_seq"] = self._saved_seq = cp.quote_seq
            self.origin = f"checkpoint at quote message {cp.quote_seq}"
        else:
            self.engine = DropEngine.from_options(self.options)
            self.start_seq = 1
            self.origin = "fresh (checkpoint ignored)" if self.fresh else "empty (no checkpoint)"
        if cp is not None:
            await self._retry(f"look at {self.bus.config.quote_stream}", self._check_trimmed)
        await self._retry(f"read the end of {self.bus.config.alert_subject(self.partition)}", self._sync_log)
        self._last_save = self._clock()
        log.info("%s: engine %s; reading quotes from message %d; alert log at %d, last source %s",
                 self.name, self.origin, self.start_seq, self._expect, self._last_source)

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A start-up step through a bus that does not answer (a bucket or stream without a
        leader yet, an election): waited out like the running phase does, until the caller is
        stopped (it cancels); definite errors leave at once."""
        return await retry_unavailable(f"{self.name}: {what}", call, logger=log, max_s=_RETRY_MAX_S)

    async def _look_at_quotes(self) -> None:
        """The quote stream's epoch (positions count in it) and the partition count ingest
        recorded: another one is refused (:class:`ConfigError` naming both), since this
        detector would read a subject ingest does not split by its P."""
        stream = self.bus.config.quote_stream
        with self.bus.translate(f"info of {stream}"):
            info = await self.bus.js.stream_info(stream)
        self.quote_epoch = epoch_of(info.created)
        self._quote_last = int(info.state.last_seq or 0)
        recorded = recorded_partitions(info)
        if recorded is not None and recorded != self.partitions:
            raise ConfigError(
                f"partition: the quote stream {stream} is split into {recorded} partitions (ingest --partitions "
                f"{recorded}), but this detector runs {self.partition}/{self.partitions} ({self.partitions} "
                f"partitions): run --partition I/{recorded}, one detector per I")

    async def _check_trimmed(self) -> None:
        """Say so when the quote stream no longer holds the messages after the checkpoint
        (retention trimmed them while the detector was down): their quotes are lost to it."""
        stream = self.bus.config.quote_stream
        with self.bus.translate(f"info of {stream}"):
            info = await self.bus.js.stream_info(stream)
        first = int(info.state.first_seq or 0)
        if first > self.start_seq:
            log.warning("%s: quote messages %d to %d were trimmed from %s before this detector read them (its "
                        "checkpoint is older than the stream's retention): their quotes are lost to it",
                        self.name, self.start_seq, first - 1, stream)
            self.trimmed = first - self.start_seq

    async def _sync_log(self) -> None:
        """The subject's last sequence (the fence) and the last source position (the skip):
        compared only when it counts in this quote stream (its epoch; a position written
        without one is taken as this stream's)."""
        seq, epoch, source = await self._alerts.last_source(self.partition)
        self._expect = seq
        self.log_epoch = await self._alerts.epoch()
        if source is None:
            return
        if epoch is not None and epoch != self.quote_epoch:
            log.info("%s: the log's last alert came from quote stream epoch %s, not %s: its position is not "
                     "compared", self.name, epoch, self.quote_epoch)
            return
        if source[0] > self._quote_last:  # beyond what the stream held at start: is it still?
            with self.bus.translate(f"info of {self.bus.config.quote_stream}"):
                info = await self.bus.js.stream_info(self.bus.config.quote_stream)
            self._quote_last = int(info.state.last_seq or 0)
            if source[0] > self._quote_last:
                # no detector of this quote stream wrote it (a tool, another deployment):
                # trusting it would skip every alert up to it, i.e. silence the partition
                log.warning("%s: the log's last alert (sequence %d) names quote message %d, beyond the quote "
                            "stream's last (%d): its position is not trusted", self.name, seq, source[0],
                            self._quote_last)
                return
        if source > self._last_source:
            self._last_source = source

    # -- run -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None, *, until_seq: int | None = None) -> DetectorStats:
        """Detect until ``stop`` is set (forever without one), or with ``until_seq`` until the
        quote message at that stream sequence or a later one is processed (a bounded run: a
        test, a benchmark, a catch-up); returns the counters.

        Raises :class:`FencedError` when another detector holds (``wait=False``) or takes the
        partition, :class:`ConfigError` / :class:`~dropengine.core.errors.SnapshotError`
        for a checkpoint this detector must not use, :class:`BusError` for a definite failure
        at start (a stream not found). A bus that does not answer (a timeout, no responders,
        no leader yet) is waited for, at start as while running (publishes are retried;
        nothing is skipped), until ``stop``.
        """
        stop = stop if stop is not None else asyncio.Event()
        self._until = until_seq
        stopped = asyncio.ensure_future(stop.wait())
        try:
            acquiring = asyncio.ensure_future(self._retry(
                f"take lease {self.name}", lambda: self.lease.acquire(self._ms(), self.wait, self.on_wait)))
            done, _ = await asyncio.wait({acquiring, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if acquiring not in done:
                acquiring.cancel()
                with contextlib.suppress(asyncio.CancelledError, BusError):
                    await acquiring
                return self.stats
            acquiring.result()
            lost = asyncio.Event()
            renewing = asyncio.ensure_future(self._renew(lost))
            clean = fenced = False
            try:
                starting = asyncio.ensure_future(self._start())
                done, _ = await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if starting not in done:  # stopped while the bus did not answer: nothing read yet
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
                    return self.stats
                starting.result()
                if self.on_start is not None:
                    self.on_start(self)
                await self._consume(stopped, lost)
                clean = True
            except FencedError:
                fenced = True
                raise
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
                # the last checkpoint only after a clean stop: after an error the engine may be
                # ahead of the position (a message detected, its alerts not all published)
                if clean and self.lease.held:
                    with contextlib.suppress(BusError):
                        await self._checkpoint()
                if not fenced:  # a fenced detector's lease is someone else's now
                    await self.lease.release()
            return self.stats
        finally:
            stopped.cancel()

    async def _renew(self, lost: asyncio.Event) -> None:
        """Renew the lease every third of it; on :class:`FencedError` set ``lost``."""
        pause = self.lease.ttl_ms / 3000
        while True:
            await asyncio.sleep(pause)
            try:
                await self.lease.renew(self._ms())
            except FencedError as exc:
                log.error("%s: %s: stopping", self.name, exc)
                lost.set()
                return
            except BusError as exc:  # the bus is away: the lease runs on until it expires
                log.warning("%s: lease not renewed: %s", self.name, exc)

    async def _consume(self, stopped: asyncio.Future[Any], lost: asyncio.Event) -> None:
        reader = self._quotes.read(self.partition, self.start_seq)
        fenced = asyncio.ensure_future(lost.wait())
        nxt: asyncio.Future[tuple[int, QuoteBatch | FeedError]] | None = None
        until = self._until
        try:
            while until is None or self._n["quote_seq"] < until:
                if nxt is None:
                    nxt = asyncio.ensure_future(_anext(reader))
                timeout = None
                if self._n["quote_seq"] != self._saved_seq:  # something to checkpoint
                    timeout = max(0.0, self._next_save - self._clock())
                done, _ = await asyncio.wait({nxt, stopped, fenced}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if fenced in done:
                    raise FencedError(f"lease {self.name}: taken by another detector")
                if stopped in done and nxt not in done:
                    return
                if nxt not in done:  # the checkpoint is due while no message comes
                    await self._checkpoint()
                    continue
                seq, item = nxt.result()
                nxt = None
                await self._process(seq, item, lost)
                if self._clock() >= self._next_save:
                    await self._checkpoint()
                if stopped in done:
                    return
        finally:
            fenced.cancel()
            if nxt is not None and not nxt.done():
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, BusError, StopAsyncIteration):
                    await nxt
            with contextlib.suppress(Exception):
                await reader.aclose()

    @property
    def _next_save(self) -> float:
        return self._last_save + self.checkpoint_every_s

    async def _process(self, seq: int, item: QuoteBatch | FeedError, lost: asyncio.Event) -> None:
        """One quote message: detect, publish what the log does not hold yet, advance."""
        n = self._n
        assert self.engine is not None
        if isinstance(item, FeedError):
            n["bad_messages"] += 1
            log.warning("%s: quote message %d skipped: %s", self.name, seq, item)
        else:
            quotes: list[Quote] = item.quotes
            mine = quotes
            if self.partitions > 1:
                # judged per event, not per quote (a message holds a few events, many quotes)
                me, count = self.partition, self.partitions
                foreign = {e for e in {q.event_id for q in quotes} if partition_of(e, count) != me}
                if foreign:
                    mine = [q for q in quotes if q.event_id not in foreign]
            if len(mine) != len(quotes):
                if n["foreign"] == 0:
                    log.warning("%s: quote message %d holds quotes of other partitions (does ingest run with "
                                "another --partitions?): dropped and counted", self.name, seq)
                n["foreign"] += len(quotes) - len(mine)
            alerts = self.engine.observe_many(mine, now_ms=item.now_ms)
            n["quotes"] += len(mine)
            n["detected"] += len(alerts)
            if alerts:
                await self._publish(seq, alerts, lost)
        n["messages"] += 1
        n["quote_seq"] = seq

    async def _publish(self, seq: int, alerts: list[Alert], lost: asyncio.Event) -> None:
        """Append the message's alerts in order, skipping those the log holds; while the bus
        is unreachable retry (after renewing the lease and reading the log's position again,
        so a publish whose acknowledgement was lost is neither lost nor repeated)."""
        n = self._n
        k = 0
        pause = 0.1
        while k < len(alerts):
            if lost.is_set():
                raise FencedError(f"lease {self.name}: taken by another detector")
            if (seq, k) <= self._last_source:
                n["skipped"] += 1
                k += 1
                continue
            try:
                if self.lease.due(self._ms()):
                    await self.lease.renew(self._ms())
                got = await self._alerts.publish(self.partition, alerts[k], qseq=seq, k=k, produced_ms=self._ms(),
                                                 expect_last=self._expect, qepoch=self.quote_epoch)
            except FencedError:
                raise
            except LogRewound as exc:
                # recreated or purged under us: not another writer; its new position is the fence
                before = self.log_epoch
                await self._retry(f"read the end of {self.bus.config.alert_subject(self.partition)}", self._sync_log)
                log.warning("%s: %s (it was epoch %s): re-synced at sequence %d; alerts published before are "
                            "gone with it", self.name, exc, before, self._expect)
                continue
            except BusError as exc:
                log.warning("%s: publish of alert %d.%d failed (%s); retrying in %.1f s", self.name, seq, k, exc,
                            pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _RETRY_MAX_S)
                try:
                    await self.lease.renew(self._ms())  # FencedError (another detector took over) stops
                    await self._sync_log()
                except FencedError:
                    raise
                except BusError:
                    pass  # still away: the next attempt tries again
                continue
            if self._alerts.duplicates != n["duplicates"]:  # a repeat the log had already stored
                n["duplicates"] = self._alerts.duplicates
            else:
                n["published"] += 1
            self._expect = max(self._expect, got)
            self._last_source = (seq, k)
            pause = 0.1
            k += 1

    async def _checkpoint(self) -> None:
        """Save the engine after the last fully processed message (when it moved)."""
        seq = self._n["quote_seq"]
        self._last_save = self._clock()
        if self.engine is None or seq == self._saved_seq:
            return
        cp = ckpt.Checkpoint(ckpt.VERSION, self.partition, self.partitions, seq, self.engine.snapshot(),
                             self.options.as_dict(), self._ms(), self.quote_epoch)
        try:
            await ckpt.save(self.bus, cp)
        except BusError as exc:  # the next one will do; the position only falls behind
            log.warning("%s: checkpoint at quote message %d not saved: %s", self.name, seq, exc)
            return
        self._saved_seq = seq
        self._n["checkpoints"] += 1


async def missing_streams(bus: Bus) -> list[str]:
    """The streams a detector reads and writes (quotes, alerts) that do not exist yet: their
    settings are ``dropengine ingest``'s, so a detector waits for them rather than creating them.
    :class:`~.connect.BusUnavailable` when the bus does not answer (the caller waits)."""
    from nats.js.errors import NotFoundError

    missing = []
    for stream in (bus.config.quote_stream, bus.config.alert_stream):
        with bus.translate(f"info of {stream}"):
            try:
                await bus.js.stream_info(stream)
            except NotFoundError:
                missing.append(stream)
    return missing


async def _anext(it: AsyncIterator[tuple[int, QuoteBatch | FeedError]]) -> tuple[int, QuoteBatch | FeedError]:
    return await it.__anext__()
