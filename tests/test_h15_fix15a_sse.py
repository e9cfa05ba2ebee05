"""SSEParser: an unfinished line is kept in pieces and joined once (helper fix15a, B15A-12).

A long line cut into small chunks was re-joined and re-split whole on every chunk (O(n^2): an
8 MB frame in 16 KB chunks took seconds on the event loop). Invariants: any chunking of any
stream (line ends \\n, \\r\\n, \\r, cut anywhere, a leading BOM) gives the events of the stream fed
whole, ``unfinished`` is the length of the current line's text, and the pending text copied
over a whole feed is bounded by the characters fed (counted, no timing).
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.formats.sse import SSEParser

_PIECE = st.sampled_from(["data: ", "data:", "id: 7", "event: x", "retry: 5", ": hb", "x" * 50, "é", "{}", "\x00",
                          "\n", "\r\n", "\r", "\n\n", "\r\r", "\ufeff"])
_STREAM = st.lists(_PIECE, max_size=40).map("".join)


def _whole(text: str) -> tuple[list[object], int, bool, str | None]:
    parser = SSEParser()
    events = list(parser.feed(text))
    return events, parser.blocks, parser.close(), parser.last_event_id


def _cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=60, deadline=None)
@given(_STREAM, st.lists(st.integers(0, 10**6), max_size=20))
def test_any_chunking_gives_the_events_of_the_whole_stream(text: str, cuts: list[int]) -> None:
    parser = SSEParser()
    events: list[object] = []
    fed = ""
    for chunk in _cut(text, cuts):
        events += parser.feed(chunk)
        fed += chunk
        tail = fed.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").rpartition("\n")[2]
        assert parser.unfinished == len(tail)
    assert (events, parser.blocks, parser.close(), parser.last_event_id) == _whole(text)
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]
    assert parser.blocks == lines.count("")  # a block ends at each blank line (a client's sign of life)


class Counted(str):
    """A chunk that counts the pending text joined in front of it."""

    copied = 0

    def __radd__(self, other: str) -> str:
        Counted.copied += len(other)
        return str.__add__(other, self)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3_000), st.integers(1, 40), st.sampled_from(["\n\n", "\r\n\r\n", "\r\r"]))
def test_pending_text_is_copied_once_per_line_end(size: int, step: int, end: str) -> None:
    event = "data: " + "y" * size + end
    parser = SSEParser()
    Counted.copied = 0
    got = []
    for i in range(0, len(event), step):
        got += parser.feed(Counted(event[i:i + step]))
    assert [e.data for e in got] == ["y" * size]
    assert Counted.copied <= len(event)
