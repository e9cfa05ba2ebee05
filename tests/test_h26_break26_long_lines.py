"""break26 (session 19), B26-1 (fixed in 02e6503): two long lines' rows, read alternately, are scanned once each.

fused19's long-line lever keeps an ``initial_state``'s rows (a line longer than ``fused._LAZY_BYTES``,
within ``fused._LAZY_LONG_BYTES``) as the line and each row's index; a ``_diff`` row merging into
one of them (or ``FrameDecoder.forget`` reading its time) decodes it through ``LazyRows.row``,
which remembers ONE long line scanned (``frames._SCANNED_LONG``). Two long lines kept at once
(two recordings merged by clock, each opening with its initial_state; two sports in one feed)
and ``_diff`` rows interleaving between their identities make every merge scan a whole long
line again: cost = diffs x line bytes, where typed rows (c07d9c3, or the budget at 0) scanned
nothing. Measured (CLI, ``replay two_a.ndjson two_b.ndjson``, 2 x 20,000-row initial_states and
2 x 4,000 one-row ``_diff`` updates, 8,000 alerts equal): 0.74-0.77 s user at c07d9c3, 19.8-22.9 s
with the lever (load ~7). No timing here: the scans of the long lines are counted, and each
long line should be scanned at most once (the rows stay equal to the general decoder's).
Reported on fused19's tree before it landed; 02e6503 lands the lever with the fix (``LazyRows.scans``:
a line longer than ``frames._LONG_SCAN`` keeps its own scan). Without it (one long line remembered)
these fail: 22 and 800 scans of the two long lines.
"""

from __future__ import annotations

from typing import Any

import pytest

from dropengine.core.skips import SkipLog
from dropengine.formats import frames as frames_mod
from dropengine.formats import fused
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.fused import FusedFrames

from .test_h14_frames_fused import G, env
from .test_h25_fused18_rows import feed_fused, feed_general, rows_of

ROW = {**G, "home_ml": -110, "away_ml": 120, "home_spread": -3.5, "home_spread_price": -110}
N = 400  # rows a long line: past frames._LONG_SCAN and fused._LAZY_BYTES, far within the budget


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of the lines ``LazyRows.row`` scans from now on."""
    scanned: list[int] = []
    real = frames_mod._raw_rows

    def counting(line: bytes | str) -> Any:
        scanned.append(len(line))
        return real(line)

    monkeypatch.setattr(frames_mod, "_raw_rows", counting)
    return scanned


def _long(prefix: str, sport: str, t: int) -> bytes:
    line = env(
        "initial_state", *[{**ROW, "event_id": f"{prefix}{i}", "last_update": t + i} for i in range(N)], sport=sport
    )
    assert len(line) > max(frames_mod._LONG_SCAN, fused._LAZY_BYTES)
    assert 2 * len(line) <= fused._LAZY_LONG_BYTES  # (both kept as lines)
    return line


def _replayed(lines: list[bytes]) -> tuple[FusedFrames, FrameDecoder]:
    frames, general = FusedFrames(FrameDecoder()), FrameDecoder()
    skips_f, skips_g = SkipLog(), SkipLog()
    for n, line in enumerate(lines):
        assert feed_fused(frames, line, skips_f, f"l:{n}") == feed_general(general, line, skips_g, f"l:{n}")
    assert skips_f.counts == skips_g.counts
    return frames, general


def test_diffs_alternating_between_two_long_lines_scan_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned = _counting(monkeypatch)
    lines = [_long("a", "nba", 1000), _long("b", "nfl", 1000)]
    for k in range(20):  # a0, b0, a1, b1, ...: each merge's base in the other long line than the last
        p, sport = ("a", "nba") if k % 2 == 0 else ("b", "nfl")
        lines.append(
            env(
                "odds_update",
                {
                    "_diff": True,
                    "event_id": f"{p}{k // 2}",
                    "bookmaker": "pin",
                    "last_update": 5000 + k,
                    "home_ml": -130,
                },
                sport=sport,
            )
        )
    frames, general = _replayed(lines)
    assert rows_of(frames.decoder) == rows_of(general)
    long_scans = [n for n in scanned if n > frames_mod._LONG_SCAN]
    assert len(long_scans) <= 2, f"{len(long_scans)} scans of the two long lines ({len(lines[0])} bytes each)"


def test_forget_over_two_long_lines_scans_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the identities first seen interleaved (a0, b0, a1, b1, ... in short lines: the decoder's dict
    # order), then each held by one of two long lines
    first = [{**ROW, "event_id": f"{p}{i}", "last_update": 10} for i in range(N) for p in "ab"]
    lines = [env("odds_update", *first[k : k + 20]) for k in range(0, len(first), 20)]
    lines += [_long("a", "nba", 1000), _long("b", "nba", 1000)]
    frames, general = _replayed(lines)
    scanned = _counting(monkeypatch)
    assert frames.decoder.forget(1000 + N // 2) == general.forget(1000 + N // 2) == N
    long_scans = [n for n in scanned if n > frames_mod._LONG_SCAN]
    assert rows_of(frames.decoder) == rows_of(general)
    assert len(long_scans) <= 2, f"{len(long_scans)} scans of the two long lines in one forget"
