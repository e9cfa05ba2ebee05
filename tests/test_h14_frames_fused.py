"""Issue 14, aim 2: the fused frames path gives what the general path gives.

``replay(..., fused=True)`` (typed decode straight into detection, :mod:`dropengine.formats.fused`)
against ``replay(..., fused=False)`` (the general decoder, a Quote per price, observe_many): the
alerts' JSON byte for byte, the engine's counters, every skip (reason, position, message) and the
replay's statistics, on adversarial frame streams (hypothesis), hand-written edge cases and real
recorded odds. Performance is measured in benchmarks/engine.py (part B), never asserted here.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats import fused as fused_mod
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.vendor import vendor_row
from dropengine.io.replay import ReplayStats, read_quotes, replay

ALL = 10**6  # keep every skip: positions and messages are compared, not only counts


def run(paths: list[Path], fused: bool, **engine_args: Any) -> tuple[bytes, Any, Any]:
    """One replay: the alerts' JSON, the counters, and what the replay read and skipped."""
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine(**engine_args)
    alerts = list(replay(paths, engine, "auto", stats, fused=fused))
    seen = (stats.quotes, stats.formats, stats.envelopes, stats.unknown_envelope_types,
            stats.skips.counts, stats.skips.first, stats.skips.files)
    return encode_alerts(alerts), engine.counters, seen


def assert_same(paths: list[Path], **engine_args: Any) -> bytes:
    general = run(paths, False, **engine_args)
    fused = run(paths, True, **engine_args)
    assert fused[0] == general[0]
    assert fused[1] == general[1]
    assert fused[2] == general[2]
    return general[0]


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# -- adversarial streams ---------------------------------------------------------------------

PRICES = (-110, -120, -135, -100, 100, 105, 120, 150, -200, -110.5, 100.0, None)
ODD_PRICES = (0, 99, -99, 100001, 10**30, -(10**30), 1e300, "-110", "abc", "", True, False, [], {}, "NaN")
LINES = (-3.5, 3.5, -3, 3, 220.5, 0, -0.0, 1e-7, None)
ODD_LINES = ("3.5", "x", True, 10**400, [], 2**1100)
TEXTS = ("e1", "e2")
ODD_TEXTS = ("", None, 5, "é\u2028", "a:b")
TIMES = st.integers(1_000, 1_060)
ODD_TIMES = st.sampled_from((None, "1030", " 1030", -1, 2**63, 2**64, 1030.0, 1030.5, True, "x"))


def maybe(value: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], clean: bool) -> st.SearchStrategy[Any]:
    """A field's value: mostly ``value``; unless ``clean``, sometimes ``odd`` or absent (``UNSET``)."""
    if clean:
        return value
    return st.one_of(value, value, value, odd, st.just(msgspec.UNSET))


