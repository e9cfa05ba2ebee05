"""``dropengine mock-upstream``: the timeline, the fault grammar, and the served streams.

Stream tests run the real app on uvicorn on a loopback port (``BackgroundServer``) and talk to
it with real clients (httpx streaming, ``websockets``); every exchange is bounded by
``asyncio.wait_for`` so a hung stream fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx_sse
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dropengine.cli.mock_upstream import mock_upstream
from dropengine.core.errors import ConfigError
from dropengine.core.keys import KeyTable
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.vendor import row_identity
from dropengine.io.replay import read_quotes
from dropengine.live.redaction import install_redaction
from dropengine.mock import Fault, MockUpstream, Release, Timeline, load_timeline, parse_fault, pick_fault
from dropengine.mock.timeline import SportState
from dropengine.server.asgi import BackgroundServer

from .conftest import FIXTURES, ROOT

T = TypeVar("T")
NBA = "basketball_nba"
FRAMES = FIXTURES / "demo_nba_frames.ndjson"
QUOTES = FIXTURES / "golden" / "rules.quotes.ndjson"
CANARY = "CANARY-KEY-7f3a"
KEYS = KeyTable.parse(f"{CANARY} business 5\nfree-key free\nent-key enterprise\n")
Frames = list[dict[str, Any]]


def run(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextmanager
def serve(mock: MockUpstream, **kw: Any) -> Iterator[str]:
    with BackgroundServer(mock.app, secrets=mock.secrets(), **kw) as url:
        yield url


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


def wait_until(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    # a deadline is only reached when the test fails: generous, so that load cannot fail it
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


async def read_sse(
    url: str,
    until: Callable[[Frames], bool],
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Frames:
    """Frames of one SSE stream until ``until(frames)`` (the raw ``data:`` lines, parsed by hand)."""
    frames: Frames = []
    async with httpx.AsyncClient(timeout=5) as client, client.stream("GET", url, params=params, headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        data: list[str] = []
        async for line in r.aiter_lines():
            if line:
                assert line.startswith("data: "), line  # the vendor's shape: no event:/id: lines
                data.append(line[6:])
                continue
            assert len(data) == 1
            frames.append(json.loads(data.pop()))
            if until(frames):
                break
    return frames


async def read_ws(url: str, until: Callable[[Frames], bool], **kw: Any) -> Frames:
    frames: Frames = []
    async with connect(url, **kw) as ws:
        while not until(frames):
            frames.append(json.loads(await ws.recv()))
    return frames


def types(frames: Frames) -> list[str]:
    return [f["type"] for f in frames]


def n_updates(n: int) -> Callable[[Frames], bool]:
    return lambda frames: sum(f["type"] == "odds_update" for f in frames) >= n


def decode(frames: Frames) -> list[Quote]:
    decoder = FrameDecoder()
    skips = SkipLog()
    return [q for f in frames for q in decoder.feed(f, skips)]


def expected_quotes(path: Path, sport: str | None = None) -> list[Quote]:
    return [q for batch, _ in read_quotes([path]) for q in batch if sport is None or q.sport_key == sport]


# ---- timeline --------------------------------------------------------------------------------


def test_timeline_of_frames_passes_rows_unchanged() -> None:
    tl = load_timeline([FRAMES])
    envelopes = [json.loads(line) for line in FRAMES.read_text().splitlines() if line.strip()]
    data = [e for e in envelopes if e["type"] in ("initial_state", "odds_update") and e["data"]]
    assert len(tl.releases) == len(data) and tl.sports == [NBA] and not tl.skips
    for rel, env in zip(tl.releases, data, strict=True):
        assert list(rel.rows) == env["data"] and not rel.partial  # _diff rows included, as recorded
        assert rel.clock == max(r["last_update"] for r in env["data"])
    assert any(r.get("_diff") for rel in tl.releases for r in rel.rows)


def test_timeline_of_quote_table_decodes_back_to_the_quotes() -> None:
    tl = load_timeline([QUOTES])
    # the fixture's bad lines, counted, never fatal (its +50 and -99 are numbers: quotes the engine judges)
    assert tl.skips.total == 4
    frames = [{"type": "odds_update", "sport_key": rel.sport_key, "data": list(rel.rows)} for rel in tl.releases]
    assert decode(frames) == expected_quotes(QUOTES)
    for rel in tl.releases:  # one release per (sport, last_update) run, one price per row
        assert len({r["last_update"] for r in rel.rows}) == 1 and rel.partial


def test_timeline_without_a_sport_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "nosport.ndjson"
    row = {"kind": "game", "event_id": "E", "bookmaker": "b", "last_update": 5, "home_ml": -110}
    p.write_text(json.dumps({"type": "odds_update", "data": [row]}) + "\n{bad\n")
    tl = load_timeline([p])
    assert tl.releases == [] and tl.skips.counts == {"no sport": 1, "bad json": 1}
    assert [r.sport_key for r in load_timeline([p], sport="x").releases] == ["x"]


def test_sport_state_merges_diffs_into_full_rows() -> None:
    tl = load_timeline([FRAMES])
    state = SportState()
    merged: dict[Any, dict[str, Any]] = {}
    for rel in tl.releases:
        state.apply(rel)
        for row in rel.rows:
            ident = row_identity(row)
            new = {**merged.get(ident, {}), **row} if row.get("_diff") else dict(row)
            new.pop("_diff", None)
            merged[ident] = new
    assert state.rows() == list(merged.values())
    assert all("_diff" not in r for r in state.rows())


# ---- fault grammar ---------------------------------------------------------------------------


def test_fault_examples() -> None:
    f = parse_fault("cut,after=5,conn=1-3+7+9-,sport=basketball_nba,transport=sse")
    assert (f.kind, f.after, f.conns, f.sport, f.transport) == ("cut", 5, ((1, 3), (7, 7), (9, None)), NBA, "sse")
    assert [f.matches(NBA, n, "sse") for n in (1, 3, 4, 7, 8, 9, 99)] == [True, True, False, True, False, True, True]
    assert not f.matches(NBA, 1, "ws") and not f.matches("x", 1, "sse")
    h = parse_fault("http=503,retry_after=2.5")
    assert (h.kind, h.value, h.retry_after, h.spec()) == ("http", 503, 2.5, "http=503,retry_after=2.5")
    assert parse_fault("close=1012,conn=4").spec() == "close=1012,conn=4"
    assert pick_fault([parse_fault("flap,conn=2"), parse_fault("stall")], NBA, 2, "ws") == parse_fault("flap,conn=2")
    for bad in ("", "boom", "http", "http=200", "close=1006", "cut=3", "cut,after=x", "cut,conn=0", "cut,conn=3-1",
                "cut,transport=tcp", "flap,after=1", "cut,retry_after=1", "cut,bogus=1", "cut,conn=1,conn=2", "cut,"):
        with pytest.raises(ConfigError, match=re.escape(repr(bad))):
            parse_fault(bad)


ranges = st.lists(
    st.tuples(st.integers(1, 50), st.one_of(st.none(), st.integers(0, 50))).map(
        lambda t: (t[0], None if t[1] is None else t[0] + t[1])
    ),
    min_size=1,
    max_size=4,
).map(tuple)
faults = st.builds(
    lambda kind, code, status, after, conns, sport, transport, ra: Fault(
        kind,
        status if kind == "http" else code if kind == "close" else None,
        after if kind in ("cut", "stall", "close") else 2,
        conns,
        sport,
        transport,
        ra if kind == "http" else None,
    ),
    st.sampled_from(["cut", "stall", "flap", "http", "close"]),
    st.sampled_from([1000, 1011, 1012, 1013, 4002, 4401]),
    st.integers(400, 599),
    st.integers(0, 20),
    ranges,
    st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)),
    st.sampled_from([None, "sse", "ws"]),
    st.one_of(st.none(), st.integers(0, 60).map(float), st.sampled_from([0.5, 2.5])),
)


@given(faults)
def test_fault_spec_round_trips(fault: Fault) -> None:
    assert parse_fault(fault.spec()) == fault


@given(st.text(max_size=40))
def test_fault_garbage_parses_or_names_the_spec(text: str) -> None:
    try:
        fault = parse_fault(text)
    except ConfigError as exc:
        assert repr(text) in str(exc) or repr(text.strip()) in str(exc)
    else:
        assert parse_fault(fault.spec()) == fault


# ---- frames and order ------------------------------------------------------------------------


def test_sse_frames_order_and_heartbeat() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None)
    with serve(mock) as url:
        frames = run(read_sse(f"{url}/v1/sse/odds/{NBA}", lambda f: f[-1]["type"] == "heartbeat",
                              params={"apiKey": "k", "heartbeat_s": "1"}))
    assert types(frames[:3]) == ["connected", "hot_feed_status", "initial_state"]
    assert set(types(frames[3:-1])) == {"odds_update"} and frames[-1]["type"] == "heartbeat"
    c = frames[0]
    assert c == {**c, "sport_key": NBA, "tier": "business", "push_mode": "raw", "diff_mode": False,
                 "min_push_interval_s": 0.0}
    assert c["filters"] == {"event_id": None, "bookmakers": None, "markets": None, "kinds": None, "since": None}
    assert frames[2]["count"] == 0  # on-connect: the clock starts with this stream, so all data follows
    assert len(frames) - 4 == len(mock.timeline.releases)
    assert all(f["count"] == len(f["data"]) for f in frames[2:-1])
    assert frames[-1]["connections"] == 1 and abs(frames[-1]["timestamp"] - time.time() * 1000) < 60_000
    assert mock.connections_log[0].outcome == "done"


def test_ws_frames_subscribe_and_bad_command() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None, start="now")
    with serve(mock) as url:
        wait_until(lambda: mock.finished)

        async def session() -> Frames:
            out: Frames = []
            async with connect(ws_url(url, f"/ws/odds/{NBA}?apiKey=k&heartbeat_s=1")) as ws:
                for _ in range(2):
                    out.append(json.loads(await ws.recv()))
                for cmd in ('{"type":"subscribe","event_id":"E9"}', "nope", '{"type":"unsubscribe"}'):
                    await ws.send(cmd)
                    out.append(json.loads(await ws.recv()))
                out.append(json.loads(await ws.recv()))  # the stream continues: a heartbeat
            return out

        frames = run(session())
    assert types(frames) == ["connected", "initial_state", "subscribed", "error", "unsubscribed", "heartbeat"]
    assert frames[1]["count"] == len(current_state(mock)) and "since" not in frames[1]
    assert frames[2]["event_id"] == "E9" and "JSON" in frames[3]["message"]


def current_state(mock: MockUpstream) -> list[dict[str, Any]]:
    state = SportState()
    for rel in mock.timeline.releases:
        state.apply(rel)
    return state.rows()


def synthetic(n: int = 20, sport: str = NBA) -> Timeline:
    """``n`` releases one recorded second apart, alternating events E1 and E2 (E1 last)."""
    rels = []
    for i in range(n):
        event = "E1" if (n - i) % 2 == 1 else "E2"
        row = {"kind": "game", "event_id": event, "bookmaker": "b", "last_update": 1000 * (i + 1), "home_ml": -110 - i}
        rels.append(Release(sport, 1000 * (i + 1), [row]))
    return Timeline(releases=rels, sports=[sport])


def test_ws_subscribe_filters_later_updates() -> None:
    mock = MockUpstream(synthetic(), speed=25)  # one release every 40 ms
    last = mock.timeline.releases[-1].clock

    async def session(url: str) -> Frames:
        async with connect(ws_url(url, f"/v1/ws/odds/{NBA}?apiKey=k")) as ws:
            out: Frames = [json.loads(await ws.recv()) for _ in range(2)]
            await ws.send(json.dumps({"type": "subscribe", "event_id": "E1"}))
            while not any(r["last_update"] == last for f in out[2:] for r in f.get("data", ())):
                out.append(json.loads(await ws.recv()))
            return out

    with serve(mock) as url:
        frames = run(session(url))
    after = frames[types(frames).index("subscribed") + 1 :]
    events = [r["event_id"] for f in after if f["type"] == "odds_update" for r in f["data"]]
    assert len(events) >= 3 and set(events) == {"E1"}


# ---- decoded quotes equal a replay of the file ----------------------------------------------


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_stream_decodes_to_the_replay_quotes_frames(transport: str) -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None)
    n = len(mock.timeline.releases)
    with serve(mock) as url:
        if transport == "sse":
            frames = run(read_sse(f"{url}/v1/sse/odds/{NBA}", n_updates(n), headers={"X-API-Key": "k"}))
        else:
            frames = run(read_ws(ws_url(url, f"/ws/odds/{NBA}"), n_updates(n), additional_headers={"X-API-Key": "k"}))
    assert decode(frames) == expected_quotes(FRAMES)


def test_stream_decodes_to_the_replay_quotes_table() -> None:
    mock = MockUpstream(load_timeline([QUOTES]), speed=None)
    with serve(mock) as url:
        for sport in mock.sports:  # the second sport was released before it connects: since=0 resends it all
            n = sum(len(r.rows) for r in mock.timeline.releases if r.sport_key == sport)

            def complete(frames: Frames) -> bool:
                return sum(len(f.get("data", ())) for f in frames) >= n  # noqa: B023

            frames = run(read_sse(f"{url}/v1/sse/odds/{sport}", complete, params={"apiKey": "k", "since": "0"}))
            assert decode(frames) == expected_quotes(QUOTES, sport)


@pytest.mark.parametrize(("speed", "max_gap"), [(25.0, 5.0), (1.0, 0.005)])
def test_speed_paces_releases_and_max_gap_caps_waits(
    speed: float, max_gap: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay clock waits each recorded gap divided by ``speed``, capped at ``max_gap``.

    No wall-clock upper bound (it fails under load): the waits the clock asks ``asyncio.sleep``
    for are recorded (and really slept), and the stream cannot have taken less than their sum.
    """
    import dropengine.mock.clock as clockmod

    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, *args: Any) -> Any:
        asked.append(delay)
        return await real_sleep(delay, *args)

    class Shim:  # the clock module's view of asyncio, with its sleep recorded
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        sleep = staticmethod(recording_sleep)

    monkeypatch.setattr(clockmod, "asyncio", Shim())
    mock = MockUpstream(synthetic(20), speed=speed, max_gap=max_gap)  # 19 gaps of one recorded second
    with serve(mock) as url:
        t0 = time.monotonic()
        frames = run(read_sse(f"{url}/v1/sse/odds/{NBA}", n_updates(20), params={"apiKey": "k"}))
        elapsed = time.monotonic() - t0
    # speed 25: 19 x 40 ms; speed 1 capped at 5 ms: 19 x 5 ms (not 19 x 1 s)
    assert asked == [min(1.0 / speed, max_gap)] * 19
    # a lower bound only (load can only make it slower); 0.9: the loop may wake a timer a
    # clock-resolution early
    assert elapsed >= 0.9 * sum(asked), elapsed
    assert [f["data"][0]["last_update"] for f in frames[3:]] == [r.clock for r in mock.timeline.releases]


