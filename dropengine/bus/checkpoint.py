"""A detector's checkpoint: its engine and how far it read, in the bus's object store.

One object per partition, ``p{I}.{P}`` in the bucket ``{prefix}_checkpoints``: msgspec JSON
``{"version": 1, "partition": I, "partitions": P, "quote_seq": N, "engine": base64,
"options": {...}, "saved_ms": ms, "quote_epoch": "..."}``. ``quote_seq`` is the stream sequence of the last quote
message the engine has fully processed (its alerts are in the log), so a restart restores
the engine and reads on from ``quote_seq + 1``.

A checkpoint is only ever used by a detector of the same partition, the same partition count
and the same detection options: state saved under other settings would detect other alerts
than the log already holds, so :func:`load` and :func:`check_options` refuse, naming both,
and the operator decides (``dropengine detect --fresh`` starts an empty engine). A corrupt
checkpoint is refused the same way (:class:`SnapshotError` naming the object), never skipped
in silence.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..core.alerts import by_signal_order
from ..core.errors import ConfigError, SnapshotError, short_repr
from ..core.options import DetectOptions
from .connect import Bus

if TYPE_CHECKING:
    from nats.js.object_store import ObjectStore

__all__ = ["VERSION", "Checkpoint", "check_options", "check_quote_epoch", "load", "object_name", "save"]

#: The checkpoint layout this build writes and reads.
VERSION: Final = 1
#: Longest wait for a checkpoint's chunks (a snapshot of millions of keys is tens of MB).
LOAD_TIMEOUT_S: Final = 60.0
_NAME = re.compile(r"p([0-9]+)\.([0-9]+)")


class Checkpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A partition's engine snapshot (``DropEngine.snapshot()`` bytes, base64 in the JSON)
    after the quote message ``quote_seq``, with the options it detects with."""

    version: int
    partition: int
    partitions: int
    quote_seq: int
    engine: bytes
    options: dict[str, Any]
    saved_ms: int
    #: The epoch (creation time) of the quote stream ``quote_seq`` counts in: a recreated
    #: stream numbers from 1 again, so a position of another epoch means other messages.
    #: ``None``: saved by a build that did not record it.
    quote_epoch: str | None = None


def object_name(partition: int, partitions: int) -> str:
    """``p{I}.{P}``: the checkpoint object (and lease key) of partition ``I`` of ``P``."""
    return f"p{partition}.{partitions}"


_ENCODE: Final = msgspec.json.Encoder()
_DECODE: Final = msgspec.json.Decoder(Checkpoint)


def _plain(options: dict[str, Any]) -> Any:
    """Options as they read back from JSON (tuples become lists), for comparing."""
    return msgspec.json.decode(_ENCODE.encode(options))


async def _store(bus: Bus) -> ObjectStore:
    import nats.js.api
    import nats.js.errors

    cfg = bus.config
    try:
        try:
            return await bus.js.object_store(cfg.checkpoint_bucket)
        except nats.js.errors.BucketNotFoundError:
            return await bus.js.create_object_store(cfg.checkpoint_bucket, nats.js.api.ObjectStoreConfig(
                description="dropengine detector checkpoints (engine snapshot + quote position)",
                replicas=cfg.replicas))
    except Exception as exc:
        raise bus.error(exc, f"checkpoint bucket {cfg.checkpoint_bucket}") from None


async def save(bus: Bus, cp: Checkpoint) -> None:
    """Write ``cp`` as its partition's object (replacing the previous one; the object
    store's metadata is written last, so a save cut short leaves the previous checkpoint)."""
    store = await _store(bus)
    try:
        await store.put(object_name(cp.partition, cp.partitions), _ENCODE.encode(cp))
    except Exception as exc:
        raise bus.error(exc, f"checkpoint {object_name(cp.partition, cp.partitions)}: save") from None


async def load(bus: Bus, partition: int, partitions: int) -> Checkpoint | None:
    """The checkpoint of partition ``partition`` of ``partitions``, or ``None`` when there is
    none for any partition count. A checkpoint of this partition index saved for another
    partition count raises :class:`ConfigError` naming both (its state belongs to other
    events); an unreadable one :class:`SnapshotError` naming the object."""
    import nats.js.errors

    name = object_name(partition, partitions)
    store = await _store(bus)
    where = f"checkpoint {name} (bucket {bus.config.checkpoint_bucket})"
    try:
        # bounded: nats-py waits forever for chunks that a concurrent save has just replaced
        result = await asyncio.wait_for(store.get(name), LOAD_TIMEOUT_S)
    except nats.js.errors.ObjectNotFoundError:
        await _refuse_other_count(bus, store, partition, partitions)
        return None
    except (nats.js.errors.DigestMismatchError, nats.js.errors.BadObjectMetaError) as exc:
        raise SnapshotError(f"{where}: corrupt ({type(exc).__name__}); start with --fresh to discard it") from None
    except Exception as exc:
        raise bus.error(exc, where) from None
    try:
        cp = _DECODE.decode(result.data or b"")
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{where}: not a checkpoint ({exc}); start with --fresh to discard it") from None
    if cp.version != VERSION:
        raise SnapshotError(f"{where}: version {cp.version} is not supported (this build reads version {VERSION})")
    if (cp.partition, cp.partitions) != (partition, partitions):
        raise SnapshotError(f"{where}: holds partition {cp.partition}/{cp.partitions}, not {partition}/{partitions}")
    return cp


