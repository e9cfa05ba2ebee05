"""The one SSE module both ways: whatever encode_event/encode_comment write, SSEParser reads back
as the same events, however the bytes are cut (issue 11: one module that parses and encodes)."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError
from dropengine.formats.sse import SSEParser, encode_comment, encode_event

_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
# data may hold any line break; the parser gives each back as "\n" (WHATWG)
_DATA = st.lists(st.tuples(_LINE, st.sampled_from(["\n", "\r\n", "\r"])), max_size=4).map(
    lambda parts: "".join(a + b for a, b in parts)
) | _LINE
_EVENT = st.none() | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=8)
_ID = st.none() | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=8)
_RETRY = st.none() | st.integers(0, 10**12)
_ITEM = st.one_of(
    st.tuples(st.just("event"), _DATA, _EVENT, _ID, _RETRY, st.booleans()),
    st.tuples(st.just("comment"), _DATA),
)


def _normalise(data: str) -> str:
    return data.replace("\r\n", "\n").replace("\r", "\n")


def _cut(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(blob) + 1) for c in cuts})
    return [blob[a:b] for a, b in zip([0, *points], [*points, len(blob)], strict=True)]


@given(st.lists(_ITEM, max_size=8), st.lists(st.integers(0, 10**6), max_size=12))
def test_encode_then_parse_gives_back_the_same_events_under_any_chunking(items: list[tuple], cuts: list[int]) -> None:
    blob = b""
    expected = []
    last_id: str | None = None
    for item in items:
        if item[0] == "comment":
            blob += encode_comment(item[1])
            continue
        _, data, event, id_, retry, as_bytes = item
        blob += encode_event(data.encode() if as_bytes else data, event=event, id=id_, retry=retry)
        if id_ is not None:
            last_id = id_  # the last event id persists across events (WHATWG)
        expected.append((_normalise(data), event or "message", last_id, retry))
    parser = SSEParser()
    decoder = codecs.getincrementaldecoder("utf-8")()
    got = []
    for chunk in _cut(blob, cuts):  # a cut may split a UTF-8 sequence, a line break, a field name
        got.extend(parser.feed(decoder.decode(chunk)))
    got.extend(parser.feed(decoder.decode(b"", final=True)))
    assert [(e.data, e.event, e.id, e.retry) for e in got] == expected
    assert parser.close() is False  # every event was terminated: nothing partial is left


@given(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b))
def test_one_line_data_is_the_plain_data_line(data: bytes) -> None:
    # the hub's and the mock's wire bytes (one compact JSON per event) are unchanged
    assert encode_event(data) == b"data: " + data + b"\n\n"
    assert encode_event(data, id="e-1") == b"id: e-1\ndata: " + data + b"\n\n"


def test_multi_line_data_is_one_data_line_per_line() -> None:
    assert encode_event("a\nb\r\nc\r") == b"data: a\ndata: b\ndata: c\ndata: \n\n"
    assert encode_event("", event="ping", retry=3000) == b"event: ping\nretry: 3000\ndata: \n\n"
    assert encode_comment() == b":\n\n"
    assert encode_comment("keep-alive") == b": keep-alive\n\n"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"event": "a\nb"}, "event"), ({"id": "1\r"}, "id"), ({"id": "a\x00"}, "id"),
    ({"retry": -1}, "retry"), ({"retry": True}, "retry"),
])
def test_a_field_that_cannot_be_one_line_is_refused_naming_it(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: "):
        encode_event("x", **kwargs)