@st.composite
def rows(draw: st.DrawFn, clean: bool) -> Any:
    """A vendor row; a ``clean`` one is of the typed schema (the fused path takes its envelope),
    though it may still be a ``_diff`` row, lack prices or lines, or hold invalid prices."""
    if not clean and draw(st.integers(0, 40)) == 0:  # not an object at all
        return draw(st.sampled_from((5, "row", [], None, [1, 2])))
    if clean and draw(st.integers(0, 2)) == 0:  # a _diff row: identifiers, time and a few changed fields
        diff: dict[str, Any] = {"_diff": True, "event_id": draw(st.sampled_from(TEXTS)),
                                "bookmaker": draw(st.sampled_from(("pin", "dk"))), "last_update": draw(TIMES)}
        if draw(st.booleans()):
            diff.update(kind="prop", market_key="pts", player=draw(st.sampled_from(("Ann", "Bo"))))
        names = st.sampled_from(("home_ml", "away_ml", "home_spread_price", "over_price", "under_price",
                                 "home_spread", "total", "line", "home_team", "market"))
        for name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
            diff[name] = draw(st.sampled_from(PRICES + LINES + ("T",)))
        return diff
    kinds = ("game", "game", "prop", None, msgspec.UNSET) + (() if clean else ("foo", 3))
    kind = draw(st.sampled_from(kinds))
    row: dict[str, Any] = {"kind": kind}
    texts = st.sampled_from(ODD_TEXTS if not clean else ("", None))
    row["event_id"] = draw(maybe(st.sampled_from(TEXTS), texts, clean))
    row["bookmaker"] = draw(maybe(st.sampled_from(("pin", "dk")), texts, clean))
    row["last_update"] = draw(maybe(TIMES, ODD_TIMES, clean))
    if draw(st.integers(0, 4)) == 0:
        row["_diff"] = draw(st.sampled_from((True, True, False, None) + (() if clean else ("yes",))))
    if draw(st.integers(0, 6)) == 0:
        row["sport_key"] = draw(st.sampled_from(("nba", "nfl", "", None) + (() if clean else (7,))))
    for name in ("home_team", "away_team", "commence_time"):
        row[name] = draw(maybe(st.sampled_from(("H", "2026-05-12T19:30:00Z", "bad time", "")), texts, clean))
    price = maybe(st.sampled_from(PRICES + ((0, 99, 100001, 10**30, 1e300) if clean else ())),
                  st.sampled_from(ODD_PRICES), clean)
    line = maybe(st.sampled_from(LINES + ((2**1100,) if clean else ())), st.sampled_from(ODD_LINES), clean)

    def put(name: str, value: st.SearchStrategy[Any]) -> None:
        if draw(st.integers(0, 5)):  # absent now and then, also in a clean row (a _diff row's shape)
            row[name] = draw(value)

    if kind == "prop" or draw(st.integers(0, 8)) == 0:
        put("market_key", maybe(st.sampled_from(("pts", "reb", "a:b")), texts, clean))
        put("player", maybe(st.sampled_from(("Ann", "Bo")), texts, clean))
        put("market", maybe(st.just("Points"), texts, clean))
        put("line", line)
        put("over_price", price)
        put("under_price", price)
    if kind != "prop" or draw(st.integers(0, 8)) == 0:
        for name in ("home_ml", "away_ml", "draw_ml", "home_spread_price", "away_spread_price",
                     "over_price", "under_price", "home_spread", "away_spread", "total"):
            put(name, line if name in ("home_spread", "away_spread", "total") else price)
    if draw(st.integers(0, 8)) == 0:
        row["extra"] = draw(st.sampled_from(({"deep": [1, {"x": None}]}, "x", 1.5)))
    return {k: v for k, v in row.items() if v is not msgspec.UNSET}


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    r = draw(st.integers(0, 30))
    if r == 0:
        return draw(st.sampled_from((b"{", b"[]", b"null", b'{"op":"mcm","pt":1}',
                                     b"\xef\xbb\xbf" + b'{"type":"heartbeat"}',
                                     b'{"type":"odds_drop","sport_key":"nba"}', b'{"type":5}',
                                     b'{"type":"odds_update","data":[{"event_id":"e1","event_id":"e2",'
                                     b'"bookmaker":"pin","last_update":1050,"home_ml":-150,"home_ml":-110}]}')))
    etype = draw(st.sampled_from(("odds_update",) * 12 + ("initial_state", "initial_state", "connected", "heartbeat",
                                                            "subscribed", "weird")))
    env: dict[str, Any] = {"type": etype}
    sport = draw(st.sampled_from(("nba",) * 8 + ("nfl", "", None, msgspec.UNSET)))
    if sport is not msgspec.UNSET:
        env["sport_key"] = sport
    if etype in ("odds_update", "initial_state") or draw(st.booleans()):
        clean = draw(st.integers(0, 3)) > 0
        env["data"] = draw(st.lists(rows(clean), max_size=6)) if draw(st.integers(0, 25)) else draw(
            st.sampled_from(({"a": 1}, None, "rows")))
    if draw(st.integers(0, 20)) == 0:
        env["op"] = draw(st.sampled_from(("mcm", 5)))
    return msgspec.json.encode(env)


