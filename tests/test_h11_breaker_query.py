"""Breaking the stream query: every resume cursor the decoder can hold must be a ``since``
the query type (and so mock-upstream) accepts back, or a reconnect after a feed with
nanosecond-looking times (>= 10**18, still valid unix ms for formats.frames) is answered 400,
which the client never retries: the stream stops for good."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.quote import MAX_MS
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder, coerce_ms
from dropengine.formats.query import StreamQuery


@given(st.integers(0, MAX_MS))
def test_every_cursor_the_decoder_accepts_is_a_since_the_query_accepts(cursor: int) -> None:
    assert coerce_ms(cursor) == cursor  # the decoder's rule for last_update (and so for its cursor)
    assert StreamQuery.from_params(StreamQuery().params(cursor)).since == cursor
    assert StreamQuery.build(since=cursor).since == cursor


def test_resume_after_a_row_stamped_in_nanoseconds() -> None:
    ns = 1_762_691_670_177_000_000
    decoder = FrameDecoder()
    row = {"kind": "game", "event_id": "e1", "bookmaker": "b", "last_update": ns, "home_ml": -110}
    decoder.feed({"type": "odds_update", "sport_key": "nba", "data": [row]}, SkipLog())
    cursor = decoder.cursor("nba")
    assert cursor == ns
    assert StreamQuery.from_params(StreamQuery.build(kinds="game").params(cursor)).since == ns
