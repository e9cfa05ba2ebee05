"""Which partition an event belongs to: the one rule that splits work by ``event_id``.

Every piece of state the engine keeps (SPEC 3's series, SPEC 10's lines, SPEC 11's steam
groups, SPEC 12's cooldowns) lives inside one event, so any split of the input by event is
exact: each part detects what one process would have detected for its events. The bus
(``dropengine ingest`` publishing to ``--partitions P`` subjects, ``dropengine detect
--partition I/P``) and the sharded batch engine (``--workers``) both split with this
function, so a partition and a shard of the same number hold the same events.

CRC-32 of the UTF-8 ``event_id`` (``zlib.crc32``, unsigned) modulo ``partitions``: stable
across processes, machines and Python versions (unlike ``hash()``, which is salted).
"""

from __future__ import annotations

import re
import zlib

from .errors import ConfigError, short_repr

__all__ = ["MAX_PARTITIONS", "check_count", "parse_partition", "partition_of"]

#: More partitions than this is a typo, not a deployment.
MAX_PARTITIONS = 4096

_SPEC = re.compile(r"\s*([0-9]{1,4})\s*/\s*([0-9]{1,4})\s*")


def check_count(value: object, name: str = "partitions") -> int:
    """``value`` as a count of partitions (or of shards, or of workers: each holds at least one
    partition), an integer from 1 to :data:`MAX_PARTITIONS`; :class:`ConfigError` naming
    ``name`` and the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARTITIONS:
        raise ConfigError(f"{name}: {short_repr(value)} must be an integer from 1 to {MAX_PARTITIONS}")
    return value


def partition_of(event_id: str, partitions: int) -> int:
    """The partition (``0 .. partitions-1``) of ``event_id``: ``crc32(utf-8) % partitions``."""
    n = check_count(partitions)
    if not isinstance(event_id, str):
        raise ConfigError(f"event_id: {short_repr(event_id)} must be a string")
    return zlib.crc32(event_id.encode("utf-8", "surrogatepass")) % n


def parse_partition(text: str) -> tuple[int, int]:
    """``"I/P"`` (e.g. ``"0/2"``) as ``(I, P)`` with ``0 <= I < P``; :class:`ConfigError`
    naming the text otherwise."""
    m = _SPEC.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ConfigError(f"partition: {short_repr(text)} must be I/P, e.g. 0/2 (partition I of P, counted from 0)")
    index, count = int(m.group(1)), check_count(int(m.group(2)))
    if index >= count:
        raise ConfigError(f"partition: {short_repr(text)}: I must be below P (partitions are 0 to {count - 1})")
    return index, count