# ---- initial_state: current state and since --------------------------------------------------


def test_initial_state_is_the_merged_current_state_and_since_is_inclusive() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None, start="now")
    rows = [r for rel in mock.timeline.releases for r in rel.rows]
    cursor = sorted({r["last_update"] for r in rows})[len(rows) // 3]
    with serve(mock) as url:
        wait_until(lambda: mock.finished)
        full = run(read_sse(f"{url}/v1/sse/odds/{NBA}", lambda f: len(f) == 3, params={"apiKey": "k"}))[2]
        resumed = run(read_ws(ws_url(url, f"/ws/odds/{NBA}?apiKey=k&since={cursor}"), lambda f: len(f) == 2))
    assert full["data"] == current_state(mock) and "since" not in full
    assert resumed[0]["filters"]["since"] == cursor
    init = resumed[1]
    # from the release at which the sport's newest last_update reached the cursor, everything
    top, start = -1, None
    for i, rel in enumerate(mock.timeline.releases):
        top = max([top, *(r["last_update"] for r in rel.rows)])
        if top >= cursor:
            start = i
            break
    assert start is not None
    expected = [r for rel in mock.timeline.releases[start:] for r in rel.rows]
    assert init["since"] == cursor and init["data"] == expected
    assert {id(r) for r in rows if r["last_update"] >= cursor} <= {id(r) for r in expected}
    assert any(r["last_update"] == cursor for r in init["data"])  # inclusive: the cursor's own ms is resent
    assert any(r.get("_diff") for r in init["data"])  # every version, unchanged


# ---- filters ---------------------------------------------------------------------------------


def test_filters_apply_to_rows_and_markets_strip_fields() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None, start="now")
    with serve(mock) as url:
        wait_until(lambda: mock.finished)
        params = {"apiKey": "k", "bookmakers": "pinnacle,fanduel", "markets": "h2h", "kinds": "game"}
        frames = run(read_sse(f"{url}/v1/sse/odds/{NBA}", lambda f: len(f) == 3, params=params))
        bad = {}
        async def bad_requests() -> None:
            async with httpx.AsyncClient(timeout=5) as c:
                for name, value in (("heartbeat_s", "0"), ("since", "-1"), ("kinds", "games"), ("bookmakers", ",")):
                    r = await c.get(f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k", name: value})
                    bad[name] = (r.status_code, r.json())
            with pytest.raises(ConnectionClosed) as closed:
                await read_ws(ws_url(url, f"/ws/odds/{NBA}?apiKey=k&heartbeat_s=31"), lambda f: False)
            assert closed.value.rcvd is not None
            bad["ws"] = (closed.value.rcvd.code, closed.value.rcvd.reason)
        run(bad_requests())
    assert frames[0]["filters"]["bookmakers"] == ["pinnacle", "fanduel"] and frames[0]["filters"]["kinds"] == ["game"]
    data = frames[2]["data"]
    assert data and {r["bookmaker"] for r in data} == {"pinnacle", "fanduel"}
    for r in data:
        assert not {"total", "over_price", "home_spread", "home_spread_price"} & set(r)
        assert {"event_id", "home_team", "home_ml", "last_update"} <= set(r)
    for name in ("heartbeat_s", "since", "kinds", "bookmakers"):
        assert bad[name][0] == 400 and bad[name][1]["parameter"] == name
    assert bad["ws"] == (1007, "invalid heartbeat_s")


# ---- auth, caps ------------------------------------------------------------------------------


def test_auth_forms_statuses_and_close_codes() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), keys=KEYS, speed=None)
    path = f"/v1/sse/odds/{NBA}"

    async def checks(url: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=5) as c:
            kw: dict[str, Any]
            for name, kw in (("none", {}), ("unknown", {"params": {"apiKey": "nope"}}),
                             ("free", {"headers": {"X-API-Key": "free-key"}})):
                r = await c.get(url + path, **kw)
                out[name] = (r.status_code, r.text)
            r = await c.get(url + "/v1/usage", headers={"X-API-Key": "ent-key"})
            out["usage"] = r.json()
            out["sports_nokey"] = (await c.get(url + "/v1/sports")).status_code
        for name, kw in (("ws_none", {}), ("ws_unknown", {"subprotocols": ["apikey.nope"]}),
                         ("ws_free", {"additional_headers": {"X-API-Key": "free-key"}})):
            try:
                await read_ws(ws_url(url, f"/ws/odds/{NBA}"), lambda f: False, **kw)
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                out[name] = exc.rcvd.code
        # the three accepted forms
        out["ok"] = [
            types(await read_sse(url + path, lambda f: len(f) == 1, params={"apiKey": CANARY})),
            types(await read_sse(url + path, lambda f: len(f) == 1, headers={"X-API-Key": CANARY})),
            types(await read_ws(
                ws_url(url, f"/ws/odds/{NBA}"), lambda f: len(f) == 1, subprotocols=[f"apikey.{CANARY}"]
            )),
        ]
        return out

    with serve(mock) as url:
        out = run(checks(url))
    assert out["none"][0] == 401 and out["unknown"][0] == 403 and out["free"][0] == 403
    assert (out["ws_none"], out["ws_unknown"], out["ws_free"]) == (4003, 1008, 4001)
    assert out["usage"] == {"key": "key#3", "tier": "enterprise", "cap": 1000, "connections": 0}
    assert out["sports_nokey"] == 401
    assert out["ok"] == [["connected"]] * 3


