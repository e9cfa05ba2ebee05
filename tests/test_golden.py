"""Golden recordings: hand-written inputs in every format with hand-checked expected alerts.

Each ``*.expected*.ndjson`` lists the alerts in detection order with the fields checked by
hand (the ``line`` key says which input line raised it and is not compared). The same
rules file exists as NDJSON, CSV and Parquet; the frames file also exists as an SSE capture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dropengine import DropEngine, replay
from dropengine.io.replay import ReplayStats

from .conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
CHECKED = ("event_id", "bookmaker", "side", "prev", "new", "delta", "direction", "elapsed_ms")


def expected(name: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (GOLDEN / name).read_text().splitlines() if line.strip()]
    for r in rows:
        r.pop("line", None)
        if "line_value" in r:
            r["line"] = r.pop("line_value")
    return rows


def run(paths: list[Path], **kw: Any) -> tuple[list[dict[str, Any]], ReplayStats, DropEngine]:
    fmt = kw.pop("fmt", "auto")
    engine = DropEngine(**kw)
    stats = ReplayStats()
    drops = [d.to_dict() for d in replay(paths, engine, fmt, stats)]
    return drops, stats, engine


def project(drops: list[dict[str, Any]], want: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each alert cut down to the keys its expected row checks."""
    keys = [tuple(w) for w in want]
    if len(keys) != len(drops):
        return drops
    return [{k: d.get(k) for k in ks} for d, ks in zip(drops, keys, strict=True)]


@pytest.mark.parametrize("suffix", ["ndjson", "csv", "parquet"])
@pytest.mark.parametrize("reference", ["last", "anchor"])
def test_rules_in_every_table_format(suffix: str, reference: str) -> None:
    want = expected(f"rules.expected.{reference}.ndjson")
    drops, stats, engine = run([GOLDEN / f"rules.quotes.{suffix}"], reference=reference)
    assert project(drops, want) == want
    c = engine.counters
    assert (c.primed, c.stale, c.suspended, c.repeated, c.alerts) == (8, 1, 1, 2, len(want))
    # The numeric out-of-range prices (+50, -99) are the engine's to judge (issue 11): counted
    # invalid in every format, never a reader skip.
    assert c.invalid == 2
    # Every row that cannot become a quote is skipped, counted by reason, and located by line/row.
    if suffix == "parquet":  # typed columns cannot hold 'abc', 'yesterday' or a ragged line
        assert stats.skips.counts == {"missing field": 1}
    else:
        bad_line = "bad json" if suffix == "ndjson" else "bad row"
        assert stats.skips.counts == {"invalid price": 1, "missing field": 1, "bad time": 1, bad_line: 1}
        off = 1 if suffix == "csv" else 0  # the CSV header shifts lines by one
        assert [s.where for s in stats.skips.first] == [
            f"rules.quotes.{suffix}:{n + off}" for n in (18, 26, 27, 28)
        ]


def test_rules_prices_keep_their_type() -> None:
    drops, _, _ = run([GOLDEN / "rules.quotes.ndjson"])
    assert all(type(d["prev"]) is int for d in drops if d["side"] != "spread_away@3.5")
    frac = next(d for d in drops if d["side"] == "spread_away@3.5")
    assert (frac["prev"], frac["new"], frac["delta"]) == (-112.5, -122.5, -10.0)
    assert type(frac["delta"]) is float


def test_rules_direction_threshold_and_filters() -> None:
    want = expected("rules.expected.last.ndjson")
    fav, _, _ = run([GOLDEN / "rules.quotes.ndjson"], direction="toward_favorite")
    assert project(fav, [w for w in want if w["delta"] < 0]) == [w for w in want if w["delta"] < 0]
    big, _, _ = run([GOLDEN / "rules.quotes.ndjson"], threshold=20)
    assert [(d["side"], d["delta"]) for d in big] == [("h2h_home", -20)]
    nhl, _, _ = run([GOLDEN / "rules.quotes.ndjson"], sports="icehockey_nhl")
    assert [d["event_id"] for d in nhl] == ["E2"]
    props, _, _ = run([GOLDEN / "rules.quotes.ndjson"], kinds="prop")
    assert [d["player"] for d in props] == ["O:Neal @ LA"]
    assert props[0]["market_key"] == "player_points" and props[0]["line"] == 24.5
    dk, _, _ = run([GOLDEN / "rules.quotes.ndjson"], bookmakers="draftkings,fanduel", markets="h2h")
    assert [(d["bookmaker"], d["side"]) for d in dk] == [("fanduel", "h2h_home")]


@pytest.mark.parametrize("name", ["frames.ndjson", "capture.sse"])
def test_frames_and_sse_capture(name: str) -> None:
    want = expected("frames.expected.ndjson")
    drops, stats, engine = run([GOLDEN / name])
    assert project(drops, want) == want
    assert stats.unknown_envelope_types == 1
    assert stats.envelopes["odds_update"] == 7
    reasons = {"bad json": 1, "missing field": 1, "invalid price": 1}
    if name == "capture.sse":
        reasons["partial event"] = 1  # the truncated last event is discarded, never parsed
    assert stats.skips.counts == reasons
    c = engine.counters
    assert (c.primed, c.stale, c.suspended, c.alerts) == (12, 6, 1, 4)
    # The alert carries the metadata of the merged full row, not just of the diff.
    assert drops[0]["home_team"] == "Los Angeles Lakers"
    assert drops[0]["commence_time"] == "2026-05-12T22:30:00Z"


def test_sse_capture_never_parses_the_cut_event() -> None:
    drops, _, engine = run([GOLDEN / "capture.sse"])
    assert all(d["new"] != -200 for d in drops)
    assert engine.price_of("E1", "pinnacle", "h2h_home") == -125


@pytest.mark.parametrize("path", ["theoddsapi", "theoddsapi_snapshots.ndjson"])
def test_the_odds_api_directory_and_snapshots(path: str) -> None:
    want = expected("theoddsapi.expected.ndjson")
    drops, stats, engine = run([GOLDEN / path])
    assert project(drops, want) == want
    assert engine.counters.repeated == 2  # the unchanged totals market is a re-observation
    assert engine.keys_held == 10  # the moved spread line primes two new sides
    # the decimal price (1.91) is a number: the engine counts it invalid (issue 11), no reader skip
    assert stats.skips.counts == {"unsupported market": 1, "unknown outcome": 1}
    assert engine.counters.invalid == 1


def test_the_odds_api_single_files_in_either_order_of_arguments() -> None:
    files = sorted((GOLDEN / "theoddsapi").iterdir())
    want = expected("theoddsapi.expected.ndjson")
    forward, _, _ = run(files)
    backward, _, _ = run(files[::-1])  # merged by clock, so argument order does not matter
    assert project(forward, want) == want
    assert backward == forward


def test_several_formats_merge_like_one_stream() -> None:
    """Recordings of different sports and formats replay as the k-way merge of their clocks."""
    frames, odds_api = GOLDEN / "frames.ndjson", GOLDEN / "theoddsapi"
    alone_a, _, _ = run([frames])
    alone_b, _, _ = run([odds_api])
    # frames.ndjson runs at t=1..7 s, the Odds API files in 2025: the merge puts one after the other
    assert run([frames, odds_api])[0] == alone_a + alone_b
    assert run([odds_api, frames])[0] == alone_a + alone_b
