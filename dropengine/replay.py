"""Replay recordings through an engine: read, merge by clock, detect. No printing here.

:func:`replay` is a generator of alerts in detection order, so a caller can stream them
out as they come; :class:`ReplayStats` (filled as it runs) holds what was read and skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .adapters.files import Progress, detect_format, read_recording
from .drop import Drop
from .engine import DropEngine
from .errors import ConfigError
from .frames import FrameDecoder
from .merge import merge_by_clock
from .quote import Quote
from .skips import SkipLog

__all__ = ["ReplayStats", "replay"]

_BATCH = 4096


@dataclass(slots=True)
class ReplayStats:
    """What a replay read: files and their formats, quotes, envelope types, skips."""

    formats: dict[str, str] = field(default_factory=dict)
    quotes: int = 0
    skips: SkipLog = field(default_factory=SkipLog)
    envelopes: dict[str, int] = field(default_factory=dict)
    unknown_envelope_types: int = 0


def replay(
    paths: Sequence[str | Path],
    engine: DropEngine,
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
) -> Iterator[Drop]:
    """Yield the alerts of ``paths`` merged by clock (ties in the order given).

    Each alert's ``timestamp`` is the replayed clock at which its quote arrived, so the
    same input always gives the same output. Formats are detected before anything is read,
    so a bad path fails fast with :class:`ConfigError`.
    """
    if not paths:
        raise ConfigError("paths: give at least one recording")
    st = stats if stats is not None else ReplayStats()
    decoders: list[FrameDecoder] = []
    streams = []
    for p in paths:
        f = detect_format(p) if fmt == "auto" else fmt
        st.formats[str(p)] = f
        dec = FrameDecoder()
        decoders.append(dec)
        streams.append(read_recording(p, f, st.skips, progress, dec))
    batch: list[Quote] = []
    clock = None
    observe = engine.observe_many
    for c, q in merge_by_clock(streams):
        if c != clock or len(batch) >= _BATCH:
            if batch:
                st.quotes += len(batch)
                yield from observe(batch, clock)
                batch = []
            clock = c
        batch.append(q)
    if batch:
        st.quotes += len(batch)
        yield from observe(batch, clock)
    for dec in decoders:
        for k, v in dec.envelopes.items():
            st.envelopes[k] = st.envelopes.get(k, 0) + v
        st.unknown_envelope_types += dec.unknown_types
