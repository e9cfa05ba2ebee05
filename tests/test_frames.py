"""The pure frame decoder (SPEC section 5), the SSE parser, and the k-way merge (section 6)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import FrameDecoder, SkipLog, SSEParser
from dropengine.core.merge import merge_by_clock, monotone

GAME = {
    "kind": "game", "event_id": "E1", "bookmaker": "pin", "home_team": "H", "away_team": "A",
    "commence_time": "2026-01-01T00:00:00Z", "last_update": 1000, "home_ml": -110, "away_ml": 100,
    "draw_ml": 250, "home_spread": -1.5, "away_spread": 1.5, "home_spread_price": -105,
    "away_spread_price": -115, "total": 220, "over_price": -110, "under_price": None,
}


def env(*rows: dict[str, Any], etype: str = "odds_update", sport: str | None = "nba") -> dict[str, Any]:
    e: dict[str, Any] = {"type": etype, "data": list(rows)}
    if sport:
        e["sport_key"] = sport
    return e


def sides(quotes: list[Any]) -> list[tuple[str, Any]]:
    return [(x.side, x.price) for x in quotes]


def test_game_row_yields_every_present_price_field() -> None:
    skips = SkipLog()
    out = FrameDecoder().feed(env(GAME), skips)
    assert sides(out) == [
        ("h2h_home", -110), ("h2h_away", 100), ("h2h_draw", 250), ("spread_home@-1.5", -105),
        ("spread_away@1.5", -115), ("total_over@220", -110), ("total_under@220", None),
    ]
    assert all(x.sport_key == "nba" and x.last_update == 1000 and x.home_team == "H" for x in out)
    assert {x.market_key for x in out} == {"h2h", "spreads", "totals"}
    assert not skips


def test_absent_price_or_null_line_yields_no_quote() -> None:
    row = {"event_id": "E1", "bookmaker": "pin", "last_update": 1, "home_ml": -110,
           "home_spread": None, "home_spread_price": -110, "over_price": -110}
    assert sides(FrameDecoder().feed(env(row), SkipLog())) == [("h2h_home", -110)]


def test_prop_rows_and_diff_merge_by_identity() -> None:
    dec = FrameDecoder()
    prop = {"kind": "prop", "event_id": "E1", "bookmaker": "pin", "player": "A:B", "market_key": "player_points",
            "market": "Points", "line": 24.5, "over_price": -115, "under_price": -105, "last_update": 1}
    other = {**prop, "player": "C", "over_price": 120}
    dec.feed(env(prop, other), SkipLog())
    out = dec.feed(env({"kind": "prop", "event_id": "E1", "bookmaker": "pin", "player": "A:B",
                        "market_key": "player_points", "_diff": True, "last_update": 2, "over_price": -130}),
                   SkipLog())
    assert sides(out) == [("player_points:A:B:over@24.5", -130), ("player_points:A:B:under@24.5", -105)]
    assert all(x.last_update == 2 and x.market == "Points" and x.player == "A:B" for x in out)
    assert dec.identities_held == 2


def test_diff_merges_into_the_last_full_row_and_becomes_the_base() -> None:
    dec = FrameDecoder()
    dec.feed(env(GAME), SkipLog())
    a = dec.feed(env({"event_id": "E1", "bookmaker": "pin", "_diff": True, "last_update": 2, "total": 221}),
                 SkipLog())
    assert ("total_over@221", -110) in sides(a) and ("h2h_home", -110) in sides(a)
    b = dec.feed(env({"event_id": "E1", "bookmaker": "pin", "_diff": True, "last_update": 3, "over_price": -120}),
                 SkipLog())
    assert ("total_over@221", -120) in sides(b)  # the merged row is the new base


def test_diff_without_a_base_decodes_what_it_has() -> None:
    out = FrameDecoder().feed(env({"event_id": "E9", "bookmaker": "pin", "_diff": True, "last_update": 5,
                                   "away_ml": 120}), SkipLog())
    assert sides(out) == [("h2h_away", 120)]


def test_non_data_and_unknown_envelopes_are_counted_not_decoded() -> None:
    dec = FrameDecoder()
    skips = SkipLog()
    for t in ("connected", "hot_feed_status", "heartbeat", "subscribed", "unsubscribed", "surprise"):
        assert dec.feed({"type": t, "data": [GAME]}, skips) == []
    assert dec.unknown_types == 1 and dec.envelopes["heartbeat"] == 1 and not skips


def test_bad_envelopes_rows_and_fields_are_skipped_with_position() -> None:
    dec = FrameDecoder()
    skips = SkipLog()
    assert dec.feed([1, 2], skips, "f:1") == []
    assert dec.feed({"data": []}, skips, "f:2") == []
    assert dec.feed({"type": "odds_update", "data": "x"}, skips, "f:3") == []
    out = dec.feed(env("row", {**GAME, "bookmaker": ""}, {**GAME, "last_update": "soon"},
                       {**GAME, "home_ml": True, "away_ml": "+120", "draw_ml": "abc", "home_spread": "x"}),
                   skips, "f:4")
    # the fourth row keeps its good fields: "+120" is a plain number, True/"abc" are not prices
    assert ("h2h_away", 120) in sides(out) and ("total_over@220", -110) in sides(out)
    assert {s.where for s in skips.first} >= {"f:1", "f:2", "f:3", "f:4 row 0", "f:4 row 1", "f:4 row 2", "f:4 row 3"}
    assert skips.counts == {"bad envelope": 3, "bad row": 1, "missing field": 1, "bad time": 1,
                            "invalid price": 2, "bad line": 1}


def test_sport_key_falls_back_to_the_decoder_default() -> None:
    skips = SkipLog()
    assert FrameDecoder().feed(env(GAME, sport=None), skips) == []
    assert skips.counts == {"missing field": 1}
    assert FrameDecoder("nfl").feed(env(GAME, sport=None), SkipLog())[0].sport_key == "nfl"


def test_forget_bounds_the_remembered_rows() -> None:
    dec = FrameDecoder()
    dec.feed(env(GAME, {**GAME, "event_id": "E2", "last_update": 5000}), SkipLog())
    assert dec.forget(2000) == 1 and dec.identities_held == 1


# -- SSE ------------------------------------------------------------------------------------

STREAM = (
    ": comment\r\n\r\nretry: 100\nevent: odds\nid: 7\ndata: {\"a\":\r\ndata: 1}\n\n"
    "data: second\r\rdata:no-space\n\nid: 9\ndata: x\n\n"
)


def parse(chunks: list[str]) -> tuple[list[Any], bool]:
    p = SSEParser()
    events = [e for c in chunks for e in p.feed(c)]
    return [(e.event, e.id, e.data, e.retry) for e in events], p.close()


def test_sse_fields_line_endings_and_comments() -> None:
    events, partial = parse([STREAM])
    assert events == [
        ("odds", "7", '{"a":\n1}', 100), ("message", "7", "second", None),
        ("message", "7", "no-space", None), ("message", "9", "x", None),
    ]
    assert partial is False


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_sse_chunking_never_changes_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert parse(chunks) == parse([STREAM])


def test_sse_partial_event_is_discarded() -> None:
    events, partial = parse(["data: one\n\ndata: {\"cut\": tr"])
    assert [e[2] for e in events] == ["one"] and partial is True
    events, partial = parse(["data: one\n\ndata: two\n"])  # complete line, no blank line yet
    assert [e[2] for e in events] == ["one"] and partial is True


# -- merge ----------------------------------------------------------------------------------

def test_merge_orders_by_clock_with_ties_in_stream_order() -> None:
    a = [(1, "a1"), (3, "a3"), (3, "a3b"), (5, "a5")]
    b = [(0, "b0"), (3, "b3"), (9, "b9")]
    assert [x for _, x in merge_by_clock([a, b])] == ["b0", "a1", "a3", "a3b", "b3", "a5", "b9"]
    assert [x for _, x in merge_by_clock([b, a])] == ["b0", "a1", "b3", "a3", "a3b", "a5", "b9"]


def test_monotone_clock_keeps_an_unsorted_stream_in_its_own_order() -> None:
    assert list(monotone([(5, "x"), (2, "y"), (7, "z")])) == [(5, "x"), (5, "y"), (7, "z")]


@given(st.lists(st.lists(st.integers(0, 50), max_size=20), min_size=1, max_size=5))
def test_merge_is_a_stable_sorted_union(streams: list[list[int]]) -> None:
    tagged = [[(c, (i, j)) for j, c in enumerate(sorted(s))] for i, s in enumerate(streams)]
    merged = list(merge_by_clock(tagged))
    assert sorted(merged, key=lambda p: (p[0], p[1][0], p[1][1])) == merged
    assert sorted(x for s in tagged for x in s) == sorted(merged)
