"""The mock upstream's pure parts, now apart from its server: frames, row filters under a
:class:`StreamQuery`, command replies, and the replay clock's snapshot/cursor step."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.keys import KeyRecord
from dropengine.formats.query import StreamQuery
from dropengine.formats.sse import SSEParser, encode_event
from dropengine.formats.vendor import GAME_MARKET_FIELDS
from dropengine.mock.clock import ReplayClock
from dropengine.mock.connection import Conn, ConnectionRecord
from dropengine.mock.frames import command_reply, filter_rows, hot_feed_status_frame
from dropengine.mock.timeline import Release, Timeline


def game(event: str, book: str, lu: int, **prices: Any) -> dict[str, Any]:
    return {"kind": "game", "event_id": event, "bookmaker": book, "last_update": lu, **prices}


ROWS = [
    game("e1", "pinnacle", 1000, home_ml=-120, away_ml=110, total=210.5, over_price=-110),
    game("e2", "fanduel", 2000, home_ml=150, away_ml=-170),
    {"kind": "prop", "event_id": "e1", "bookmaker": "pinnacle", "market_key": "player_points",
     "player": "A", "line": 20.5, "over_price": -115, "under_price": -105, "last_update": 1500},
]


@given(st.sampled_from([None, "e1", "e2"]), st.lists(st.sampled_from(["pinnacle", "fanduel"]), unique=True),
       st.lists(st.sampled_from(["h2h", "totals", "player_points"]), unique=True),
       st.lists(st.sampled_from(["game", "prop"]), unique=True))
def test_every_row_sent_matches_every_filter(event: str | None, books: list[str], markets: list[str],
                                             kinds: list[str]) -> None:
    q = StreamQuery.build(event, books or None, markets or None, kinds or None)
    for row in filter_rows(ROWS, q, q.event_id):
        assert event is None or row["event_id"] == event
        assert not books or row["bookmaker"] in books
        assert not kinds or row["kind"] in kinds
        if markets and row["kind"] == "game":  # only the asked markets' fields, at least one of them
            fields = {m: set(fs) & set(row) for m, fs in GAME_MARKET_FIELDS.items()}
            assert not any(fields[m] for m in fields if m not in markets)
            assert any(fields[m] for m in markets if m in fields)
        if markets and row["kind"] == "prop":
            assert row["market_key"] in markets
    # no filter at all: the very same row objects
    assert all(a is b for a, b in zip(filter_rows(ROWS, StreamQuery(), None), ROWS, strict=True))


def test_command_replies_and_subscription_changes() -> None:
    assert command_reply('{"type":"subscribe","event_id":"e1"}', 7) == (
        {"type": "subscribed", "event_id": "e1", "timestamp": 7}, "e1", True)
    assert command_reply('{"type":"unsubscribe"}', 7) == ({"type": "unsubscribed", "timestamp": 7}, None, True)
    for bad in ("nope", '{"type":"subscribe"}', '{"type":"x"}', "[" * 10_000):
        reply, _, changed = command_reply(bad, 7)
        assert reply["type"] == "error" and not changed


def test_a_connection_applies_commands_and_caps_its_replies() -> None:
    async def scenario() -> Conn:
        conn = Conn("s", "ws", "k", KeyRecord("k", "business", 1), StreamQuery(), 5,
                    ConnectionRecord("s", 1, "ws"), None)
        conn.command('{"type":"subscribe","event_id":"e2"}')
        for _ in range(500):
            conn.command("junk")
        return conn

    conn = asyncio.run(scenario())
    assert conn.subscribed == "e2" and len(conn.pending) == 100 and conn.wake.is_set()


def test_snapshot_and_cursor_are_one_step() -> None:
    rels = [Release("s", 0, [ROWS[0]]), Release("s", 10, [ROWS[1]]), Release("s", 20, [ROWS[2]])]
    clock = ReplayClock(Timeline(rels, sports=["s"]), None, 0.0, 100)
    for rel in rels[:2]:
        clock.release(rel)
    rows, cursor = clock.snapshot("s", None)
    assert cursor == 2 and {r["event_id"] for r in rows} == {"e1", "e2"}
    rows, cursor = clock.snapshot("s", 1500)  # from the release whose newest last_update reached 1500
    assert cursor == 2 and rows == [ROWS[1]]
    clock.release(rels[2])
    assert clock.snapshot("s", 2001) == ([], 3)  # nothing newer yet; the cursor is at the end
    status = hot_feed_status_frame("s", clock.current_rows("s"), clock.clock_ms, 0)
    assert [s["bookmaker"] for s in status["sources"]] == ["fanduel", "pinnacle"]


def test_the_mock_frame_is_the_one_sse_encoding() -> None:
    data = b'{"type":"heartbeat"}'
    assert encode_event(data) == b"data: " + data + b"\n\n"  # what clients and recordings saw before
    assert [e.data for e in SSEParser().feed(encode_event(data).decode())] == [data.decode()]
