"""Resume by ``since`` (a server without ids): what comes again is dropped, however large the
burst at the newest timestamp (helper fix15a, B15A-15: only the last 256 alerts at it were
remembered, so a larger burst came back whole). Pure (``client.resume.Resume``), no I/O.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.client.resume import AT_NEWEST_MAX, Resume
from dropengine.core.alerts import Drop

TS = 1_778_600_000_000


def drop(i: int, ts: int = TS) -> Drop:
    return Drop("basketball_nba", f"e{i}", "pinnacle", "h2h_home", "game", "h2h", -110, -130, -20,
                "toward_favorite", ts, ts, 0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3_000), st.integers(0, 3), st.booleans())
def test_a_burst_of_any_size_is_not_handed_on_again(n: int, older: int, inclusive: bool) -> None:
    """The first connection hands on ``older`` alerts before the burst and the ``n`` of the
    burst at one timestamp; the resumed one (``since`` just below it) gets them again (the
    burst, and the older ones when the server counts ``since`` loosely), then ``n`` new ones
    at the same timestamp: only those are fresh."""
    r = Resume()
    first = [drop(-i - 1, TS - 1 - i) for i in range(older)][::-1] + [drop(i) for i in range(n)]
    assert all(r.fresh(a) for a in first)
    headers, since = r.request(None)
    assert headers == {} and since == TS - 1
    again = (first if inclusive else first[older:]) + [drop(n + i) for i in range(n)]
    fresh = [a for a in again if r.fresh(a)]
    assert fresh == [drop(n + i) for i in range(n)]


def test_the_memory_at_one_timestamp_is_bounded_and_cleared_when_time_moves() -> None:
    r = Resume()
    for i in range(AT_NEWEST_MAX + 10):
        r.fresh(drop(i))
    assert len(r.at_newest) == AT_NEWEST_MAX
    r.fresh(drop(0, TS + 1))
    assert r.at_newest == {drop(0, TS + 1)} and r.newest_ms == TS + 1


@settings(max_examples=60, deadline=None)
@given(st.text(st.sampled_from(" \t"), max_size=2), st.from_regex(r"[!-~]([ !-~]*[!-~])?", fullmatch=True),
       st.text(st.sampled_from(" \t"), max_size=2))
def test_a_cursor_goes_back_as_a_valid_header_value(left: str, core: str, right: str) -> None:
    """B15A-16: an id with blanks around it (``id: e1-1 ``) became a Last-Event-ID httpx refuses
    to send: every reconnect failed locally, for ever. The cursor is the id as a browser's fetch
    sends it (blanks dropped), from the stream or from the caller; an id of tabs or other
    unprintable text is no cursor (the previous one stays)."""
    raw = left + core + right
    r = Resume()
    r.seen("prev-1")
    r.seen(raw)
    expected = core if "\t" not in raw else "prev-1"
    assert r.last_event_id == expected
    headers, _ = r.request(None)
    value = headers["Last-Event-ID"]  # what HTTP takes as a header value (h11: no blanks around it)
    assert value == value.strip() and value.isascii() and value.isprintable()
    if "\t" not in raw:
        assert Resume(last_event_id=raw).request(None)[0] == {"Last-Event-ID": core}
