"""A malformed resume cursor is an explicit ``reset``, not a 400 (issue 13; SPEC 7: "an
explicit reset frame when it cannot"): the stream answers 200, starts with a ``reset`` whose
reason names the bad text (shortened, the API key masked) and goes on from now, or from
``since`` when given. One code path (``params.parse_request`` -> ``Hub.subscribe``) for
``serve`` and ``serve --bus`` (the bus frontend is covered in test_h13_frontfix_bus.py).
Real server on 127.0.0.1 (a ManualSource the test pushes quotes into)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.core.keys import KeyTable
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.hub import parse_cursor
from dropengine.server.params import parse_request
from dropengine.server.sources import ManualSource

KEY = "CANARY-FRONTFIX-CURSOR-7a1b"
SPORT = "basketball_nba"


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1, max_size=300), header=st.booleans(), since=st.booleans())
# (session 18: 40 characters cut before the repr were still 190 in it, escapes of 4-10 each)
@example(text="0" * 18 + "\x1f" * 8 + "\U0001342f" * 2 + "\U00018cd6" + "\U0002ebe1" * 3, header=False, since=False)
def test_a_malformed_cursor_is_a_reset_reason_never_an_error(text: str, header: bool, since: bool) -> None:
    query = {"since": "5"} if since else {}
    if not header:
        query["last_event_id"] = text
    req = parse_request(query, last_event_id=text if header else None, secrets=[KEY])
    if not text.strip() or parse_cursor(text) is not None:
        assert req.cursor_reset is None
        return
    reason = req.cursor_reset
    assert req.cursor is None and reason is not None
    assert reason.startswith("Last-Event-ID " if header else "last_event_id ")
    assert len(reason) < 200 and KEY not in reason  # bounded
    assert reason.endswith("from since" if since else "from now")


def test_the_key_in_a_malformed_cursor_is_masked() -> None:
    req = parse_request({"last_event_id": f"x{KEY}"}, secrets=[KEY])
    assert req.cursor_reset is not None and KEY not in req.cursor_reset and "***" in req.cursor_reset


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, DropServer, ManualSource]]:
    source = ManualSource()
    srv = DropServer(source, ServeConfig(keys=KeyTable.single(KEY)))
    with BackgroundServer(srv.app, secrets=[KEY]) as url:
        clock = 1_000
        for price in (-110, -120, -130):  # alerts 1, 2 (the first primes)
            clock += 1_000
            source.push([Quote(SPORT, "g", "pinnacle", "h2h_home", price, clock)], now_ms=clock)
        yield url, srv, source


def frames(url: str, n: int, headers: dict[str, str] | None = None, **params: Any) -> list[tuple[str, dict[str, Any]]]:
    """The first ``n`` frames (connected included) as (SSE id, data); heartbeats skipped."""
    out: list[tuple[str, dict[str, Any]]] = []
    sse_id = ""
    with httpx.stream("GET", f"{url}/v1/odds-drop/all", params={"apiKey": KEY, "heartbeat_s": 1, **params},
                      headers=headers or {}, timeout=httpx.Timeout(5, read=5)) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("id: "):
                sse_id = line[4:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if data["type"] != "heartbeat":
                    out.append((sse_id, data))
                sse_id = ""
                if len(out) >= n:
                    break
    return out


@pytest.mark.timeout(30)
def test_a_malformed_cursor_answers_200_with_a_reset_then_goes_on_from_now(
        served: tuple[str, DropServer, ManualSource]) -> None:
    url, srv, _ = served
    epoch = srv.hub.epoch
    for how in ({"headers": {"Last-Event-ID": "garbage!"}}, {"last_event_id": "garbage!"}):
        got = frames(url, 2, **how)
        (_, connected), (reset_id, reset) = got
        assert connected["type"] == "connected" and reset["type"] == "reset"
        assert "garbage!" in reset["reason"] and "from now" in reset["reason"]
        assert reset_id == reset["id"] == f"{epoch}-2"  # from now: the newest id
    # with since: from since (everything buffered after it), after the reset
    got = frames(url, 4, headers={"Last-Event-ID": f"{KEY}-x"}, since=0, threshold=1)
    assert [d["type"] for _, d in got] == ["connected", "reset", "odds_drop", "odds_drop"]
    assert KEY not in json.dumps(got) and "from since" in got[1][1]["reason"]
    assert [i for i, _ in got[2:]] == [f"{epoch}-1", f"{epoch}-2"]
