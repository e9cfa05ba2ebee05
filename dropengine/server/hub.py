"""One detector, many subscribers: the fan-out core of ``dropengine serve`` (SPEC section 7). Pure.

Detection runs once, in the caller's :class:`~dropengine.core.engine.DropEngine` at the lowest
thresholds the server accepts (1 cent, 0.25 points, ``direction=both``, ``reference=last``) with
every alert type on; the hub numbers each alert, whatever its type (``odds_drop``,
``line_move``, ``steam``), with a strictly increasing ``seq`` within an ``epoch`` (the SSE ``id``
``{epoch}-{seq}``), keeps recent alerts in a ring buffer (bounded by count and age), and
hands every subscriber the alerts its own filter accepts. With ``reference=last`` a
connection's threshold, line threshold, direction and types are exact post-filters: an alert
at threshold T is exactly a detection with ``|delta| >= T``.

A subscriber that reconnects with a cursor gets, atomically with its registration, every
matching buffered alert after the cursor, then live ones: no duplicate and no gap. When the
cursor is from another epoch, ahead of the hub, or older than what the buffer still holds,
it gets a ``reset`` first. Each subscriber's queue is bounded; one that falls behind by more
than ``max_pending`` is marked ``overflowed`` so the server cuts it (it can resume from its
last id) instead of letting memory grow or slowing the others.

Ids are never given to two alerts, even across a crash: with a ``reserve`` callback the hub
asks for a durable reservation (the server writes it to disk) before it issues an id beyond
the current one, a block at a time. A restart after an unclean stop continues after the
reservation (:meth:`Hub.skip_lost`); the skipped range is a *gap*: alerts that may have been
sent and were lost with the process. A cursor inside a gap gets a ``reset`` naming the crash;
a cursor before it resumes from the ring with no gap and no duplicate.

**Numbered by a log** (``logged=True``, ``dropengine serve --bus``): the ids are the alert
log's own sequence, so every frontend gives an alert the same id. :meth:`Hub.publish_logged`
takes entries already numbered, in log order, and checks that they are contiguous: a seq
beyond the next one is a *hole* ``(lo, hi]`` (messages the log no longer has, or never
delivered to this frontend). Every subscriber that had not received everything up to ``hi``
gets a ``reset`` in its queue at that point (the hole's alerts are lost to it; it goes on with
the alerts after the hole); a subscriber resuming from a cursor before or inside a hole gets
the same reset at the same point of its backlog. A seq at or below the last one is a
duplicate and dropped. A cursor ahead of this hub but not ahead of the log (another
frontend is further along) is honoured: the subscriber skips what it already has
(``floor``). A cursor older than the ring is served from the log by the caller
(:meth:`Hub.backfill` turns the entries read into frames, resets for what the log lacks), who
then subscribes once the ring covers the cursor, with no await in between.

Nothing here reads a clock or does I/O: times arrive as arguments, delivery and
reservation are callbacks.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from ..core.alerts import Alert
from ..core.epoch import new_epoch  # re-exported: the server's epochs, named by the core's rule
from ..core.errors import ConfigError
from ..core.filters import AlertFilter
from ..core.quote import MAX_MS
from ..formats.sse import encode_event

__all__ = [
    "Cursor", "Entry", "Hub", "HubCounters", "ResetNotice", "Subscriber", "new_epoch", "parse_cursor",
    "reset_frame", "sse_frame",
]

_ENC: Final = msgspec.json.Encoder()
_CURSOR: Final = re.compile(r"([0-9a-z]{1,32})-([0-9]{1,19})")


def sse_frame(obj: Any, event_id: str | None = None) -> bytes:
    """One SSE event of compact JSON (an optional ``id:`` line and one ``data:`` line), written
    by the one SSE encoder, :func:`dropengine.formats.sse.encode_event`."""
    return encode_event(_ENC.encode(obj), id=event_id)


def reset_frame(reason: str, event_id: str, now_ms: int) -> bytes:
    """The ``reset`` frame (SPEC 7: never a silent gap): why, and the id a client resumes from
    after it (also its SSE ``id``)."""
    return sse_frame({"type": "reset", "reason": reason, "id": event_id, "timestamp": now_ms}, event_id)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the alert sequence: ``{epoch}-{seq}``."""

    epoch: str
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}-{self.seq}"