streams = st.lists(envelopes(), min_size=1, max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(lines=streams, options=st.sampled_from(({}, {"reference": "anchor"}, {"unit": "prob", "threshold": 2},
                                                {"direction": "toward_dog", "bookmakers": ["pin"]},
                                                {"reprime_after_suspension": False})))
def test_fused_equals_general_on_adversarial_streams(
    tmp_path: Path, lines: list[bytes], options: dict[str, Any]
) -> None:
    assert_same([write(tmp_path / "s.ndjson", lines)], **options)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(a=streams, b=streams)
def test_fused_equals_general_across_merged_files(tmp_path: Path, a: list[bytes], b: list[bytes]) -> None:
    """Two recordings merged by clock share one decoder (its _diff bases and cursors)."""
    assert_same([write(tmp_path / "a.ndjson", a), write(tmp_path / "b.ndjson", b)])


# -- hand-written edges ----------------------------------------------------------------------

def env(etype: str, *data: dict[str, Any], sport: str | None = "nba") -> bytes:
    out: dict[str, Any] = {"type": etype, "data": list(data)}
    if sport is not None:
        out["sport_key"] = sport
    return msgspec.json.encode(out)


G = {"kind": "game", "event_id": "e1", "bookmaker": "pin", "home_team": "H", "away_team": "A",
     "commence_time": "2026-05-12T19:30:00Z"}


def test_diff_rows_merge_into_rows_the_fused_path_stored(tmp_path: Path) -> None:
    lines = [
        env("odds_update", {**G, "last_update": 1000, "home_ml": -110, "home_spread": -3.5,
                            "home_spread_price": -110, "extra": [1]}),
        env("odds_update", {"_diff": True, "event_id": "e1", "bookmaker": "pin", "last_update": 1001,
                            "home_ml": -130, "home_team": None}),
        env("odds_update", {**G, "last_update": 1002, "home_ml": -150}),
        env("odds_update", {"_diff": True, "event_id": "e1", "bookmaker": "pin", "last_update": 1003,
                            "home_spread_price": -125}),
    ]
    out = assert_same([write(tmp_path / "d.ndjson", lines)])
    assert out.count(b'"odds_drop"') == 2  # -110 -> -130 (a diff over a typed row), -130 -> -150
    dec = FrameDecoder()
    skips = SkipLog()
    frames = fused_mod.FusedFrames(dec)
    typed = fused_mod.decode_envelope(lines[0])
    assert typed is not None
    frames.envelope(typed, lines[0], "x", skips, [])
    assert type(dec._rows[("g", "e1", "pin")]) is fused_mod.Row  # stored typed, merged as a dict
    assert dec.forget(1001) == 1


def test_odd_values_go_to_the_general_decoder(tmp_path: Path) -> None:
    lines = [
        env("odds_update", {**G, "last_update": 1000, "home_ml": -110, "away_ml": "+120"}),  # a string price
        env("odds_update", {**G, "last_update": 1001, "home_ml": True}),  # a bool
        env("odds_update", {**G, "last_update": 1002, "home_ml": -130, "home_spread": 2**1100,
                            "home_spread_price": -110}),  # a line no float holds: a bad line, as an infinite one
        env("odds_update", {**G, "last_update": "1003", "home_ml": -150}),  # a time as text
        env("odds_update", {**G, "last_update": 2**63, "home_ml": -170}),  # out of range
        env("odds_update", {**G, "event_id": "", "last_update": 1004, "home_ml": -190}),
        env("odds_update", {**G, "kind": "prop", "market_key": "a:b", "player": "P", "line": 1.5,
                            "over_price": -110, "last_update": 1005}),
        env("odds_update", {**G, "last_update": 1006, "home_ml": 10**30, "away_ml": 1e300, "draw_ml": 0}),
        env("odds_update", {**G, "last_update": 1007, "home_ml": -230}, sport=None),  # no sport anywhere
        b'{"type":"odds_update","sport_key":"nba","data":[' + msgspec.json.encode({**G, "last_update": 1008})[:-1]
        + b',"home_ml":-150,"home_ml":-250}]}',  # a repeated key: the last one counts, on both paths
    ]
    assert_same([write(tmp_path / "o.ndjson", lines)])
    _, _, seen = run([tmp_path / "o.ndjson"], True)
    counts = seen[4]
    assert counts["bad row"] >= 1 and counts["bad line"] >= 1 and counts["invalid price"] >= 1 \
        and counts["bad time"] >= 1


def test_a_resumed_stream_drops_rows_seen_before_the_reconnect(tmp_path: Path) -> None:
    """SPEC 8: after a reconnect the upstream re-sends rows from the cursor in an initial_state;
    the rows the fused path decoded (kept as their line) are recognised and dropped."""
    first = env("odds_update", {**G, "last_update": 1000, "home_ml": -110},
                {**G, "bookmaker": "dk", "last_update": 1000, "home_ml": -120})
    lines = [
        b'{"type":"connected","sport_key":"nba"}',
        env("initial_state", {**G, "last_update": 990, "home_ml": -105}),
        first,
        b'{"type":"connected","sport_key":"nba"}',
        env("initial_state", {**G, "last_update": 1000, "home_ml": -110},
            {**G, "bookmaker": "dk", "last_update": 1000, "home_ml": -120},
            {**G, "last_update": 1001, "home_ml": -140}),
    ]
    out = assert_same([write(tmp_path / "r.ndjson", lines)])
    assert out.count(b'"odds_drop"') == 1


def test_engines_with_signals_take_the_general_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [env("odds_update", {**G, "last_update": 1000 + i, "home_ml": -110 - 15 * i, "home_spread": -3.5 - i,
                                 "home_spread_price": -110}) for i in range(4)]
    path = write(tmp_path / "s.ndjson", lines)
    calls: list[int] = []
    real = fused_mod.FusedFrames.envelope
    monkeypatch.setattr(fused_mod.FusedFrames, "envelope", lambda self, *a: calls.append(1) or real(self, *a))
    assert_same([path], types=("odds_drop", "line_move"))
    assert_same([path], cooldown_ms=1)
    assert not calls
    assert_same([path])
    assert calls  # the test sees the fused path when it is taken


def test_observations_stand_for_the_general_decoders_quotes() -> None:
    """What the fused path hands the engine, as Quotes, is what FrameDecoder.feed builds."""
    line = env("odds_update", {**G, "last_update": 1000, "home_ml": -110, "away_ml": 100, "draw_ml": None,
                               "home_spread": -3, "home_spread_price": -105, "away_spread": None,
                               "away_spread_price": -110, "total": 220.5, "over_price": -110, "under_price": 100.0},
               {"event_id": "e1", "bookmaker": "pin", "player": "Ann", "market_key": "pts", "line": 24.5,
                "over_price": -120, "under_price": None, "last_update": 999, "home_team": ""})
    general = FrameDecoder().feed(msgspec.json.decode(line), SkipLog())
    dec = FrameDecoder()
    out: list[Any] = []
    typed = fused_mod.decode_envelope(line)
    assert typed is not None
    fused_mod.FusedFrames(dec).envelope(typed, line, "x", SkipLog(), out)
    assert fused_mod.as_quotes(out) == general
    assert all(type(q) is Quote for q in general) and len(general) == 8


# -- real recordings -------------------------------------------------------------------------

def test_the_demo_recording(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parent.parent / "fixtures" / "demo_nba_frames.ndjson"
    assert assert_same([demo]).count(b'"odds_drop"') > 0


def test_real_nfl_odds_as_frames(tmp_path: Path) -> None:
    """Real prices (The Odds API NFL snapshots, kickoff weekend) as vendor frames: the first
    16k quotes of the series, in replay order, as odds_update envelopes of vendor rows; the fused
    path alerts as the general one. A raw snapshot (not frames) goes through the fused replay's
    readers unchanged."""
    from .conftest import require_data

    root = ("theoddsapi_nfl",)
    series = require_data(*root, "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz")
    lines: list[bytes] = []
    for n, (batch, _stamp) in enumerate(read_quotes([series])):
        if n == 4:
            break
        for lo in range(0, len(batch), 50):
            by_sport: dict[str, list[dict[str, Any]]] = {}
            for q in batch[lo : lo + 50]:
                by_sport.setdefault(q.sport_key, []).append(vendor_row(q))
            lines += [env("odds_update", *rows_, sport=sport) for sport, rows_ in by_sport.items()]
    path = tmp_path / "nfl.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    assert assert_same([path]).count(b'"odds_drop"') >= 5
    assert assert_same([path], reference="anchor", threshold=5).count(b'"odds_drop"') >= 5
    assert_same([require_data(*root, "nfl_raw_snapshot_2025-11-09T175826Z_c39893096427.json"), path])
