"""Small pieces the lead added while folding issue 10 together."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropengine.core.errors import ConfigError
from dropengine.server.sources import ManualSource


def test_pushing_to_a_server_that_is_not_running_names_the_problem() -> None:
    with pytest.raises(ConfigError, match="push: the server is not running"):
        ManualSource().push([], timeout_s=0.01)


def _deep(n: int) -> object:
    """A Python list nested ``n`` levels (built without recursion)."""
    v: object = []
    for _ in range(n):
        v = [v]
    return v


def test_many_leading_byte_order_marks_are_one_line_not_a_crash() -> None:
    from dropengine.formats.jsonline import decode_json

    # each BOM used to cost a recursive call: about a thousand of them raised RecursionError
    assert decode_json(b"\xef\xbb\xbf" * 5000 + b"{}") == {}
    assert decode_json("\ufeff" * 5000 + "{}") == {}


def test_a_deep_row_on_the_resume_path_is_a_skip_not_a_stopped_stream() -> None:
    from dropengine.core.skips import SkipLog
    from dropengine.formats.frames import FrameDecoder

    row = {"event_id": "E1", "bookmaker": "pin", "home_team": "A", "away_team": "B",
           "commence_time": "2026-01-01T00:00:00Z", "last_update": 1_000, "home_ml": -110,
           "junk": _deep(20_000)}  # decodes when it arrives shallow; fingerprinting it recursed
    dec, skips = FrameDecoder(sport_key="basketball_nba"), SkipLog()
    dec.feed({"type": "connected", "sport_key": "basketball_nba"}, skips, "a:1")
    first = dec.feed({"type": "odds_update", "data": [row]}, skips, "a:2")
    assert [q.price for q in first] == [-110]
    dec.feed({"type": "connected", "sport_key": "basketball_nba"}, skips, "a:3")  # a reconnect
    good = dict(row, event_id="E2", junk=None)
    again = dec.feed({"type": "initial_state", "data": [row, good]}, skips, "a:4")
    assert [q.event_id for q in again] == ["E2"]  # the row already processed is dropped


def test_concatenated_csvs_with_byte_order_marks_read_as_one(tmp_path: Path) -> None:
    from dropengine.io.replay import ReplayStats, read_quotes

    def part(event: str) -> bytes:
        return ("\ufeffsport_key,event_id,bookmaker,side,price,last_update\n"
                f"basketball_nba,{event},pin,h2h_home,-110,1000\n"
                f"basketball_nba,{event},pin,h2h_home,-125,2000\n").encode()

    path = tmp_path / "ab.csv"
    path.write_bytes(part("E1") + part("E2"))  # cat a.csv b.csv of two spreadsheet exports
    stats = ReplayStats()
    quotes = [q for batch, _ in read_quotes([path], "auto", stats) for q in batch]
    assert [q.event_id for q in quotes] == ["E1", "E1", "E2", "E2"]
    assert not stats.skips, [str(s) for s in stats.skips.first]


def test_the_spec_7_types_and_line_threshold_parameters_are_known() -> None:
    from dropengine.server.params import ParamError, parse_request

    # SPEC 7's defaults are accepted (they were 400 "unknown parameter")
    parse_request([("types", "odds_drop"), ("line_threshold", "0.5")], multi=False)
    parse_request([("line_threshold", "0.25")])
    parse_request([("line_threshold", "20")])
    # issue 12: the server detects every type (tests/test_h12_server_signals.py)
    parse_request([("types", "steam")])
    parse_request([("types", "odds_drop,line_move")])
    for query, named in (([("types", "odds")], "types"), ([("line_threshold", "0.1")], "line_threshold"),
                         ([("line_threshold", "nan")], "line_threshold"),
                         ([("line_threshold", "21")], "line_threshold")):
        with pytest.raises(ParamError) as info:
            parse_request(query)
        assert info.value.parameter == named


def test_data_time_is_monotone_capped_and_needs_two_batches_to_jump() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from dropengine import Quote
    from dropengine.core.dataclock import SLACK_MS, DataClock

    limit = 3_600_000
    batches = st.lists(st.tuples(st.lists(st.integers(0, 10**13), min_size=1, max_size=4),
                                 st.integers(0, 10**13)), max_size=12)

    @settings(max_examples=200, deadline=None)
    @given(batches)
    def check(feed: list[tuple[list[int], int]]) -> None:
        clock = DataClock(limit)
        previous = -1
        pending = False
        for times, now in feed:
            quotes = [Quote("s", "e", "b", "h2h_home", -110, t) for t in times]
            clock.advance(quotes, now)
            if previous >= 0 and clock.ms - previous > limit:
                assert pending  # a jump past the limit only after a batch left one pending
            pending = clock.pending
            assert clock.ms >= previous  # never goes back
            if clock.ms != previous:
                assert clock.ms <= now + SLACK_MS  # never past the arrival plus the slack
            previous = clock.ms

    check()
    # one far row alone does not move data time past the limit; the next far batch confirms
    clock = DataClock(limit)
    t = 1_700_000_000_000
    clock.advance([Quote("s", "e", "b", "h2h_home", -110, t)], t)
    clock.advance([Quote("s", "e", "b", "h2h_home", -110, t + 10 * limit)], None)
    assert clock.ms == t and clock.pending
    clock.advance([Quote("s", "e", "b", "h2h_home", -110, t + 1000)], None)
    assert clock.ms == t + 1000 and not clock.pending  # cancelled by a normal batch
    clock.advance([Quote("s", "e", "b", "h2h_home", -110, t + 10 * limit)], None)
    clock.advance([Quote("s", "e", "b", "h2h_home", -110, t + 10 * limit + 5)], None)
    assert clock.ms == t + 10 * limit  # confirmed: the nearer of the two far rows


def test_a_thread_save_takes_the_source_position_on_the_loop_before_holding(tmp_path: Path) -> None:
    """Without fork, quotes are held while a worker thread encodes; the source position must
    be read on the loop at that moment (read in the thread, it could count held quotes that
    the saved engine does not have, and a restart would skip them)."""
    import asyncio
    import threading
    from typing import Any

    from dropengine import Quote
    from dropengine.server.app import DropServer, ServeConfig

    calls: list[int] = []

    class Counting(ManualSource):
        def cursors(self) -> dict[str, int]:
            calls.append(threading.get_ident())
            return {"basketball_nba": 1}

    async def scenario() -> Any:
        srv = DropServer(Counting(), ServeConfig(state_path=tmp_path / "s.state", state_fork=False))
        srv.ingest([Quote("basketball_nba", "E1", "pin", "h2h_home", -110, 1_000)], 1_000)
        await srv.save_async()
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert calls and set(calls) == {loop_thread}
    assert (tmp_path / "s.state").exists()