def parse_cursor(text: str) -> Cursor | None:
    """``epoch-seq`` (lowercase base36 epoch) as a :class:`Cursor`; ``None`` if malformed."""
    m = _CURSOR.fullmatch(text.strip())
    return Cursor(m.group(1), int(m.group(2))) if m else None


@dataclass(frozen=True, slots=True)
class Entry:
    """One numbered alert (any type: :data:`~dropengine.core.alerts.Alert`), when it was
    produced, and its SSE frame bytes (encoded once, shared by every subscriber)."""

    seq: int
    alert: Alert
    produced_ms: int
    frame: bytes


@dataclass(frozen=True, slots=True)
class ResetNotice:
    """A ``reset`` queued between a subscriber's entries: the alerts ``(lo, seq]`` are lost to
    it (a hole in the log); ``frame`` is the reset frame, its id ``{epoch}-{seq}``."""

    seq: int
    reason: str
    frame: bytes


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection's side of the hub: its filter, its bounded queue of entries, and a
    ``notify`` callback the hub calls when something was queued (the server sets an event).

    ``floor``: the subscriber already has every id up to it (a cursor ahead of a hub numbered
    by a log: another frontend was further along); entries up to it are not queued."""

    filter: AlertFilter
    max_pending: int
    notify: Callable[[], None] = lambda: None
    pending: deque[Entry | ResetNotice] = field(default_factory=deque)
    overflowed: bool = False
    delivered: int = 0
    floor: int = 0
    #: Resets queued in ``pending`` (not counted as delivered alerts).
    notices: int = 0


@dataclass(slots=True)
class HubCounters:
    """Operator counters (``/metrics``)."""

    produced: int = 0
    #: ``produced`` by alert type (``odds_drop``, ``line_move``, ``steam``).
    by_type: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    overflowed: int = 0
    resets: int = 0
    resumed: int = 0
    #: Numbered by a log: holes seen (seqs the log skipped), and duplicates dropped.
    holes: int = 0
    hole_alerts: int = 0
    duplicates: int = 0


class Hub:
    """The ring buffer, the sequence and the subscribers. See the module docstring.

    ``epoch``: lowercase base36 text naming this sequence (a restored server keeps it);
    ``next_seq``: the number the next alert gets. ``buffer_size``/``buffer_age_ms`` bound
    the ring; ``max_pending`` bounds each subscriber's queue. ``logged``: numbered by an alert
    log (:meth:`publish_logged`; the epoch is the log's), not by this hub (:meth:`publish`).
    """

    def __init__(
        self,
        epoch: str,
        *,
        next_seq: int = 1,
        buffer_size: int = 10_000,
        buffer_age_ms: int = 300_000,
        max_pending: int = 2_000,
        entries: Iterable[Entry] = (),
        evicted_ms: int = -1,
        gaps: Iterable[tuple[int, int]] = (),
        reserve: Callable[[int], bool | None] | None = None,
        reserve_block: int = 10_000,
        logged: bool = False,
    ) -> None:
        if parse_cursor(f"{epoch}-0") is None:
            raise ConfigError(f"epoch: {epoch!r} must be 1-32 lowercase letters or digits")
        for name, value in (("buffer_size", buffer_size), ("max_pending", max_pending), ("next_seq", next_seq),
                            ("reserve_block", reserve_block)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: {value!r} must be a positive integer")
        if not (isinstance(buffer_age_ms, int) and buffer_age_ms >= 0):
            raise ConfigError(f"buffer_age_ms: {buffer_age_ms!r} must be a non-negative integer")
        self.epoch = epoch
        self.next_seq = next_seq
        self.buffer_size = buffer_size
        self.buffer_age_ms = buffer_age_ms
        self.max_pending = max_pending
        self.buffer: deque[Entry] = deque(entries, maxlen=buffer_size)
        self.subscribers: set[Subscriber] = set()
        self.counters = HubCounters()
        #: Newest production time among alerts already evicted (by size or age): a ``since``
        #: before it cannot be served in full.
        self.evicted_ms = evicted_ms
        if evicted_ms < 0 and next_seq > 1 + len(self.buffer):  # evicted before we knew: assume the latest
            self.evicted_ms = self.buffer[0].produced_ms if self.buffer else MAX_MS
        #: Id ranges ``(lo, hi]`` skipped after unclean stops: never issued again, maybe seen.
        self.gaps: list[tuple[int, int]] = sorted((int(lo), int(hi)) for lo, hi in gaps)
        #: Called with ``n`` before any id above :attr:`reserved` is issued; ids up to ``n``
        #: are reserved once it returns, unless it returns ``False`` (it could not: it is
        #: called again before the next id). ``None``: no reservation needed (no state file).
        self.reserve = reserve
        self.reserve_block = reserve_block
        self.reserved = next_seq - 1
        #: Numbered by an alert log (:meth:`publish_logged`), not by this hub (:meth:`publish`).
        self.logged = logged
        if logged and reserve is not None:
            raise ConfigError("reserve: a hub numbered by a log reserves no ids (the log numbers them)")
        #: Holes ``(lo, hi]`` seen in the log's sequence (the newest 64).
        self.holes: list[tuple[int, int]] = []
        #: The resets of holes still inside the ring (one frame per hole, shared).
        self._hole_notices: deque[tuple[int, int, ResetNotice]] = deque()
        self._last_ms = 0
        #: Called with every batch of entries published (each alert once, numbered, before any
        #: connection's filter): the server-wide sinks (:mod:`.delivery`). A tap must not block.
        self.taps: list[Callable[[list[Entry]], None]] = []

    def __repr__(self) -> str:
        return f"Hub(epoch={self.epoch!r}, next_seq={self.next_seq}, buffered={len(self.buffer)}, " \
               f"subscribers={len(self.subscribers)})"

    @property
    def high_water(self) -> Cursor:
        """The id of the newest alert numbered so far (``seq`` 0 before the first)."""
        return Cursor(self.epoch, self.next_seq - 1)

    # -- producing ---------------------------------------------------------------------------
    def publish(self, alerts: Iterable[Alert], now_ms: int) -> list[Entry]:
        """Number, buffer and fan out ``alerts`` (produced at ``now_ms``), in order."""
        if self.logged:
            raise ConfigError("publish: this hub is numbered by a log; use publish_logged")
        out: list[Entry] = []
        subs = self.subscribers
        by_type = self.counters.by_type
        for d in alerts:
            seq = self.next_seq
            if seq > self.reserved and self.reserve is not None and \
                    self.reserve(seq + self.reserve_block - 1) is not False:  # durable before the id leaves
                self.reserved = seq + self.reserve_block - 1  # (False: not written; asked again next time)
            self.next_seq = seq + 1
            event_id = f"{self.epoch}-{seq}"
            entry = Entry(seq, d, now_ms, sse_frame(d, event_id))
            buf = self.buffer
            if len(buf) == buf.maxlen:
                self.evicted_ms = max(self.evicted_ms, buf[0].produced_ms)
            buf.append(entry)
            out.append(entry)
            by_type[d.type] = by_type.get(d.type, 0) + 1
            for sub in subs:
                if not sub.overflowed and sub.filter.accepts(d):
                    self._queue(sub, entry)
        self.counters.produced += len(out)
        self.trim(now_ms)
        if out:
            for tap in self.taps:
                tap(out)
            for sub in subs:
                if sub.pending or sub.overflowed:
                    sub.notify()
        return out

    def publish_logged(self, items: Iterable[tuple[int, Alert, int]], now_ms: int) -> list[Entry]:
        """Buffer and fan out alerts the log numbered: ``(seq, alert, produced_ms)`` in log
        order. A seq at or below the newest one is a duplicate (dropped, counted); one beyond
        the next expected is a hole: see :meth:`_hole`. Returns the entries added."""
        if not self.logged:
            raise ConfigError("publish_logged: this hub numbers its own alerts; use publish")
        self._last_ms = now_ms
        out: list[Entry] = []
        subs = self.subscribers
        by_type = self.counters.by_type
        epoch = self.epoch
        buf = self.buffer
        for seq, d, produced_ms in items:
            if seq < self.next_seq:
                self.counters.duplicates += 1
                continue
            if seq > self.next_seq:
                self._hole(self.next_seq - 1, seq - 1, now_ms)
            self.next_seq = seq + 1
            entry = Entry(seq, d, produced_ms, sse_frame(d, f"{epoch}-{seq}"))
            if len(buf) == buf.maxlen:
                self.evicted_ms = max(self.evicted_ms, buf[0].produced_ms)
            buf.append(entry)
            out.append(entry)
            by_type[d.type] = by_type.get(d.type, 0) + 1
            for sub in subs:
                if not sub.overflowed and sub.floor < seq and sub.filter.accepts(d):
                    self._queue(sub, entry)
        self.counters.produced += len(out)
        self.trim(now_ms)
        if out:
            for tap in self.taps:
                tap(out)
        for sub in subs:
            if sub.pending or sub.overflowed:
                sub.notify()
        return out

    def _hole(self, lo: int, hi: int, now_ms: int) -> None:
        """The log skipped ``(lo, hi]``: every subscriber that does not have ``hi`` yet gets a
        reset there (what the hole held is lost to it); it then goes on with what follows."""
        self.holes.append((lo, hi))
        del self.holes[:-64]
        self.counters.holes += 1
        self.counters.hole_alerts += hi - lo
        notice = self._notice(lo, hi, now_ms)
        kept = self._hole_notices
        oldest = self.buffer[0].seq if self.buffer else self.next_seq
        while kept and kept[0][1] < oldest - 1:  # behind the ring: a resume there reads the log
            kept.popleft()
        kept.append((lo, hi, notice))
        for sub in self.subscribers:
            if not sub.overflowed and sub.floor < hi:
                self._queue(sub, notice)
        self.next_seq = hi + 1

    def _notice(self, lo: int, hi: int, now_ms: int, *, why: str = "") -> ResetNotice:
        first, last = f"{self.epoch}-{lo + 1}", f"{self.epoch}-{hi}"
        span = first if lo + 1 == hi else f"{first}..{last}"
        reason = f"alerts {span} are missing from the alert log ({why or 'a hole in its sequence'}): " \
                 f"they are lost to this stream, which goes on after them"
        return ResetNotice(hi, reason, reset_frame(reason, last, now_ms))

    def _queue(self, sub: Subscriber, entry: Entry | ResetNotice) -> None:
        if len(sub.pending) >= sub.max_pending:
            sub.overflowed = True  # the server cuts it; it resumes from its last id
            sub.pending.clear()
            sub.notices = 0
            self.counters.overflowed += 1
        else:
            sub.pending.append(entry)
            if type(entry) is ResetNotice:
                sub.notices += 1
                self.counters.resets += 1

    def trim(self, now_ms: int) -> int:
        """Drop buffered alerts older than ``buffer_age_ms``; returns how many."""
        cutoff = now_ms - self.buffer_age_ms
        n = 0
        buf = self.buffer
        while buf and buf[0].produced_ms < cutoff:
            self.evicted_ms = max(self.evicted_ms, buf.popleft().produced_ms)
            n += 1
        return n

    # -- subscribing -------------------------------------------------------------------------
    def subscribe(
        self, flt: AlertFilter, cursor: Cursor | None = None, notify: Callable[[], None] | None = None,
        max_pending: int | None = None, *, log_first: int | None = None, log_last: int | None = None,
        reset: str | None = None,
    ) -> tuple[Subscriber, str | None]:
        """Register a subscriber and queue what it missed; returns it and, when its cursor or
        ``since`` cannot be honoured in full, the reason for a ``reset`` frame to send first.
        ``reset``: a reason known up front (a malformed cursor, :mod:`.params`; ``cursor`` is
        then ``None``), joined with ``since``'s own when that cannot be honoured either.

        Atomic (no awaits anywhere in the hub), so nothing published can fall between the
        backlog and the live alerts. Numbered by a log: ``log_last`` is the log's newest seq
        (a cursor up to it but ahead of this hub is honoured, see :class:`Subscriber`), and
        the backlog carries a reset at each hole after the cursor.
        """
        sub = Subscriber(flt, max_pending if max_pending is not None else self.max_pending)
        if notify is not None:
            sub.notify = notify
        reason: str | None = None
        backlog: Iterable[Entry | ResetNotice] = ()
        oldest = self.buffer[0].seq if self.buffer else self.next_seq
        if cursor is not None:
            gap = self._gap_of(cursor.seq) if cursor.epoch == self.epoch else None
            if cursor.epoch != self.epoch:
                reason = f"cursor {cursor} is from another epoch (now {self.epoch})"
            elif gap is not None:
                reason = f"the server restarted after an unclean stop (crash or kill): alerts it sent after " \
                         f"{self.epoch}-{gap[0]} (ids up to {self.epoch}-{gap[1]}) were lost with it; resuming from now"
            elif cursor.seq >= self.next_seq:
                if self.logged and log_last is not None and cursor.seq <= log_last:
                    sub.floor = cursor.seq  # another frontend was further along: skip what it has
                    self.counters.resumed += 1
                elif self.logged:
                    newest = f"{self.epoch}-{max(log_last if log_last is not None else 0, self.next_seq - 1)}"
                    reason = f"cursor {cursor} is ahead of the alert log (newest {newest})"
                else:
                    reason = f"cursor {cursor} is ahead of this server (newest {self.high_water})"
            elif self.logged and log_first is not None and cursor.seq < log_first - 1:
                reason = f"alerts after {cursor} are no longer in the alert log (trimmed by its retention; " \
                         f"oldest kept: {self.epoch}-{log_first}); resuming from now"
            elif cursor.seq < self._newest_evicted(oldest):
                reason = f"alerts after {cursor} are no longer buffered (oldest kept: {self.epoch}-{oldest})"
            else:
                backlog = self._walk(cursor.seq) if self.logged else (e for e in self.buffer if e.seq > cursor.seq)
                self.counters.resumed += 1
        elif flt.since is not None:
            if flt.since < self.evicted_ms:
                reason = f"alerts since {flt.since} are not all buffered (evicted up to {self.evicted_ms})"
            backlog = (e for e in self.buffer if e.produced_ms > flt.since)
        if reset is not None:
            reason = reset if reason is None else f"{reset}; {reason}"
        if reason is not None:
            self.counters.resets += 1
            if cursor is not None:
                backlog = ()  # a client after a reset starts from now (or from since, if it gave one)
                if flt.since is not None:
                    backlog = (e for e in self.buffer if e.produced_ms > flt.since)
        for e in backlog:
            if type(e) is ResetNotice or flt.accepts(e.alert):  # type: ignore[union-attr]
                self._queue(sub, e)
        self.subscribers.add(sub)
        return sub, reason

    def _walk(self, after: int) -> Iterator[Entry | ResetNotice]:
        """The ring after ``after``, with each hole's reset where the hole is."""
        expected = after + 1
        for e in self.buffer:
            if e.seq < expected:
                continue
            if e.seq > expected:
                yield self._hole_notice(expected - 1, e.seq - 1)
            yield e
            expected = e.seq + 1

    def _hole_notice(self, lo: int, hi: int) -> ResetNotice:
        """The reset of the hole ending at ``hi`` (made when it was seen)."""
        for _, h, notice in reversed(self._hole_notices):
            if h == hi:
                return notice
        return self._notice(lo, hi, self._last_ms)  # (not kept: older than the ring's holes)

    def position(self, sub: Subscriber) -> Cursor:
        """The id up to which ``sub`` has been handed (or skipped) every alert: what its
        heartbeats carry, a safe cursor to resume from."""
        return Cursor(self.epoch, max(sub.floor, self.next_seq - 1))

    def unbuffered_upto(self) -> int:
        """The newest id this hub numbered or followed that its ring no longer holds (0: none):
        a cursor below it needs the log (:meth:`backfill`) before it can subscribe."""
        oldest = self.buffer[0].seq if self.buffer else self.next_seq
        return self._newest_evicted(oldest)

    def backfill(self, after: int, upto: int, items: Iterable[tuple[int, Alert, int]], flt: AlertFilter,
                 now_ms: int) -> list[Entry | ResetNotice]:
        """What a subscriber at ``after`` gets of the log's ``(after, upto]``: ``items`` are
        the entries read from the log for that range (``(seq, alert, produced_ms)`` in order);
        the ones ``flt`` accepts become entries, and each stretch the log did not hold (trimmed
        by its retention, deleted) a reset at its place. Pure: queues nothing."""
        if not self.logged:
            raise ConfigError("backfill: only a hub numbered by a log backfills")
        out: list[Entry | ResetNotice] = []
        expected = after + 1
        epoch = self.epoch
        for seq, d, produced_ms in items:
            if seq < expected or seq > upto:
                continue  # (out of the range asked for, or repeated: never twice)
            if seq > expected:
                out.append(self._notice(expected - 1, seq - 1, now_ms, why="not in the log: trimmed or deleted"))
            expected = seq + 1
            if flt.accepts(d):
                out.append(Entry(seq, d, produced_ms, sse_frame(d, f"{epoch}-{seq}")))
        if expected <= upto:
            out.append(self._notice(expected - 1, upto, now_ms, why="not in the log: trimmed or deleted"))
        return out

    def rebase(self, epoch: str, next_seq: int, now_ms: int, evicted_ms: int = -1) -> None:
        """The log was recreated (a new epoch): every subscriber gets a reset, the ring empties
        and numbering goes on from ``next_seq`` of the new epoch."""
        if parse_cursor(f"{epoch}-0") is None:
            raise ConfigError(f"epoch: {epoch!r} must be 1-32 lowercase letters or digits")
        old = self.epoch
        self.epoch, self.next_seq = epoch, next_seq
        self.buffer.clear()
        self.holes.clear()
        self._hole_notices.clear()
        self.evicted_ms = max(evicted_ms, now_ms)
        last = f"{epoch}-{next_seq - 1}"
        reason = f"the alert log was recreated (epoch {old} -> {epoch}): resuming from now"
        notice = ResetNotice(next_seq - 1, reason, reset_frame(reason, last, now_ms))
        for sub in self.subscribers:
            sub.floor = 0
            if not sub.overflowed:
                self._queue(sub, notice)
            sub.notify()

    def _gap_of(self, seq: int) -> tuple[int, int] | None:
        for lo, hi in self.gaps:
            if lo < seq <= hi:
                return lo, hi
        return None

    def _newest_evicted(self, oldest: int) -> int:
        """The newest id that was issued and is no longer buffered (ids in gaps never were)."""
        seq = oldest - 1
        for lo, hi in reversed(self.gaps):
            if lo < seq <= hi:
                seq = lo
        return seq

    def skip_lost(self, reserved: int, now_ms: int) -> tuple[int, int] | None:
        """After an unclean stop: ids up to ``reserved`` may have been issued by the run that
        died after this hub was saved. Continue after them (never reusing one) and remember
        the range as a gap; returns it (``None`` when nothing was skipped). ``since`` before
        ``now_ms`` can no longer be served in full (those alerts are gone)."""
        lo = self.next_seq - 1
        if reserved <= lo:
            return None
        self.gaps = [g for g in self.gaps if g[1] <= lo] + [(lo, reserved)]
        del self.gaps[:-64]  # bounded; older ones are far behind the ring anyway
        self.next_seq = reserved + 1
        self.reserved = reserved
        self.evicted_ms = max(self.evicted_ms, now_ms)
        return lo, reserved

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def take(self, sub: Subscriber, limit: int = 256) -> list[Entry | ResetNotice]:
        """Up to ``limit`` queued entries of ``sub`` (alerts counted as delivered), resets
        (:class:`ResetNotice`, numbered by a log) in their place among them."""
        out: list[Entry | ResetNotice] = []
        pending = sub.pending
        while pending and len(out) < limit:
            out.append(pending.popleft())
        n = len(out)
        if sub.notices:
            resets = sum(1 for e in out if type(e) is ResetNotice)
            sub.notices -= resets
            n -= resets
        sub.delivered += n
        self.counters.delivered += n
        return out

    def queue_depths(self) -> tuple[int, int]:
        """(total, largest) queued entries over all subscribers."""
        depths = [len(s.pending) for s in self.subscribers]
        return sum(depths), max(depths, default=0)

    # -- persistence (the bytes are written by the server's state module) --------------------
    def dump(self) -> dict[str, Any]:
        """The hub as plain data: epoch, next seq, buffered entries (alerts as their wire dicts,
        ``type`` included, so every type round-trips)."""
        return {
            "epoch": self.epoch,
            "next_seq": self.next_seq,
            "evicted_ms": self.evicted_ms,
            "gaps": [list(g) for g in self.gaps],
            "entries": [[e.seq, e.produced_ms, e.alert.to_dict()] for e in self.buffer],
        }

    @classmethod
    def load(cls, doc: dict[str, Any], **kwargs: Any) -> Hub:
        """A hub from :meth:`dump` output (the ring settings come from ``kwargs``)."""
        epoch = doc["epoch"]
        entries = []
        for seq, produced_ms, d in doc["entries"]:
            alert = msgspec.convert(d, Alert)  # tagged by ``type``: each dict back to its own type
            entries.append(Entry(seq, alert, produced_ms, sse_frame(alert, f"{epoch}-{seq}")))
        size = kwargs.get("buffer_size", 10_000)
        kept, dropped = entries[-size:], entries[:-size]
        evicted = max([int(doc.get("evicted_ms", -1)), *(e.produced_ms for e in dropped)])
        gaps = [(int(lo), int(hi)) for lo, hi in doc.get("gaps", ())]
        return cls(epoch, next_seq=doc["next_seq"], entries=kept, evicted_ms=evicted, gaps=gaps, **kwargs)

