"""Bad input never stops a replay and never loses good data (regressions from review).

Each test feeds one kind of broken or unusual input and checks that the good rows around
it are still processed, and that the bad part is skipped, counted and located.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dropengine import DropEngine, FrameDecoder, SkipLog, SSEParser, quote_from_row, quotes_from_odds_api, replay
from dropengine.cli.group import main
from dropengine.core.errors import FeedError
from dropengine.io.replay import ReplayStats

from .conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
FRAMES = GOLDEN / "frames.ndjson"


def run(paths: list[Path], fmt: str = "auto") -> tuple[list[dict[str, Any]], ReplayStats]:
    stats = ReplayStats()
    return [d.to_dict() for d in replay(paths, DropEngine(), fmt, stats)], stats


def golden_frames() -> list[dict[str, Any]]:
    return run([FRAMES])[0]


def test_non_ascii_digits_are_bad_values_not_crashes(tmp_path: Path) -> None:
    lines = FRAMES.read_text().splitlines()
    lines.insert(4, json.dumps({"type": "odds_update", "sport_key": "nba", "data": [
        {"event_id": "X", "bookmaker": "b", "last_update": "²", "home_ml": -110},
        {"event_id": "Y", "bookmaker": "b", "last_update": 1, "home_ml": "\u0661\u0661\u0660"},
        {"event_id": "Z", "bookmaker": "b", "last_update": 1, "home_ml": "1_10"},
        {"event_id": "W", "bookmaker": "b", "last_update": 10**30, "home_ml": -110},
    ]}))
    path = tmp_path / "f.ndjson"
    path.write_text("\n".join(lines) + "\n")
    drops, stats = run([path])
    assert drops == golden_frames()
    assert stats.skips.counts["bad time"] == 2 and stats.skips.counts["invalid price"] == 3
    assert SSEParser().feed("retry: ²\ndata: x\n\n")[0].retry is None


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    blob = gzip.compress(FRAMES.read_bytes())
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(blob[: len(blob) - 40])
    drops, stats = run([path])
    assert stats.skips.counts.get("unreadable file") == 1
    assert drops == golden_frames()[: len(drops)]


def test_truncated_real_snapshot_series_still_replays(nfl_dir: Path, tmp_path: Path) -> None:
    blob = (nfl_dir / "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz").read_bytes()
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(blob[: len(blob) // 3])
    drops, stats = run([path])
    assert len(drops) > 50 and stats.skips.counts == {"unreadable file": 1}


def test_forced_format_on_the_wrong_file_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "notgz.ndjson.gz"
    fake.write_bytes(FRAMES.read_bytes())
    drops, stats = run([fake], "frames")
    assert drops == [] and stats.skips.counts == {"unreadable file": 1}
    result = CliRunner().invoke(main, ["replay", "--format", "sse", str(tmp_path / "nothing")])
    assert result.exit_code == 2


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(FRAMES), "-o", str(tmp_path / "no" / "dir" / "x.ndjson")])
    assert result.exit_code == 2 and "output" in result.stderr


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"{not json\n", b"\n\n"])
def test_auto_detection_survives_bom_bad_first_line_and_blank_lines(tmp_path: Path, prefix: bytes) -> None:
    path = tmp_path / "f.ndjson"
    path.write_bytes(prefix + FRAMES.read_bytes())
    drops, _ = run([path])
    assert drops == golden_frames()


def test_empty_file_is_reported_and_does_not_stop_the_others(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    drops, stats = run([FRAMES, empty])
    assert drops == golden_frames() and stats.skips.counts["empty file"] == 1


def test_empty_directory_is_reported(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    drops, stats = run([FRAMES, tmp_path / "d"])
    assert drops == golden_frames() and stats.skips.counts["empty directory"] == 1


def test_bom_in_csv_and_sse(tmp_path: Path) -> None:
    csv_path = tmp_path / "q.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + (GOLDEN / "rules.quotes.csv").read_bytes())
    assert len(run([csv_path])[0]) == 8
    sse = tmp_path / "c.sse"
    sse.write_bytes(b"\xef\xbb\xbf" + (GOLDEN / "capture.sse").read_bytes())
    assert run([sse])[0] == run([GOLDEN / "capture.sse"])[0]


def test_game_row_with_null_prop_fields_is_a_game_row() -> None:
    row = {"event_id": "E1", "bookmaker": "b", "last_update": 1, "home_ml": -110, "player": None,
           "market_key": None, "line": None}
    skips = SkipLog()
    out = FrameDecoder().feed({"type": "odds_update", "sport_key": "nba", "data": [row]}, skips)
    assert [q.side for q in out] == ["h2h_home"] and not skips


def test_table_sides_are_canonical_and_validated() -> None:
    base = {"sport_key": "nba", "event_id": "E", "bookmaker": "b", "price": -110, "last_update": 1}
    assert quote_from_row({**base, "side": "spread_home@-3.0"}).side == "spread_home@-3"
    assert quote_from_row({**base, "side": "total_over@+220.50"}).side == "total_over@220.5"
    for bad in ("garbage", "spread_home", "h2h_visitor", "pts:player:over@x", "spread_home@1_0",
                "total_over@1e1", "spread_home@ 3", "total_over@inf"):
        with pytest.raises(FeedError):
            quote_from_row({**base, "side": bad})
    with pytest.raises(FeedError, match="event_id"):
        quote_from_row({**base, "side": "h2h_home", "event_id": [1]})
    assert quote_from_row({**base, "side": "h2h_home", "event_id": 123}).event_id == "123"


def event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "id": "e", "sport_key": "nba", "home_team": "H", "away_team": "A", "commence_time": "2026-01-01T00:00:00Z",
        "bookmakers": [{"key": "b", "last_update": "2026-01-01T00:00:00Z", "markets": [
            {"key": "player_points", "last_update": None, "outcomes": [
                {"name": "Yes", "price": -110},
                {"name": "Over", "description": "P", "price": -110, "point": 20.5},
                {"name": "Under", "description": "P", "price": 1.91, "point": 20.5},
            ]}]}],
    }
    ev.update(over)
    return ev


def test_odds_api_single_event_props_and_fallbacks(tmp_path: Path) -> None:
    skips = SkipLog()
    quotes = quotes_from_odds_api([event()], skips)
    # "Yes" does not drop the rest; a decimal price (1.91) is a number: a quote the engine
    # counts invalid (issue 11: the engine judges price validity), not a reader skip
    assert [(q.side, q.price) for q in quotes] == [("player_points:P:over@20.5", -110),
                                                   ("player_points:P:under@20.5", 1.91)]
    assert quotes[0].last_update == 1767225600000  # null market time falls back to the book's
    assert skips.counts == {"unknown outcome": 1}
    single = tmp_path / "event.json"
    single.write_text(json.dumps(event()))  # /events/{id}/odds answers one object, not a list
    assert run([single])[1].quotes == 2


def test_rotated_frames_recording_keeps_its_diff_bases(tmp_path: Path) -> None:
    lines = FRAMES.read_text().splitlines(keepends=True)
    for cut in (3, 4, 8, 10):
        a, b = tmp_path / f"a{cut}.ndjson", tmp_path / f"b{cut}.ndjson"
        a.write_text("".join(lines[:cut]))
        b.write_text("".join(lines[cut:]))
        assert run([a, b])[0] == golden_frames()
        assert run([b, a])[0] == golden_frames()


def test_alert_timestamps_do_not_depend_on_key_interleaving(tmp_path: Path) -> None:
    rows = [("k1", -110, 1000), ("k1", -130, 2000), ("k2", -110, 5000), ("k2", -130, 9000)]

    def write(name: str, order: list[int]) -> Path:
        p = tmp_path / name
        p.write_text("".join(json.dumps({"sport_key": "nba", "event_id": rows[i][0], "bookmaker": "b",
                                         "side": "h2h_home", "price": rows[i][1], "last_update": rows[i][2]}) + "\n"
                             for i in order))
        return p

    a = run([write("a.ndjson", [0, 1, 2, 3])])[0]
    b = run([write("b.ndjson", [2, 3, 0, 1])])[0]
    assert sorted(a, key=lambda d: d["event_id"]) == sorted(b, key=lambda d: d["event_id"])
    assert {d["timestamp"] for d in a} == {2000, 9000}


def test_spread_and_total_alerts_carry_their_line() -> None:
    eng = DropEngine()
    eng.observe_many(FrameDecoder().feed({"type": "initial_state", "sport_key": "nba", "data": [
        {"event_id": "E", "bookmaker": "b", "last_update": 1, "home_spread": -3, "home_spread_price": -110}]},
        SkipLog()))
    [d] = eng.observe_many(FrameDecoder().feed({"type": "odds_update", "sport_key": "nba", "data": [
        {"event_id": "E", "bookmaker": "b", "last_update": 2, "home_spread": -3, "home_spread_price": -125}]},
        SkipLog()))
    assert d.to_dict()["line"] == -3


def test_csv_output_keeps_integer_prices_beside_fractional_ones(tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    result = CliRunner().invoke(main, ["replay", "-q", str(GOLDEN / "rules.quotes.ndjson"), "-o", str(out)])
    assert result.exit_code == 0
    text = out.read_text()
    assert ",-120,-132,-12," in text and ",-112.5,-122.5,-10.0," in text


def test_forget_after_string_last_update() -> None:
    dec = FrameDecoder()
    dec.feed({"type": "odds_update", "sport_key": "nba",
              "data": [{"event_id": "E", "bookmaker": "b", "last_update": "1000", "home_ml": -110}]}, SkipLog())
    assert dec.forget(2000) == 1


def test_sse_empty_chunk_between_cr_and_lf() -> None:
    p = SSEParser()
    events = [*p.feed("data: a\r"), *p.feed(""), *p.feed("\ndata: b\r\n\r\n")]
    assert [e.data for e in events] == ["a\nb"]