async def _refuse_other_count(bus: Bus, store: ObjectStore, partition: int, partitions: int) -> None:
    """Raise :class:`ConfigError` when the bucket holds checkpoints for another partition count."""
    import nats.js.errors

    try:
        infos = await store.list(ignore_deletes=True)
    except nats.js.errors.NotFoundError:
        return
    except Exception as exc:
        raise bus.error(exc, f"checkpoint bucket {bus.config.checkpoint_bucket}: list") from None
    others = sorted({(m.group(0), int(m.group(2))) for info in infos if info.name and not info.deleted
                     and (m := _NAME.fullmatch(info.name)) is not None and int(m.group(2)) != partitions})
    if others:
        name, count = others[0]
        raise ConfigError(
            f"partition: checkpoint {name} (bucket {bus.config.checkpoint_bucket}) was saved with {count} "
            f"partitions; this detector runs {partition}/{partitions} ({partitions} partitions). Its state "
            f"belongs to other events: run --partition I/{count}, or --fresh to start an empty engine"
        )


def _value(options: DetectOptions, doc: dict[str, Any], key: str) -> Any:
    """The setting ``key`` of ``options`` as plain data: from ``doc`` (its ``as_dict()``), or,
    where ``as_dict`` leaves a setting at its default out, the options' own value (the core
    holds the defaults; none are restated here)."""
    if key in doc:
        return doc[key]
    value: Any = getattr(options, key, None)
    if key == "types":
        return list(by_signal_order(value))
    if key == "steam_groups":
        return [sorted(g) for g in value or ()]
    if key == "key_numbers" and value is not None:
        return value.as_text()
    return value


def check_options(cp: Checkpoint, options: DetectOptions) -> None:
    """Refuse (:class:`ConfigError` naming both values of every setting that differs) a
    checkpoint saved with other detection options than ``options``. Compared as
    :class:`DetectOptions` (the checkpoint's read back by :meth:`DetectOptions.from_dict`), so
    the core's defaults and normalisation are the one rule."""
    where = f"checkpoint {object_name(cp.partition, cp.partitions)}"
    try:
        saved = DetectOptions.from_dict(cp.options)
    except (ConfigError, TypeError, ValueError) as exc:
        raise SnapshotError(f"{where}: its detection options are not readable ({exc}); start with --fresh to "
                            "discard it") from None
    if saved == options:
        return
    theirs, mine = _plain(saved.as_dict()), _plain(options.as_dict())
    diff = []
    for k in sorted(set(mine) | set(theirs)):
        a, b = _plain(_value(saved, theirs, k)), _plain(_value(options, mine, k))
        if a != b:
            diff.append(f"{k}: {_shown(a)} in the checkpoint, {_shown(b)} now")
    raise ConfigError(
        f"options: {where} was saved with other detection options ({'; '.join(diff) or 'filters'}). Restart "
        "with the checkpoint's options, or --fresh to start an empty engine with the new ones"
    )


def check_quote_epoch(cp: Checkpoint, epoch: str) -> None:
    """Refuse (:class:`ConfigError` naming both epochs) a checkpoint whose position counts in
    another quote stream than the one of ``epoch`` (deleted and recreated since): reading on
    from its ``quote_seq`` would skip the new stream's first messages."""
    if cp.quote_epoch is not None and cp.quote_epoch != epoch:
        raise ConfigError(
            f"quote stream: checkpoint {object_name(cp.partition, cp.partitions)} is at quote message "
            f"{cp.quote_seq} of the quote stream of epoch {cp.quote_epoch}, but the quote stream now is epoch "
            f"{epoch} (deleted and recreated since; its messages are numbered from 1 again). Start with --fresh "
            "to read the new stream from its start with an empty engine"
        )


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):  # types, or steam groups (lists of books)
        return ",".join("+".join(map(str, v)) if isinstance(v, list) else str(v) for v in value) or "none"
    return short_repr(value)