def test_cap_is_exact_under_concurrent_connects_and_slots_are_freed() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), keys=KEYS, speed=None, retry_after=3)
    url_path = f"/v1/sse/odds/{NBA}"

    async def storm(url: str) -> tuple[list[int], list[str], int]:
        async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=50)) as c:
            reqs = [c.build_request("GET", url + url_path, params={"apiKey": CANARY}) for _ in range(20)]
            responses = await asyncio.gather(*(c.send(r, stream=True) for r in reqs))
            statuses = sorted(r.status_code for r in responses)
            retry = [r.headers.get("retry-after", "") for r in responses if r.status_code == 429]
            ws_code = 0
            try:
                await read_ws(ws_url(url, f"/ws/odds/{NBA}?apiKey={CANARY}"), lambda f: False)
            except ConnectionClosed as exc:
                ws_code = exc.rcvd.code if exc.rcvd else -1
            for r in responses:
                await r.aclose()
        return statuses, retry, ws_code

    with serve(mock) as url:
        statuses, retry, ws_code = run(storm(url))
        wait_until(lambda: mock.active_connections == 0)
        usage = httpx.get(url + "/v1/usage", params={"apiKey": CANARY}).json()
        again = run(read_sse(url + url_path, lambda f: len(f) == 1, params={"apiKey": CANARY}))
    assert statuses == [200] * 5 + [429] * 15 and retry == ["3"] * 15
    assert ws_code == 4002 and usage["connections"] == 0 and types(again) == ["connected"]
    assert [r.conn for r in mock.connections_log] == list(range(1, 23))


