"""Breaking the SSE parser every client reads with (``dropengine.client``, ``live.sse_client``)
with a large event cut into small chunks (helper breaker15a, issue 15 "Clients": huge frames).
Findings: /tmp/notes/breaker15a.md (B15A-12, with the measured times; fixed in 1dca347).

No timing assertion: the invariant is counted. Every chunk fed is joined to the pending text
with ``+``; a ``str`` subclass's reflected ``__radd__`` sees each such join and how much pending
text it copied. Work per chunk must be in proportion to the chunk, not to everything pending:
feeding ``n`` characters may copy pending text a bounded number of times over ``n``, not ``n²``.
"""

from __future__ import annotations

import json

from dropengine.formats.sse import SSEParser


class Counted(str):
    """A chunk that counts the pending text copied in front of it (``pending + chunk``)."""

    copied = 0

    def __radd__(self, other: str) -> str:
        Counted.copied += len(other)
        return str.__add__(other, self)


def test_a_large_event_in_small_chunks_is_parsed_in_linear_work() -> None:
    event = "data: " + json.dumps({"type": "initial_state", "data": ["x" * 100] * 2_000}) + "\n\n"  # ~200 KB
    parser = SSEParser()
    Counted.copied = 0
    got = []
    step = 1_024
    for i in range(0, len(event), step):
        got += parser.feed(Counted(event[i:i + step]))
    assert len(got) == 1 and json.loads(got[0].data)["type"] == "initial_state"  # (the parse itself is right)
    assert Counted.copied <= 4 * len(event), f"{Counted.copied:,} characters copied for {len(event):,} fed"


def test_the_counter_sees_the_joins() -> None:
    """The control: the counter does see a join of pending text (a line cut in two)."""
    parser = SSEParser()
    Counted.copied = 0
    assert parser.feed(Counted("data: {\"a\"")) == []
    (ev,) = parser.feed(Counted(": 1}\n\n"))
    assert ev.data == '{"a": 1}' and Counted.copied == len('data: {"a"')
