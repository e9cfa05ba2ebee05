"""One writer per partition: a lease in a JetStream key-value bucket.

A detector holds the key ``p{I}.{P}`` of the bucket ``{prefix}_leases`` while it runs. The
value says who holds it and until when (``{"owner": "<host>:<pid>:<random>", "until_ms": ms}``).
Every change is a compare-and-set on the key's revision (``kv.create`` when absent,
``kv.update(last=revision)`` otherwise), so of two processes racing for a free or expired
lease exactly one wins, and a holder whose revision moved under it knows at its next renewal
that it lost the lease (:class:`FencedError`) and stops.

The expiry is wall-clock time compared across hosts, so clocks that disagree by more than a
lease's length could let a standby take a lease its holder still renews; the alert log's
expected-last-subject-sequence check (:mod:`.detector`) then refuses the second writer's first
publish. The lease keeps the common case quiet; the fence is what guarantees one writer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from ..core.errors import ConfigError, FencedError, short_repr
from .connect import Bus

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["Lease", "LeaseHeld", "LeaseValue", "new_owner"]

log = logging.getLogger("dropengine.bus.lease")


class LeaseValue(msgspec.Struct, frozen=True):
    """The value of a lease key: who holds it, and until when (unix ms, the holder's clock)."""

    owner: str
    until_ms: int


class LeaseHeld(FencedError):
    """The lease is held by another live owner (``acquire(wait=False)``)."""

    def __init__(self, key: str, holder: LeaseValue, now_ms: int) -> None:
        self.key = key
        self.holder = holder
        left = max(0, holder.until_ms - now_ms) / 1000
        super().__init__(f"lease {key}: held by {holder.owner} (renewed, expires in {left:.1f} s unless its "
                         "holder renews it)")


_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder(LeaseValue)


def new_owner() -> str:
    """``host:pid:random``: unique per process start, readable in a status line."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _wall_ms() -> int:
    return int(time.time() * 1000)


class Lease:
    """The lease ``key`` of the bus's lease bucket, for ``owner``, ``ttl_s`` seconds long.

    :meth:`acquire` takes it (waiting for an expired one with ``wait``), :meth:`renew`
    extends it (call every ``ttl_s / 3``), :meth:`release` gives it up. Renewals are
    serialised (a lock): two concurrent renewals would otherwise race on the same revision
    and the loser would look fenced.
    """

    def __init__(self, bus: Bus, key: str, owner: str, ttl_s: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        if not (isinstance(ttl_s, (int, float)) and 0.1 <= ttl_s <= 3600):
            raise ConfigError(f"lease_ttl_s: {short_repr(ttl_s)} must be a number of seconds from 0.1 to 3600")
        self.bus = bus
        self.key = key
        self.owner = owner
        self.ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._revision: int | None = None
        #: Until when (unix ms) this process holds the lease, as far as it knows.
        self.until_ms = 0
        self._lock = asyncio.Lock()
        self._kv: KeyValue | None = None

    def _now(self) -> int:
        return int(self._clock() * 1000)

    @property
    def held(self) -> bool:
        """Whether this process took the lease and has not released or lost it."""
        return self._revision is not None

    def due(self, now_ms: int) -> bool:
        """Whether a renewal is due (a third of the lease is left, or less)."""
        return self._revision is not None and now_ms >= self.until_ms - self.ttl_ms * 2 // 3

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            import nats.js.api
            import nats.js.errors

            cfg = self.bus.config
            try:
                try:
                    self._kv = await self.bus.js.key_value(cfg.lease_bucket)
                except nats.js.errors.BucketNotFoundError:
                    self._kv = await self.bus.js.create_key_value(nats.js.api.KeyValueConfig(
                        bucket=cfg.lease_bucket, history=1, replicas=cfg.replicas,
                        description="dropengine detector leases (one writer per partition)"))
            except Exception as exc:
                raise self.bus.error(exc, f"lease bucket {cfg.lease_bucket}") from None
        assert self._kv is not None
        return self._kv

    async def _read(self) -> tuple[LeaseValue | None, int]:
        """The current value and revision (``None, 0`` when there is none)."""
        import nats.js.errors

        kv = await self._bucket()
        try:
            entry = await kv.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None, 0  # absent or released: kv.create takes it (over a delete marker too)
        except Exception as exc:
            raise self.bus.error(exc, f"lease {self.key}") from None
        try:
            value = _DECODE.decode(entry.value or b"")
        except msgspec.DecodeError:
            log.warning("lease %s: unreadable value %s: taken as expired", self.key, short_repr(entry.value))
            value = LeaseValue("?", 0)
        return value, int(entry.revision or 0)

    async def _write(self, revision: int, until_ms: int) -> int:
        """Compare-and-set the key at ``revision`` (0: create). Returns the new revision, or
        raises :class:`FencedError` when the revision moved."""
        import nats.js.errors

        kv = await self._bucket()
        data = _ENCODE.encode(LeaseValue(self.owner, until_ms))
        try:
            if revision == 0:
                return int(await kv.create(self.key, data))
            return int(await kv.update(self.key, data, last=revision))
        except nats.js.errors.KeyWrongLastSequenceError:
            raise FencedError(f"lease {self.key}: taken by another owner (revision {revision} moved)") from None
        except Exception as exc:
            raise self.bus.error(exc, f"lease {self.key}") from None

    async def acquire(self, now_ms: int | None = None, wait: bool = False,
                      on_wait: Callable[[LeaseValue], None] | None = None) -> None:
        """Take the lease. When another owner holds it and has not let it expire: with
        ``wait``, poll until it expires (a third of a lease at most between polls;
        ``on_wait`` hears of each holder once), else raise :class:`LeaseHeld` naming the holder.
        ``now_ms`` is the first attempt's time (default: the clock)."""
        seen: str | None = None
        now = self._now() if now_ms is None else now_ms
        while True:
            value, revision = await self._read()
            if value is None or value.until_ms < now or value.owner == self.owner:
                try:
                    async with self._lock:
                        self._revision = await self._write(revision, now + self.ttl_ms)
                        self.until_ms = now + self.ttl_ms
                    log.info("lease %s: taken by %s", self.key, self.owner)
                    return
                except FencedError:  # another process won the race: look again
                    if not wait:
                        value, _ = await self._read()
                        if value is not None:
                            raise LeaseHeld(self.key, value, now) from None
                    continue
            if not wait:
                raise LeaseHeld(self.key, value, now)
            if value.owner != seen:
                seen = value.owner
                if on_wait is not None:
                    on_wait(value)
            pause = min(max(value.until_ms - now, 0) + 50, self.ttl_ms // 3 or 1) / 1000
            await asyncio.sleep(pause)
            now = self._now()

    async def renew(self, now_ms: int | None = None) -> None:
        """Extend the lease to ``now + ttl``; :class:`FencedError` when another owner took
        it (the caller must stop writing at once), :class:`BusError` when the bus cannot be
        reached (the lease runs on until it expires)."""
        now = self._now() if now_ms is None else now_ms
        async with self._lock:
            if self._revision is None:
                raise FencedError(f"lease {self.key}: not held")
            try:
                self._revision = await self._write(self._revision, now + self.ttl_ms)
            except FencedError:
                # The revision moved. If an earlier write of OURS landed while its answer was
                # lost (a timeout during an election), the key still names this owner (owners
                # are unique per process start, and only this process writes its own): adopt
                # that revision and write again. Anyone else's value is a lost lease.
                value, revision = await self._read()
                if value is None or value.owner != self.owner:
                    self._revision = None
                    self.until_ms = 0
                    raise
                log.info("lease %s: an earlier renewal landed unacknowledged (revision %d): adopted",
                         self.key, revision)
                self._revision = revision
                self.until_ms = value.until_ms
                try:
                    self._revision = await self._write(revision, now + self.ttl_ms)
                except FencedError:  # taken in between: lost after all
                    self._revision = None
                    self.until_ms = 0
                    raise
            self.until_ms = now + self.ttl_ms

    async def release(self) -> None:
        """Give the lease up (delete the key at our revision), so a standby takes over at
        once instead of after the expiry. Best effort: a failure only means the standby waits."""
        async with self._lock:
            revision, self._revision = self._revision, None
            self.until_ms = 0
            if revision is None:
                return
            try:
                kv = await self._bucket()
                await kv.delete(self.key, last=revision)
            except Exception as exc:
                log.warning("lease %s: not released (%s); it expires by itself", self.key, short_repr(exc))