# ---- sports universe -------------------------------------------------------------------------


def test_sports_list_and_runtime_universe() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None, sports_extra=["soccer_epl"])
    with serve(mock) as url:
        first = httpx.get(url + "/v1/sports", params={"apiKey": "k"}).json()
        mock.set_sports(["icehockey_nhl"])
        second = httpx.get(url + "/v1/sports", headers={"X-API-Key": "k"}).json()
        gone = httpx.get(f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k"})

        async def ws_denied() -> int:
            with pytest.raises(InvalidStatus) as exc:
                await read_ws(ws_url(url, f"/ws/odds/{NBA}?apiKey=k"), lambda f: False)
            return exc.value.response.status_code

        ws_status = run(ws_denied())
        hockey = run(read_sse(url + "/v1/sse/odds/icehockey_nhl", lambda f: len(f) == 3,
                              params={"apiKey": "k", "heartbeat_s": "1"}))
    assert first == [
        {"key": NBA, "group": "Basketball", "title": "NBA", "active": True, "has_outrights": False},
        {"key": "soccer_epl", "group": "Soccer", "title": "EPL", "active": True, "has_outrights": False},
    ]
    assert [s["key"] for s in second] == ["icehockey_nhl"]
    assert gone.status_code == 404 and ws_status == 404
    assert hockey[2]["count"] == 0


# ---- faults, seen by the client --------------------------------------------------------------


def test_fault_cut_sse_partial_event_is_never_parsed() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None, faults=["cut,after=4"])

    async def client(url: str) -> tuple[list[str], str, bytes]:
        seen: list[str] = []
        async with httpx.AsyncClient(timeout=5) as c, httpx_sse.aconnect_sse(
            c, "GET", f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k"}
        ) as source:
            with pytest.raises(httpx.TransportError) as exc:
                async for ev in source.aiter_sse():
                    seen.append(json.loads(ev.data)["type"])
        async with httpx.AsyncClient(timeout=5) as c, c.stream(  # all released: the cut hits a heartbeat
            "GET", f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k", "heartbeat_s": "1"}
        ) as r:
            raw = b""
            with pytest.raises(httpx.TransportError):
                async for chunk in r.aiter_raw():
                    raw += chunk
        return seen, type(exc.value).__name__, raw

    with serve(mock) as url:
        seen, error, raw = run(client(url))
    assert seen == ["connected", "hot_feed_status", "initial_state", "odds_update"]
    assert error in ("RemoteProtocolError", "ReadError")
    assert raw.count(b"\n\n") == 4 and not raw.endswith(b"\n\n") and raw.rsplit(b"\n\n", 1)[1].startswith(b"data: {")
    assert [r.outcome for r in mock.connections_log] == ["cut", "cut"]


