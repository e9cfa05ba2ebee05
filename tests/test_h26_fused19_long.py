"""Issue 14 aim 2, session 19: the fused path keeps a long line's rows as the line too, within a budget.

Since session 18 an identity's last row (the decoder's ``_diff`` base) from a line of at most
``fused._LAZY_BYTES`` is kept as that line and the row's index, in the identity's record; a longer
line (an ``initial_state``) stored its typed rows, each freed cold at its identity's next row. Now
a longer line is kept so too while the long lines kept by a ``FusedFrames`` come to at most
``fused._LAZY_LONG_BYTES`` bytes in all (read when it is made); past that budget, typed rows as
before. A line longer than ``frames._LONG_SCAN`` keeps its scan (``LazyRows.scans``), so ``_diff``
rows (and ``forget``) reading long lines' rows in any order scan each once.

Held to: the decoder's rows read as the general decoder's (``frames._stored_row``) are the general
decoder's after every line of adversarial streams with many lines long (a small ``_LAZY_BYTES``)
and budgets from none to all, with ``forget`` between; the same quotes, skips and rows held; a
record's line entry set exactly while it is the decoder's row; the long lines records hold within
what the budget has given; past the budget, typed rows; one scan of each long line for ``_diff``
rows alternating between two long lines and short ones, and for ``forget``; the replay equal to the
general path. Performance: benchmarks/engine.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.skips import SkipLog
from dropengine.formats import frames as frames_mod
from dropengine.formats import fused
from dropengine.formats.frames import FrameDecoder, LazyRows
from dropengine.formats.fused import FusedFrames

from .test_h14_frames_fused import G, assert_same, env, envelopes, write
from .test_h25_fused18_rows import feed_fused, feed_general, rows_of

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
ROW = {**G, "home_ml": -110, "away_ml": 120, "home_spread": -3.5, "home_spread_price": -110}


def long_lines_held(frames: FusedFrames) -> dict[int, int]:
    """The long lines (longer than ``_LAZY_BYTES``) the records hold, by object: their lengths.
    Also checks each record: its line entry is set exactly while it is the decoder's row, and the
    row at its index is of its identity."""
    rows = frames.decoder._rows
    held: dict[int, int] = {}
    for ident, rec in frames._keys.items():
        line, i = rec[-2], rec[-1]
        assert (line is not None) == (rows.get(ident) is rec)
        if line is None:
            continue
        assert type(line) is LazyRows
        raw = line.row(i)
        assert (raw["event_id"], raw["bookmaker"]) == ident[1:3]
        if len(line.line) > fused._LAZY_BYTES:
            held[id(line)] = len(line.line)
    return held


@SETTINGS
@given(
    lines=st.lists(envelopes(), min_size=1, max_size=25),
    lazy=st.sampled_from((0, 120, 250)),
    budget=st.sampled_from((0, 300, 2_000, 64 << 20)),
    forget=st.lists(st.integers(0, 30), max_size=4),
    at=st.lists(st.integers(1_000, 1_062), min_size=4, max_size=4),
)
def test_long_lines_kept_within_the_budget_give_the_general_decoders_rows(
    monkeypatch: pytest.MonkeyPatch, lines: list[bytes], lazy: int, budget: int, forget: list[int], at: list[int]
) -> None:
    monkeypatch.setattr(fused, "_LAZY_BYTES", lazy)  # most lines long
    monkeypatch.setattr(fused, "_LAZY_LONG_BYTES", budget)
    frames, general = FusedFrames(FrameDecoder()), FrameDecoder()
    skips_f, skips_g = SkipLog(), SkipLog()
    for n, line in enumerate(lines):
        where = f"s:{n + 1}"
        assert feed_fused(frames, line, skips_f, where) == feed_general(general, line, skips_g, where)
        if n in forget:
            t = at[forget.index(n)]
            assert frames.decoder.forget(t) == general.forget(t)
        assert rows_of(frames.decoder) == rows_of(general)
        assert frames.decoder.identities_held == general.identities_held
        given = budget - frames._long_left
        assert 0 <= given <= budget
        assert sum(long_lines_held(frames).values()) <= given
    assert skips_f.counts == skips_g.counts


def rows(prefix: str, n: int, t: int, **extra: Any) -> list[dict[str, Any]]:
    return [{**ROW, "event_id": f"{prefix}{i}", "last_update": t + i, **extra} for i in range(n)]


def test_past_the_budget_a_long_lines_rows_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    first = env("initial_state", *rows("a", 60, 1000))
    second = env("odds_update", *rows("b", 60, 2000))
    assert len(first) > fused._LAZY_BYTES and len(second) > fused._LAZY_BYTES
    monkeypatch.setattr(fused, "_LAZY_LONG_BYTES", len(first) + len(second) - 1)  # room for the first only
    dec = FrameDecoder()
    frames = FusedFrames(dec)
    general = FrameDecoder()
    skips = SkipLog()
    for n, line in enumerate((first, second)):
        assert feed_fused(frames, line, skips, f"l:{n}") == feed_general(general, line, skips, f"l:{n}")
    assert frames._long_left == len(second) - 1
    kept = [dec._rows[("g", f"a{i}", "pin")] for i in range(60)]
    assert all(type(r) is list and r[-2].line is first and r[-1] == i for i, r in enumerate(kept))
    assert all(isinstance(dec._rows[("g", f"b{i}", "pin")], fused.Row) for i in range(60))
    assert all(frames._keys[("g", f"b{i}", "pin")][-2] is None for i in range(60))
    assert long_lines_held(frames) == {id(kept[0][-2]): len(first)}
    assert rows_of(dec) == rows_of(general)
    # a short line's row replaces a long line's, and a long line's (typed, past the budget) a record
    feed_fused(frames, env("odds_update", {**ROW, "event_id": "a3", "last_update": 3000}), skips, "l:3")
    assert dec._rows[("g", "a3", "pin")][-2].line is not first
    feed_fused(frames, env("odds_update", *rows("a", 60, 4000)), skips, "l:4")
    assert isinstance(dec._rows[("g", "a3", "pin")], fused.Row) and frames._keys[("g", "a3", "pin")][-2] is None


def test_diffs_alternating_between_long_and_short_lines_scan_each_line_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[int] = []
    raw_rows = frames_mod._raw_rows

    def counting(line: bytes | str) -> Any:
        scanned.append(len(line))
        return raw_rows(line)

    monkeypatch.setattr(frames_mod, "_raw_rows", counting)
    # two long lines (two sports' initial_states), then short lines; _diff rows merging in turn into a
    # row of each long line and of the last short line (break26's B26-1: a long line rescanned each time)
    lines = [env("initial_state", *rows("a", 400, 1000)), env("initial_state", *rows("b", 400, 1000), sport="nfl")]
    assert min(len(lines[0]), len(lines[1])) > frames_mod._LONG_SCAN
    for k in range(12):
        lines.append(env("odds_update", {**ROW, "event_id": f"s{k}", "last_update": 2000 + k}))
        lines.append(
            env(
                "odds_update",
                {
                    "_diff": True,
                    "event_id": f"a{k * 7}",
                    "bookmaker": "pin",
                    "last_update": 3000 + k,
                    "home_ml": -130 - k,
                },
                {"_diff": True, "event_id": f"s{k}", "bookmaker": "pin", "last_update": 3000 + k, "away_ml": 130 + k},
            )
        )
        lines.append(
            env(
                "odds_update",
                {"_diff": True, "event_id": f"b{k * 5}", "bookmaker": "pin", "last_update": 3000 + k, "away_ml": 90},
                sport="nfl",
            )
        )
    dec = FrameDecoder()
    frames = FusedFrames(dec)
    general = FrameDecoder()
    skips = SkipLog()
    for n, line in enumerate(lines):
        assert feed_fused(frames, line, skips, f"d:{n}") == feed_general(general, line, skips, f"d:{n}")
    assert rows_of(dec) == rows_of(general)
    assert sorted(scanned)[-2:] == sorted((len(lines[0]), len(lines[1])))  # each long line once
    assert len(scanned) == 14  # and each short line once
    # forget reads every kept row's time: the long lines are not scanned again
    assert dec.forget(1200) == general.forget(1200)
    assert rows_of(dec) == rows_of(general)
    assert len([n for n in scanned if n > frames_mod._LONG_SCAN]) == 2


@pytest.mark.parametrize("budget", [0, 64 << 20])
def test_a_replay_with_a_long_initial_state_equals_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    monkeypatch.setattr(fused, "_LAZY_LONG_BYTES", budget)
    snapshot = rows("a", 300, 1000) + [
        {"kind": "prop", "event_id": f"a{i}", "bookmaker": "pin", "market_key": "pts", "player": "Ann",
         "market": "Points", "line": 20.5, "last_update": 1000, "over_price": -110, "under_price": -110}
        for i in range(100)
    ]  # fmt: skip
    lines = [msgspec.json.encode({"type": "connected", "sport_key": "nba"}), env("initial_state", *snapshot)]
    for k in range(40):
        i = (k * 37) % 300
        lines.append(env("odds_update", {**ROW, "event_id": f"a{i}", "last_update": 2000 + k, "home_ml": -150},
                         {"_diff": True, "event_id": f"a{(i + 1) % 300}", "bookmaker": "pin",
                          "last_update": 2000 + k, "away_ml": 160 + k},
                         {"kind": "prop", "event_id": f"a{k % 100}", "bookmaker": "pin", "market_key": "pts",
                          "player": "Ann", "_diff": True, "last_update": 2000 + k, "over_price": -140}))  # fmt: skip
    out = assert_same([write(tmp_path / "r.ndjson", lines)])
    assert out.count(b'"odds_drop"') >= 40
