"""Issue 10: unknown or repeated query parameters on ``/v1/odds-drop`` are a 400 naming the
parameter (pure tests of :mod:`dropengine.server.params`, and a real uvicorn on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.keys import KeyTable
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.params import KNOWN_PARAMETERS, ParamError, parse_request
from dropengine.server.sources import ManualSource

KEY = "CANARY-H10-PARAMS-7f3a"



@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    srv = DropServer(ManualSource(), ServeConfig(keys=KeyTable.single(KEY)))
    with BackgroundServer(srv.app, secrets=[KEY]) as u:
        yield u


def get(url: str, query: str) -> httpx.Response:
    # a raw query string: httpx's params= would fold repeated names
    with httpx.Client(timeout=5) as c:
        return c.get(f"{url}/v1/odds-drop/all?apiKey={KEY}&{query}")


def test_unknown_parameter_is_a_400_naming_it(url: str) -> None:
    r = get(url, "treshold=5")
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error", "parameter", "message", "accepted"}
    assert body["parameter"] == "treshold"
    assert "unknown" in body["message"]
    for name in ("threshold", "direction", "kinds", "apiKey", "last_event_id"):
        assert name in body["accepted"]
    assert KEY not in r.text


def test_repeated_parameter_is_a_400_naming_it(url: str) -> None:
    r = get(url, "threshold=5&threshold=50")
    assert r.status_code == 400
    body = r.json()
    assert body["parameter"] == "threshold" and "2 times" in body["message"]


def test_a_repeated_key_is_named_but_never_echoed(url: str) -> None:
    r = get(url, f"apiKey={KEY}")  # the key twice
    assert r.status_code == 400
    assert r.json()["parameter"] == "apiKey"
    assert KEY not in r.text


def test_kinds_400_lists_the_accepted_values(url: str) -> None:
    r = get(url, "kinds=games")
    assert r.status_code == 400
    body = r.json()
    assert body["parameter"] == "kinds"
    assert "game" in body["accepted"] and "prop" in body["accepted"]
    assert "games" in body["message"]


def test_known_parameters_still_open_a_stream(url: str) -> None:
    with httpx.Client(timeout=httpx.Timeout(5, read=5)) as c, c.stream(
        "GET", f"{url}/v1/odds-drop/all?apiKey={KEY}&threshold=5&direction=both&kinds=game,prop&heartbeat_s=1"
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:"):
                assert '"connected"' in line
                break


# ---- pure: params.py -----------------------------------------------------------------------------

def test_pairs_and_mappings_are_both_accepted() -> None:
    assert parse_request({"threshold": "12"}).filter.threshold == 12
    assert parse_request([("threshold", "12"), ("apiKey", "k")]).filter.threshold == 12
    with pytest.raises(ParamError) as exc:
        parse_request([("threshold", "12"), ("threshold", "12")])
    assert exc.value.parameter == "threshold"


def test_sports_is_known_only_on_multi() -> None:
    assert parse_request([("sports", "a,b")], multi=True).filter.sports == frozenset({"a", "b"})
    with pytest.raises(ParamError) as exc:
        parse_request([("sports", "a,b")])
    assert exc.value.parameter == "sports" and "multi" in exc.value.message


_names = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="&=#%+"),
                 min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(name=_names.filter(lambda n: n not in KNOWN_PARAMETERS), value=st.text(max_size=20))
def test_any_unknown_name_is_a_400_naming_it(name: str, value: str) -> None:
    with pytest.raises(ParamError) as exc:
        parse_request([("threshold", "10"), (name, value)], multi=True)
    assert exc.value.parameter == name
    assert "unknown" in exc.value.message


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(KNOWN_PARAMETERS)), times=st.integers(2, 4), value=st.text(max_size=10))
def test_any_repeated_known_name_is_a_400(name: str, times: int, value: str) -> None:
    if name == "apiKey":  # a canary prefix: a short value may occur in the body's own words
        value = "CANARY-KEY-" + value
    with pytest.raises(ParamError) as exc:
        parse_request([(name, value)] * times, multi=True)
    assert exc.value.parameter == name
    assert f"{times} times" in exc.value.message
    if name == "apiKey":
        assert "CANARY-KEY-" not in str(exc.value.body())
