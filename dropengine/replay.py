"""Replay recordings through an engine: read, merge by clock, decode, detect. No printing.

:func:`replay` is a generator of alerts in detection order, so a caller can stream them
out as they come; :class:`ReplayStats` (filled as it runs) holds what was read and skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .adapters.files import Envelope, Progress, Snapshot, detect_format, expand_paths, read_recording
from .drop import Drop
from .engine import DropEngine
from .errors import ConfigError
from .frames import FrameDecoder
from .merge import merge_by_clock
from .quote import Quote
from .skips import SkipLog

__all__ = ["ReplayStats", "read_quotes", "replay"]

_BATCH = 4096


@dataclass(slots=True)
class ReplayStats:
    """What a replay read: files and their formats, quotes, envelope types, skips."""

    formats: dict[str, str] = field(default_factory=dict)
    quotes: int = 0
    skips: SkipLog = field(default_factory=SkipLog)
    envelopes: dict[str, int] = field(default_factory=dict)
    unknown_envelope_types: int = 0


def read_quotes(
    paths: Sequence[str | Path],
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[list[Quote], int | None]]:
    """Batches of quotes in replay order, each with the ``now_ms`` that stamps its alerts.

    Directories are expanded into their files, each its own stream; the streams are merged
    by clock; all vendor frames go through one decoder after the merge. The stamp is
    ``None`` (alerts carry their quote's ``last_update``) except for a The Odds API
    snapshot, whose alerts carry its fetch time. Formats are detected before anything is
    read, so a bad path fails fast with :class:`ConfigError`.
    """
    if not paths:
        raise ConfigError("paths: give at least one recording")
    st = stats if stats is not None else ReplayStats()
    files = expand_paths([Path(p) for p in paths], st.skips)
    formats = [detect_format(p) if fmt == "auto" else fmt for p in files]
    streams = [read_recording(p, f, st.skips, progress) for p, f in zip(files, formats, strict=True)]
    for p, f in zip(files, formats, strict=True):
        st.formats[str(p)] = f
    decoder = FrameDecoder()
    batch: list[Quote] = []
    for _, item in merge_by_clock(streams):
        if type(item) is Quote:
            batch.append(item)
        elif type(item) is Envelope:
            batch.extend(decoder.feed(item.obj, st.skips, item.where))
        else:
            assert type(item) is Snapshot
            if batch:
                st.quotes += len(batch)
                yield batch, None
                batch = []
            st.quotes += len(item.quotes)
            yield item.quotes, item.clock
            continue
        if len(batch) >= _BATCH:
            st.quotes += len(batch)
            yield batch, None
            batch = []
    if batch:
        st.quotes += len(batch)
        yield batch, None
    st.envelopes = dict(decoder.envelopes)
    st.unknown_envelope_types = decoder.unknown_types


def replay(
    paths: Sequence[str | Path],
    engine: DropEngine,
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
) -> Iterator[Drop]:
    """Yield the alerts of ``paths`` (see :func:`read_quotes`) in detection order.

    An alert's ``timestamp`` is its quote's ``last_update``, or the fetch time of the The
    Odds API snapshot it came from, so the same input always gives the same output.
    """
    observe = engine.observe_many
    for batch, stamp in read_quotes(paths, fmt, stats, progress):
        yield from observe(batch, stamp)
