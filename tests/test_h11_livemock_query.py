"""The vendor stream's query (``formats.query.StreamQuery``): one value that the live client
encodes and the mock upstream decodes, so what one sends the other reads back unchanged."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError
from dropengine.core.keys import Secret
from dropengine.core.quote import KINDS
from dropengine.formats.query import PARAMETERS, QueryError, StreamQuery
from dropengine.live.transport import UpstreamConfig

_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
names = st.lists(_text.map(str.strip).filter(lambda s: s and "," not in s), max_size=4, unique=True).map(tuple)
queries = st.builds(
    StreamQuery,
    event_id=st.none() | _text.filter(str.strip),
    bookmakers=names,
    markets=names,
    kinds=st.lists(st.sampled_from(KINDS), unique=True).map(tuple),
    since=st.none() | st.integers(0, 10**18 - 1),
    heartbeat_s=st.none() | st.integers(1, 30),
)


@given(queries)
def test_what_the_client_encodes_the_mock_decodes(q: StreamQuery) -> None:
    assert StreamQuery.from_params(q.params()) == q
    # through a real URL query string too (percent-encoding, '+', unicode)
    assert StreamQuery.from_params(dict(parse_qsl(urlencode(q.params()), keep_blank_values=True))) == q
    assert list(q.params()) == [p for p in PARAMETERS if p in q.params()]


@given(queries, st.integers(0, 10**18 - 1))
def test_the_resume_cursor_overrides_since_and_nothing_else(q: StreamQuery, cursor: int) -> None:
    assert StreamQuery.from_params(q.params(cursor)) == q.replace(since=cursor)


@given(st.lists(_text.filter(lambda s: "," not in s), min_size=1, max_size=5))
def test_a_list_keeps_its_order_stripped_without_repeats(items: list[str]) -> None:
    kept = [x.strip() for x in items if x.strip()]
    if len(kept) < len(items):  # an empty item is refused (core.filters.parse_csv, one list rule)
        with pytest.raises(QueryError) as err:
            StreamQuery.build(bookmakers=",".join(items))
        assert err.value.parameter == "bookmakers"
        return
    q = StreamQuery.build(bookmakers=",".join(items))
    assert q.bookmakers == tuple(dict.fromkeys(kept))
    assert StreamQuery.build(bookmakers=items) == q  # a list of names is the same as "a,b"


@pytest.mark.parametrize(
    ("params", "parameter", "shown"),
    [
        ({"heartbeat_s": "0"}, "heartbeat_s", "0"),
        ({"heartbeat_s": "31"}, "heartbeat_s", "31"),
        ({"heartbeat_s": "5.5"}, "heartbeat_s", "'5.5'"),
        ({"since": "-1"}, "since", "'-1'"),
        ({"since": "1" * 20}, "since", "1111"),
        ({"since": "\uff11\uff12"}, "since", "'\uff11\uff12'"),  # fullwidth digits: str.isdigit says digits
        ({"kinds": "games"}, "kinds", "'games'"),
        ({"bookmakers": ","}, "bookmakers", "','"),
        ({"markets": " "}, "markets", "' '"),
        ({"event_id": "  "}, "event_id", "'  '"),
    ],
)
def test_a_bad_parameter_is_named_with_its_value(params: dict[str, str], parameter: str, shown: str) -> None:
    with pytest.raises(QueryError) as err:
        StreamQuery.from_params(params)
    assert err.value.parameter == parameter
    assert str(err.value).startswith(f"{parameter}: ") and shown in str(err.value)
    assert isinstance(err.value, ConfigError)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"since": True}, "since"),
        ({"since": 1.5}, "since"),
        ({"since": 2**63}, "since"),  # past core.quote.MAX_MS
        ({"heartbeat_s": 2.0}, "heartbeat_s"),
        ({"kinds": ("game", "game")}, "kinds"),
        ({"bookmakers": ("a,b",)}, "bookmakers"),
        ({"bookmakers": (" a",)}, "bookmakers"),
        ({"markets": ["h2h"]}, "markets"),  # a list is not the frozen value's tuple
    ],
)
def test_no_invalid_value_can_be_constructed(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(QueryError) as err:
        StreamQuery(**kwargs)  # type: ignore[arg-type]
    assert err.value.parameter == parameter


def test_unknown_parameters_are_ignored_as_the_vendor_does() -> None:
    assert StreamQuery.from_params({"apiKey": "k", "foo": "bar"}) == StreamQuery()


def test_the_client_adds_its_heartbeat_and_keeps_the_key_out_of_the_query() -> None:
    cfg = UpstreamConfig("http://127.0.0.1:9", Secret("k" * 12), heartbeat_s=2.5,
                         filters=StreamQuery.build(kinds="prop", since=5))
    assert cfg.query(None) == {"kinds": "prop", "since": "5", "heartbeat_s": "2"}
    assert cfg.query(9)["since"] == "9"
    with pytest.raises(ConfigError, match="heartbeat_s"):
        UpstreamConfig("http://127.0.0.1:9", Secret("k" * 12), filters=StreamQuery(heartbeat_s=5))


def test_echo_is_the_connected_frame_filters() -> None:
    q = StreamQuery.build(bookmakers="b,a", since=3)
    assert q.echo() == {"event_id": None, "bookmakers": ["b", "a"], "markets": None, "kinds": None, "since": 3}
