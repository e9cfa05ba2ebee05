"""Which detection options the alert log was made with: the detectors' registry.

A ``serve --bus`` frontend post-filters the alerts the detectors published; it can only be
exact (SPEC 7: a connection's ``threshold``, ``types``, ``line_threshold`` and ``direction``)
when it knows what each detector detects. So every detector records its options when it
takes its partition's lease: KV bucket ``{prefix}_detectors`` (:attr:`BusConfig.detector_bucket`),
key ``p{I}.{P}``, value msgspec JSON ``{"partition", "partitions", "options":
DetectOptions.as_dict(), "saved_ms"}``. :func:`recorded_detectors` reads them all back.

One key per partition and partition count: a detector restarted with other options replaces
its record (its checkpoint refuses other options anyway, unless ``--fresh``). A record of an
older partition count stays until its bucket key is deleted; the reader sees the partition
count in each record and decides.

The keys are listed from the stream's subjects (:func:`_keys`), not by nats-py's
``KeyValue.keys()``: that watcher can end before the keys already on their way arrive, so a
listing under load could miss every key (and it left a consumer behind per call).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..core.errors import BusError, ConfigError, short_repr
from ..core.options import DetectOptions
from .connect import Bus

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["DetectorRecord", "record_detector", "recorded_detectors", "registry_key"]

log = logging.getLogger("dropengine.bus.registry")


class _Wire(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """The stored value (``options`` as :meth:`DetectOptions.as_dict` wrote them)."""

    partition: int
    partitions: int
    options: dict[str, Any]
    saved_ms: int


_ENCODE: Final = msgspec.json.Encoder()
_DECODE: Final = msgspec.json.Decoder(_Wire)

#: The most subjects one stream info answer lists (nats-server's ``JSMaxSubjectDetails``);
#: past it the server pages, and a listing of several answers is no longer one snapshot.
_SUBJECTS_PER_ANSWER: Final = 100_000


@dataclass(frozen=True, slots=True)
class DetectorRecord:
    """What the detector of partition ``partition`` of ``partitions`` detects with, recorded
    at ``saved_ms`` (unix ms, the detector's clock) when it took its lease."""

    partition: int
    partitions: int
    options: DetectOptions
    saved_ms: int


def registry_key(partition: int, partitions: int) -> str:
    """``p{I}.{P}``: the registry key of partition ``I`` of ``P`` (as its lease and checkpoint)."""
    return f"p{partition}.{partitions}"


async def _bucket(bus: Bus, *, create: bool) -> KeyValue | None:
    """The registry bucket; created when absent and ``create`` (else ``None``)."""
    import nats.js.api
    import nats.js.errors

    cfg = bus.config
    try:
        try:
            return await bus.js.key_value(cfg.detector_bucket)
        except nats.js.errors.BucketNotFoundError:
            if not create:
                return None
            try:
                return await bus.js.create_key_value(
                    nats.js.api.KeyValueConfig(
                        bucket=cfg.detector_bucket,
                        history=1,
                        replicas=cfg.replicas,
                        description="dropengine detectors' detection options (what the alert log holds)",
                    )
                )
            except nats.js.errors.BadRequestError:
                # another detector created it meanwhile (same name, maybe another config): use it
                return await bus.js.key_value(cfg.detector_bucket)
    except Exception as exc:
        raise bus.error(exc, f"detector registry {cfg.detector_bucket}") from None


async def record_detector(bus: Bus, partition: int, partitions: int, options: DetectOptions, now_ms: int) -> None:
    """Record (create or replace) what partition ``partition`` of ``partitions`` detects with."""
    if type(partition) is not int or type(partitions) is not int or not 0 <= partition < partitions:
        raise ConfigError(f"partition: {short_repr(partition)}/{short_repr(partitions)} is not a partition I/P")
    kv = await _bucket(bus, create=True)
    assert kv is not None
    key = registry_key(partition, partitions)
    data = _ENCODE.encode(_Wire(partition, partitions, options.as_dict(), int(now_ms)))
    try:
        await kv.put(key, data)
    except Exception as exc:
        raise bus.error(exc, f"detector registry {bus.config.detector_bucket}: {key}") from None


async def _keys(bus: Bus, bucket: str) -> list[str]:
    """Every key bucket ``bucket`` holds a message for, sorted: all keys put before the call.

    One stream info request with a subject filter: the server answers from its store in one
    reply, so every key whose put was acknowledged before the request is in it. nats-py's
    ``KeyValue.keys()`` is not: its watcher puts the end-of-listing mark first when the
    consumer reports nothing pending and the client has parsed no message yet,
    which is the case while the keys are still in flight to it (nats-py issue #842); a loop of
    listings missed all 9 keys about once in 400 calls at load 1.3, the CI failure's
    ``[] == [(1, 2)]``. A deleted key is listed too (its delete marker is its last message):
    reading it finds no value and the caller skips it."""
    prefix = f"$KV.{bucket}."  # a bucket's stream and subjects, as every NATS client names them (ADR-8)
    info = await bus.js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    subjects = info.state.subjects or {}
    if len(subjects) >= _SUBJECTS_PER_ANSWER:
        # one key per partition and partition count never gets here; a partial list would
        # silently show partitions as unrecorded, so refuse instead
        raise BusError(
            f"detector registry {bucket}: keys: {len(subjects)} or more, too many to list in one "
            f"answer (fewer than {_SUBJECTS_PER_ANSWER}); delete the stale ones"
        )
    return sorted(s[len(prefix) :] for s in subjects)


async def recorded_detectors(bus: Bus) -> list[DetectorRecord]:
    """Every detector's record, ordered by (partitions, partition); ``[]`` when no detector
    has recorded one yet (no bucket). An entry that cannot be read is skipped and logged
    (naming its key): the reader sees that partition as unrecorded."""
    import nats.js.errors

    kv = await _bucket(bus, create=False)
    if kv is None:
        return []
    where = f"detector registry {bus.config.detector_bucket}"
    try:
        keys = await _keys(bus, bus.config.detector_bucket)
    except nats.js.errors.NotFoundError:  # the bucket was deleted meanwhile
        return []
    except Exception as exc:
        raise bus.error(exc, where) from None
    out: list[DetectorRecord] = []
    for key in keys:
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:  # deleted meanwhile
            continue
        except Exception as exc:
            raise bus.error(exc, f"{where}: {key}") from None
        try:
            wire = _DECODE.decode(entry.value or b"")
            options = DetectOptions.from_dict(wire.options)
        except (msgspec.DecodeError, ConfigError, TypeError, ValueError) as exc:
            log.warning("%s: entry %s skipped: not a detector record (%s)", where, key, short_repr(str(exc)))
            continue
        if key != registry_key(wire.partition, wire.partitions):
            log.warning("%s: entry %s skipped: it names partition %d/%d", where, key, wire.partition, wire.partitions)
            continue
        out.append(DetectorRecord(wire.partition, wire.partitions, options, wire.saved_ms))
    out.sort(key=lambda r: (r.partitions, r.partition))
    return out
