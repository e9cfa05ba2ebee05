"""The mock upstream's timeline: recordings turned into an ordered list of vendor releases.

Pure (no clock, no network): :func:`load_timeline` reads recordings with the same readers as
``dropengine replay`` and returns every *release* (one ``odds_update`` worth of rows for one
sport) in replay order. Vendor frame recordings keep their rows unchanged (the very dicts,
``_diff`` rows included), so a client decoding the mock's stream decodes exactly what a replay
of the file decodes. Quote tables become one vendor row per quote, carrying only that quote's
price field, so each row decodes back to exactly that quote.

:class:`SportState` folds releases into the "current state" an ``initial_state`` without
``since`` reports: the latest version of every row identity, ``_diff`` rows merged.

The row schema (kinds, identities, the ``_diff`` merge, the row of a quote) is
:mod:`dropengine.formats.vendor`'s, re-exported here under the names mock-upstream uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import FeedError
from ..core.merge import merge_by_clock
from ..core.quote import Quote
from ..core.skips import SkipLog
from ..formats.frames import DATA_TYPES, coerce_ms
from ..formats.vendor import PRICE_FIELDS, merge_diff, row_identity, vendor_row
from ..io.recordings import Envelope, Snapshot, open_recordings

__all__ = [
    "Release",
    "SportState",
    "Timeline",
    "load_timeline",
    "row_time",
]


@dataclass(frozen=True, slots=True)
class Release:
    """One push of rows for one sport; ``clock`` is the replay clock (unix ms) it goes out at.

    ``partial`` marks rows built from quote tables: each carries a single price field, so the
    current state keeps one row per (identity, price field) instead of one per identity.
    """

    sport_key: str
    clock: int
    rows: Sequence[Any]
    partial: bool = False


@dataclass(slots=True)
class Timeline:
    """Every release in replay order, the sports they cover (first-seen order) and the skips."""

    releases: list[Release] = field(default_factory=list)
    skips: SkipLog = field(default_factory=SkipLog)
    sports: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(r.rows) for r in self.releases)


def row_time(row: Any) -> int | None:
    """A row's ``last_update`` in unix ms, or ``None`` when it has none that reads as one."""
    if not isinstance(row, Mapping):
        return None
    lu = row.get("last_update")
    if type(lu) is int:
        return lu
    try:
        return coerce_ms(lu)
    except FeedError:
        return None


class SportState:
    """The current state of one sport: the latest full version of each row identity.

    ``_diff`` rows are merged into their base (the result has no ``_diff`` key); rows of
    partial releases are kept per (identity, price field). Rows that are not objects, or lack
    an ``event_id``/``bookmaker``, cannot be identified and are not kept.
    """

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def apply(self, release: Release) -> None:
        for row in release.rows:
            if not isinstance(row, Mapping) or not row.get("event_id") or not row.get("bookmaker"):
                continue
            ident = row_identity(row)
            if release.partial:
                ident = (*ident, next((f for f in row if f in PRICE_FIELDS), ""))
            if row.get("_diff") is True:
                self._rows[ident] = merge_diff(self._rows.get(ident), row)
            else:
                self._rows[ident] = row if isinstance(row, dict) else dict(row)

    def rows(self) -> list[dict[str, Any]]:
        """The current rows, in the order their identities were first seen."""
        return list(self._rows.values())


def _sport_of(obj: Mapping[str, Any], data: list[Any], default: str | None) -> str | None:
    sport = obj.get("sport_key")
    if isinstance(sport, str) and sport:
        return sport
    for row in data:
        if isinstance(row, Mapping):
            rs = row.get("sport_key")
            if isinstance(rs, str) and rs:
                return rs
    return default


def _releases(stream: Iterator[tuple[int, Any]], default_sport: str | None, skips: SkipLog) -> Iterator[
    tuple[int, Release]
]:
    """One file's items as ``(clock, Release)``: envelopes one each, quotes grouped in runs."""
    run: list[dict[str, Any]] = []
    run_key: tuple[str, int] | None = None
    run_clock = 0
    for clock, item in stream:
        if type(item) is Quote:
            key = (item.sport_key, item.last_update)
            if key != run_key and run:
                assert run_key is not None
                yield run_clock, Release(run_key[0], run_clock, run, partial=True)
                run = []
            try:
                row = vendor_row(item)
            except FeedError as exc:
                skips.add(f"{item.event_id}/{item.bookmaker}", exc.reason, str(exc))
                continue
            run_key, run_clock = key, clock
            run.append(row)
            continue
        if run:
            assert run_key is not None
            yield run_clock, Release(run_key[0], run_clock, run, partial=True)
            run, run_key = [], None
        if type(item) is Envelope:
            obj = item.obj
            if not isinstance(obj, Mapping) or obj.get("type") not in DATA_TYPES:
                continue  # connected, heartbeat, ... (and junk, which a replay reports anyway)
            data = obj.get("data")
            if not isinstance(data, list):
                skips.add(item.where, "bad envelope", f"data: {type(data).__name__} is not a list of rows")
                continue
            if not data:
                continue
            sport = _sport_of(obj, data, default_sport)
            if sport is None:
                skips.add(item.where, "no sport", "no sport_key on the envelope or its rows; pass --sport")
                continue
            yield clock, Release(sport, clock, data)
        elif type(item) is Snapshot:
            by_sport: dict[str, list[dict[str, Any]]] = {}
            for q in item.quotes:
                try:
                    by_sport.setdefault(q.sport_key, []).append(vendor_row(q))
                except FeedError as exc:
                    skips.add(f"{q.event_id}/{q.bookmaker}", exc.reason, str(exc))
            for sport, rows in by_sport.items():
                yield clock, Release(sport, clock, rows, partial=True)
    if run:
        assert run_key is not None
        yield run_clock, Release(run_key[0], run_clock, run, partial=True)


def load_timeline(
    paths: Sequence[str | Path], fmt: str = "auto", sport: str | None = None, skips: SkipLog | None = None
) -> Timeline:
    """Read ``paths`` (merged by clock, ties in the order given) into a :class:`Timeline`.

    ``sport`` names the sport of envelopes whose envelope and rows carry none. Bad lines,
    rows and envelopes are skipped and recorded in the timeline's ``skips``, never raised,
    and so is a file that cannot be read or whose format cannot be told (a whole-file skip);
    a path that does not exist raises ``ConfigError``.
    """
    tl = Timeline(skips=skips if skips is not None else SkipLog())
    formats, files = open_recordings([Path(p) for p in paths], fmt, tl.skips)
    tl.formats.update(formats)
    streams = [_releases(f, sport, tl.skips) for f in files]
    seen: set[str] = set()
    for clock, rel in merge_by_clock(streams):
        if clock != rel.clock:  # the merge made the clock monotone: release at the merged clock
            rel = Release(rel.sport_key, clock, rel.rows, rel.partial)
        tl.releases.append(rel)
        if rel.sport_key not in seen:
            seen.add(rel.sport_key)
            tl.sports.append(rel.sport_key)
    return tl