def test_fault_cut_ws_is_1006_and_close_code_reaches_the_client() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None,
                        faults=["cut,conn=1,after=3", "close=1012,transport=ws,after=2", "close=1012,transport=sse"])

    async def client(url: str) -> tuple[list[tuple[int, Frames]], Frames]:
        out = []
        for _ in range(2):
            frames: Frames = []
            with pytest.raises(ConnectionClosed) as exc:
                async with connect(ws_url(url, f"/ws/odds/{NBA}?apiKey=k")) as ws:
                    while True:
                        frames.append(json.loads(await ws.recv()))
            out.append((exc.value.rcvd.code if exc.value.rcvd else 1006, frames))
        sse = await read_sse(f"{url}/v1/sse/odds/{NBA}", lambda f: False, params={"apiKey": "k"})
        return out, sse

    with serve(mock) as url:
        (cut, closed), sse = run(client(url))
    assert cut[0] == 1006 and len(cut[1]) == 3
    assert closed[0] == 1012 and types(closed[1]) == ["connected", "initial_state"]
    assert types(sse) == ["connected", "hot_feed_status"]  # the SSE response ends cleanly after 2 frames
    assert [r.outcome for r in mock.connections_log] == ["cut", "close 1012", "end"]


def test_fault_stall_sends_nothing_not_even_heartbeats() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None, faults=["stall,after=3"])

    async def client(url: str) -> tuple[Frames, float]:
        frames: Frames = []
        async with httpx.AsyncClient(timeout=5) as c, c.stream(
            "GET", f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k", "heartbeat_s": "1"}
        ) as r:
            lines = r.aiter_lines()
            t0 = time.monotonic()
            try:
                while True:
                    line = await asyncio.wait_for(anext(lines), 2.5)
                    if line:
                        frames.append(json.loads(line[6:]))
                        t0 = time.monotonic()
            except TimeoutError:
                return frames, time.monotonic() - t0

    with serve(mock) as url:
        frames, silent = run(client(url))
        wait_until(lambda: mock.connections_log[0].outcome == "stall" and mock.active_connections == 0)
    assert types(frames) == ["connected", "hot_feed_status", "initial_state"] and silent >= 2.4


