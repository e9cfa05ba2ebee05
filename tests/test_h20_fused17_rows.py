"""Issue 14 aim 2, session 13: the fused envelope's row tests in their new order.

``FusedFrames.envelope`` now tells a game row first (``kind == "game"``, or no kind, player and
market key), reads a text field as ``x or fallback`` (the schema's text is a str, None or UNSET),
interns event and book ids, and ``Row`` lists its fields in the order rows spell them; the
replay's single stream makes no clocks. Each is held to what it replaces: the fused replay to
the general decoder (alerts' JSON, counters, every skip with its position, statistics) on rows
whose kind, sport, market key, player and texts take every form the schema allows, one file and
two merged; ``Row.as_dict`` to the row it was decoded from. The compare is of alerts, so a text
form on a row that fires nothing is seen only through ``as_dict``; tests/test_h20_break20_session.py
puts every form on alerting rows. Performance is measured in benchmarks/engine.py, never asserted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.core.skips import SkipLog
from dropengine.formats.fused import decode_strict
from dropengine.io.replay import ReplayStats, replay

ALL = 10**6
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ABSENT = object()
TEXT = st.sampled_from((ABSENT, None, "", "x", "pts:y"))


def run(paths: list[Path], fused: bool) -> tuple[Any, ...]:
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine(threshold=5)
    alerts = list(replay(paths, engine, "frames", stats, fused=fused))
    return (encode_alerts(alerts), engine.counters, stats.quotes, stats.envelopes, stats.skips.counts,
            [str(s) for s in stats.skips.first])


@st.composite
def row(draw: st.DrawFn) -> dict[str, Any]:
    """A row of few identities whose kind, sport, prop texts and team texts take every form."""
    r: dict[str, Any] = {"event_id": draw(st.sampled_from(("e1", "e2", ""))),
                         "bookmaker": draw(st.sampled_from(("pin", "dk"))),
                         "last_update": draw(st.integers(1000, 1006))}
    for name, values in (("kind", st.sampled_from((ABSENT, None, "", "game", "prop", "other"))),
                         ("sport_key", TEXT), ("market_key", TEXT), ("player", TEXT), ("market", TEXT),
                         ("home_team", TEXT), ("away_team", TEXT), ("commence_time", TEXT),
                         ("line", st.sampled_from((ABSENT, None, 0, -0.0, 2.5, 3)))):
        v = draw(values)
        if v is not ABSENT:
            r[name] = v
    price = st.sampled_from((-110, -120, -130, 100, -100, 150, None))
    for name in draw(st.lists(st.sampled_from(("home_ml", "away_ml", "home_spread_price", "over_price",
                                                "under_price")), max_size=4, unique=True)):
        r[name] = draw(price)
    for name in ("home_spread", "total"):
        if draw(st.booleans()):
            r[name] = draw(st.sampled_from((None, -3.5, -3, 0, -0.0, 220.5)))
    return r


def write(path: Path, sport: Any, envelopes: list[list[dict[str, Any]]]) -> None:
    lines = []
    for data in envelopes:
        env: dict[str, Any] = {"type": "odds_update", "data": data}
        if sport is not ABSENT:
            env["sport_key"] = sport
        lines.append(msgspec.json.encode(env))
    path.write_bytes(b"\n".join(lines) + b"\n")


@SETTINGS
@given(sport=st.sampled_from((ABSENT, None, "", "nfl")),
       envelopes=st.lists(st.lists(row(), min_size=1, max_size=4), min_size=1, max_size=8),
       split=st.integers(0, 8))
def test_rows_of_every_form_fused_equals_general(tmp_path: Path, sport: Any, envelopes: list[Any],
                                                 split: int) -> None:
    one = tmp_path / "one.ndjson"
    write(one, sport, envelopes)
    assert run([one], True) == run([one], False)
    # two files merged by clock: the readers make clocks again
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    write(a, sport, envelopes[:split])
    write(b, sport, envelopes[split:])
    assert run([a, b], True) == run([a, b], False)


@SETTINGS
@given(rows=st.lists(row(), min_size=1, max_size=5))
def test_as_dict_is_the_row_decoded(rows: list[dict[str, Any]]) -> None:
    """The fields' order changed; a typed row still converts back to exactly the row's fields."""
    env = decode_strict(msgspec.json.encode({"type": "odds_update", "data": rows}))
    assert env is not None and not isinstance(env.data, msgspec.UnsetType)
    assert [r.as_dict() for r in env.data] == rows
