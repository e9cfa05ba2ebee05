"""Resuming a cut stream (SPEC section 8), without the network: a model server and the decoder.

The model server releases a log of envelopes; every connection starts with ``connected``
and an ``initial_state`` holding every row of every released envelope whose clock (the
running max of ``last_update``) is ``>= since`` (the mock upstream's resume semantics),
then streams ``odds_update`` frames until it is cut.
The client resumes with ``since`` = the decoder's cursor. Properties: the alerts equal
those of the uncut log (none lost, none duplicated, no re-priming), and the frames the
client received, replayed from a file through a fresh decoder, give the same alerts again.
"""

from __future__ import annotations

from typing import Any, Final

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, FrameDecoder, SkipLog
from dropengine.core.alerts import Drop

SPORT = "basketball_nba"
PRICES = [-130, -120, -115, -110, 100, 105, 110, 120, 135, None]


#: One row's choices drawn at once (clock step, event, book, which prices, the two prices):
#: drawing them one by one made generation most of this test's time.
_ROW: Final = st.tuples(
    st.sampled_from([0, 0, 1, 2, 5, -3]), st.sampled_from(["e1", "e2"]), st.sampled_from(["pinnacle", "fanduel"]),
    st.sampled_from([("home_ml",), ("away_ml",), ("home_ml", "away_ml")]),
    st.sampled_from(PRICES), st.sampled_from(PRICES), st.integers(1, 4),
)


@st.composite
def logs(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Envelopes' row lists; last_update mostly rises, with ties, flip-backs and late rows.

    Not ``tests.strategies.quote_streams``: the resume rule lives in the frame decoder, so the
    input is the vendor's envelopes (rows of two prices sharing one ``last_update``, grouped
    several to an envelope), which a stream of quotes does not have."""
    n = draw(st.integers(1, 40))
    clock = 1_000
    rows, sizes = [], []
    for _ in range(n):
        step, event, book, fields, home, away, size = draw(_ROW)
        clock += step
        row: dict[str, Any] = {"kind": "game", "event_id": event, "bookmaker": book, "last_update": clock}
        for f, price in zip(("home_ml", "away_ml"), (home, away), strict=True):
            if f in fields:
                row[f] = price
        rows.append(row)
        sizes.append(size)
    envs, i = [], 0
    for size in sizes:
        if i >= len(rows):
            break
        envs.append(rows[i : i + size])
        i += size
    return envs


@st.composite
def logs_with_cuts(draw: st.DrawFn) -> tuple[list[list[dict[str, Any]]], list[int], list[int]]:
    """A log, cuts after envelopes *of that log* (a cut past its end tests nothing), and the
    number of envelopes released while the client is away after each cut."""
    log = draw(logs())
    cuts = draw(st.lists(st.integers(0, len(log) - 1), max_size=6))
    lag = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    return log, cuts, lag


def detect(envelopes: list[dict[str, Any]]) -> list[Drop]:
    decoder, engine, skips = FrameDecoder(), DropEngine(threshold=10), SkipLog()
    out: list[Drop] = []
    for env in envelopes:
        out += engine.observe_many(decoder.feed(env, skips))
    assert not skips, skips.first
    return out


def update(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "odds_update", "sport_key": SPORT, "timestamp": 0, "count": len(rows), "data": rows}


def live_with_cuts(log: list[list[dict[str, Any]]], cuts: list[int], lag: list[int]) -> tuple[list[Drop], list[Any]]:
    """A client through cuts after the envelopes in ``cuts``; after each cut the server
    released ``lag`` more envelopes before the client came back."""
    decoder, engine, skips = FrameDecoder(), DropEngine(threshold=10), SkipLog()
    received: list[Any] = []
    alerts: list[Drop] = []

    def got(env: dict[str, Any]) -> None:
        received.append(env)
        alerts.extend(engine.observe_many(decoder.feed(env, skips)))

    clocks, top = [], -1
    for env in log:
        top = max([top, *(r["last_update"] for r in env)])
        clocks.append(top)
    delivered = released = 0
    cut_points = sorted(set(cuts))
    k = 0
    while True:
        since = decoder.cursor(SPORT)
        got({"type": "connected", "sport_key": SPORT, "filters": {"since": since}, "timestamp": 0})
        backlog = [r for j, env in enumerate(log[:released]) for r in env if since is not None and clocks[j] >= since]
        got({"type": "initial_state", "sport_key": SPORT, "timestamp": 0, "count": len(backlog), "data": backlog})
        delivered = released
        stop = next((c for c in cut_points if c >= delivered), None)
        end = len(log) if stop is None else min(stop + 1, len(log))
        for env in log[delivered:end]:
            got(update(env))
        delivered = released = end
        if stop is None or end >= len(log):
            break
        released = min(len(log), released + lag[k % len(lag)])  # written while the client was away
        k += 1
        cut_points = [c for c in cut_points if c >= released]
    assert not skips, skips.first
    return alerts, received


@settings(max_examples=150, deadline=None)
@given(logs_with_cuts())
def test_cuts_never_lose_or_duplicate_alerts(case: tuple[list[list[dict[str, Any]]], list[int], list[int]]) -> None:
    log, cuts, lag = case
    expected = detect([update(env) for env in log])
    alerts, received = live_with_cuts(log, cuts, lag)
    assert alerts == expected
    # the recording (every frame as received) replays to the same alerts
    assert detect(received) == expected


def test_resume_drops_rows_already_processed_and_keeps_flip_backs() -> None:
    a = {"kind": "game", "event_id": "e", "bookmaker": "b", "home_ml": -110, "last_update": 5}
    b = {**a, "home_ml": -130}
    decoder, skips = FrameDecoder(), SkipLog()
    decoder.feed(update([{**a, "last_update": 1}]), skips)
    decoder.feed(update([a, b]), skips)
    assert decoder.cursor(SPORT) == 5
    decoder.feed({"type": "connected", "sport_key": SPORT}, skips)
    # the server re-sends the rows at the cursor, then a flip back written in the same ms
    quotes = decoder.feed({"type": "initial_state", "sport_key": SPORT, "data": [a, b, a]}, skips)
    assert [q.price for q in quotes] == [-110]
    assert decoder.resume_dropped == 2


def test_first_connection_and_other_sports_are_not_deduplicated() -> None:
    a = {"kind": "game", "event_id": "e", "bookmaker": "b", "home_ml": -110, "last_update": 5}
    decoder, skips = FrameDecoder(), SkipLog()
    decoder.feed({"type": "connected", "sport_key": SPORT}, skips)
    assert len(decoder.feed({"type": "initial_state", "sport_key": SPORT, "data": [a]}, skips)) == 1
    decoder.feed({"type": "connected", "sport_key": "icehockey_nhl"}, skips)
    other = {"type": "initial_state", "sport_key": "icehockey_nhl", "data": [{**a, "event_id": "h"}]}
    assert len(decoder.feed(other, skips)) == 1
    assert decoder.cursor("icehockey_nhl") == 5 and decoder.resume_dropped == 0
