"""``serve --state FILE``: the engine snapshot and the alert ring saved and restored.

A restart that restores both neither re-primes (the engine remembers every key's price)
nor breaks clients' cursors (same epoch, same sequence, the same buffered alerts). A state
older than ``max_age_s`` is treated as empty: its prices are too old to compare with and
its alerts too old to replay. Writes are atomic (a temporary file renamed over the old).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from ..engine import DropEngine
from ..errors import SnapshotError
from .hub import Hub

__all__ = ["SavedState", "decode_state", "encode_state", "load_state", "save_state"]

MAGIC: Final = "dropengine-serve-state"
VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class SavedState:
    """What a state file holds."""

    saved_ms: int
    engine: DropEngine
    hub: dict[str, Any]
    cursors: dict[str, int]


def encode_state(engine: DropEngine, hub: Hub, cursors: dict[str, int], saved_ms: int) -> bytes:
    return msgspec.msgpack.encode({
        "magic": MAGIC, "version": VERSION, "saved_ms": saved_ms, "engine": engine.snapshot(),
        "hub": hub.dump(), "cursors": cursors,
    })


def decode_state(data: bytes) -> SavedState:
    """Raises :class:`~dropengine.errors.SnapshotError` for anything that is not a state."""
    try:
        doc = msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        raise SnapshotError("state: not a dropengine serve state file (undecodable)") from None
    if not isinstance(doc, dict) or doc.get("magic") != MAGIC:
        raise SnapshotError("state: not a dropengine serve state file")
    if doc.get("version") != VERSION:
        raise SnapshotError(f"state: version {doc.get('version')!r}, this dropengine reads {VERSION}")
    try:
        engine = DropEngine.restore(doc["engine"])
        hub, cursors, saved = doc["hub"], doc["cursors"], doc["saved_ms"]
        if not (isinstance(hub, dict) and isinstance(cursors, dict) and isinstance(saved, int)):
            raise TypeError("bad field types")
    except (KeyError, TypeError) as exc:
        raise SnapshotError(f"state: incomplete ({exc})") from None
    return SavedState(saved, engine, hub, {str(k): int(v) for k, v in cursors.items()})


def save_state(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_state(path: Path, now_ms: int, max_age_s: float) -> tuple[SavedState | None, str]:
    """The saved state, or ``None`` with the reason (missing, too old, unreadable)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"no state file at {path}: starting empty"
    except OSError as exc:
        return None, f"state file {path} unreadable ({exc.strerror or exc}): starting empty"
    try:
        state = decode_state(data)
    except SnapshotError as exc:
        return None, f"{exc}: starting empty"
    age_s = (now_ms - state.saved_ms) / 1000
    if age_s > max_age_s:
        return None, f"state in {path} is {age_s:.0f} s old (> {max_age_s:g} s): starting empty"
    return state, f"restored {path}: {state.engine.keys_held} keys, {len(state.hub['entries'])} buffered alerts, " \
                  f"saved {age_s:.1f} s ago"