def test_fault_flap_and_http_503() -> None:
    mock = MockUpstream(load_timeline([FRAMES]), speed=None,
                        faults=["flap,conn=1-2", "http=503,conn=3,retry_after=2", "http=503,conn=4"])

    async def client(url: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k"})
            out["sse_flap"] = (r.status_code, r.text)
            with pytest.raises(ConnectionClosed) as exc:
                await read_ws(ws_url(url, f"/ws/odds/{NBA}?apiKey=k"), lambda f: False)
            out["ws_flap"] = exc.value.rcvd.code if exc.value.rcvd else None
            r = await c.get(f"{url}/v1/sse/odds/{NBA}", params={"apiKey": "k"})
            out["sse_503"] = (r.status_code, r.headers.get("retry-after"), r.json())
        with pytest.raises(InvalidStatus) as denied:
            await read_ws(ws_url(url, f"/ws/odds/{NBA}?apiKey=k"), lambda f: False)
        out["ws_503"] = (denied.value.response.status_code, denied.value.response.headers.get("Retry-After"))
        return out

    with serve(mock) as url:
        out = run(client(url))
    assert out["sse_flap"] == (200, "") and out["ws_flap"] == 1000
    assert out["sse_503"] == (503, "2", {"error": "injected fault: http 503"})
    assert out["ws_503"] == (503, "1")
    assert [(r.conn, r.transport, r.outcome, r.fault) for r in mock.connections_log] == [
        (1, "sse", "flap", "flap,conn=1-2"), (2, "ws", "flap", "flap,conn=1-2"),
        (3, "sse", "http 503", "http=503,conn=3,retry_after=2"), (4, "ws", "http 503", "http=503,conn=4"),
    ]


# ---- keys never leak -------------------------------------------------------------------------


def test_canary_key_never_in_logs_or_bodies(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    client_loggers = ("httpx", "httpcore", "websockets", "websockets.client")
    install_redaction(client_loggers, [CANARY])  # what a client does for its own logs
    server_loggers = ("uvicorn", "uvicorn.error", "uvicorn.access")
    for name in server_loggers:
        logging.getLogger(name).addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    for name in (*server_loggers, *client_loggers):
        caplog.set_level(logging.DEBUG, logger=name)
    mock = MockUpstream(load_timeline([FRAMES]), keys=KEYS, speed=None, faults=["http=429,conn=3"])
    bodies: list[str] = []

    async def traffic(url: str) -> None:
        frames = await read_sse(f"{url}/v1/sse/odds/{NBA}", lambda f: len(f) == 4, params={"apiKey": CANARY})
        bodies.append(json.dumps(frames))
        frames = await read_ws(ws_url(url, f"/ws/odds/{NBA}"), lambda f: len(f) == 2, subprotocols=[f"apikey.{CANARY}"])
        bodies.append(json.dumps(frames))
        async with httpx.AsyncClient(timeout=5) as c:
            for path in (f"/v1/sse/odds/{NBA}", "/v1/usage", "/v1/sports", f"/v1/sse/odds/{NBA}?heartbeat_s=x"):
                r = await c.get(url + path, headers={"X-API-Key": CANARY})
                bodies.append(r.text + str(r.headers))
            r = await c.get(url + "/v1/usage", params={"apiKey": CANARY + "x"})
            bodies.append(r.text)

    try:
        with serve(mock, log_level="debug", access_log=True) as url:
            run(traffic(url))
    finally:
        for name in server_loggers:
            logging.getLogger(name).removeHandler(caplog.handler)
    messages = [rec.getMessage() for rec in caplog.records]
    assert any("/v1/usage" in m for m in messages)  # the access log was captured
    out, err = capfd.readouterr()
    assert CANARY not in "\n".join(messages) + "\n".join(bodies) + out + err


# ---- CLI -------------------------------------------------------------------------------------


def test_cli_help_and_bad_flags() -> None:
    runner = CliRunner()
    result = runner.invoke(mock_upstream, ["--help"])
    assert result.exit_code == 0
    for text in ("--replay", "--speed", "--fault", "--start", "--max-gap", "--keys", "http=STATUS", "Examples"):
        assert text in result.output
    bad = runner.invoke(mock_upstream, ["--replay", str(FRAMES), "--speed", "0"])
    assert bad.exit_code == 2 and "--speed" in bad.output
    bad = runner.invoke(mock_upstream, ["--replay", str(FRAMES), "--fault", "explode"])
    assert bad.exit_code == 2 and "--fault" in bad.output and "'explode'" in bad.output


def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    bad = tmp_path / "with_bad_line.ndjson"
    bad.write_text(FRAMES.read_text() + "{not json\n")
    code = "from dropengine.cli.mock_upstream import mock_upstream; mock_upstream()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--replay", str(bad), "--port", "0", "--speed", "max", "--log-level", "warning"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            match = re.search(r"serving (\d+) releases of (\d+) sports from .* at (http://\S+)", line)
            if match:
                break
        assert match, lines
        assert any("skipped 1 input item(s): 1 bad json" in ln for ln in lines)
        url = match.group(3)
        sports = httpx.get(url + "/v1/sports", params={"apiKey": "k"}, timeout=5).json()
        assert [s["key"] for s in sports] == [NBA]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
