"""Issue 12, hostile tests of the new signals (breaker12; /tmp/notes/breaker12.md).

Each test here reproduces one confirmed finding and is a strict xfail until it is fixed: the
fixer flips it (removes the mark) when the finding is fixed. The tests are written so that any
reasonable fix passes (rejecting an absurd line, or keeping it and writing it safely).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import msgspec
import polars as pl
import pytest

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.engine import _HEADER, _SNAPSHOT_MAGIC, _SNAPSHOT_VERSION
from dropengine.core.errors import SnapshotError
from dropengine.formats.tables import QUOTE_COLUMNS

ALL = "odds_drop,line_move,steam"
NFL = "americanfootball_nfl"


def _q(book: str, side: str, price: float | None, t: int, **kw: Any) -> Quote:
    return Quote(NFL, "e1", book, side, price, t, **kw)


# -- finding 1: a finite but huge line breaks snapshot() (and the server's state saves) ---------



def test_huge_finite_line_still_snapshots() -> None:
    # SPEC 10: "A line must be a finite number"; 1e20 is one (a side spelt spread_home@1e20 or a
    # frame's home_spread 1e20 both reach the engine). Steam keeps the counted move's written
    # lines, written as a Python int beyond msgpack's range.
    eng = DropEngine(types=ALL)
    eng.observe_many([
        _q("a", "spread_home@3", -110, 1),
        _q("a", "spread_home@99999999999999999999", -110, 2),
    ])
    restored = DropEngine.restore(eng.snapshot())  # OverflowError today, not even a DropEngineError
    assert restored.counters == eng.counters



def test_line_move_points_are_always_a_number() -> None:
    # SPEC 10: points = new_line - prev_line, a number; -1e308 - 1e308 overflows to -inf, which
    # JSON writes as null.
    eng = DropEngine(types="line_move")
    alerts = eng.observe_many([
        _q("a", "spread_home@3", -110, 1, kind="game", market_key="spreads", line=1e308),
        _q("a", "spread_home@3", -110, 2, kind="game", market_key="spreads", line=-1e308),
    ])
    for alert in alerts:
        wire = msgspec.json.decode(alert.to_json())
        assert isinstance(wire["points"], (int, float)) and math.isfinite(wire["points"]), wire


# -- finding 2: an h2h side with a line field observes a line series -------------------------



def test_h2h_side_has_no_line_series() -> None:
    # SPEC 10: line series exist for spread_*, total_* and prop sides (`line_side` is the side
    # without its `@{line}` suffix); h2h sides have no line. A quote table with a `line` cell on
    # an h2h row (or a Quote built with line=) must not make `h2h_home` a line series.
    quotes = [
        _q("a", "h2h_home", -110, 1, line=3.0),
        _q("a", "h2h_home", -110, 2, line=4.0),
    ]
    eng = DropEngine(types=ALL)
    alerts = eng.observe_many(quotes)
    assert [a.type for a in alerts] == []
    assert eng.counters.line_seen == 0


def _frame(quotes: list[Quote]) -> pl.DataFrame:
    """A quote table of ``quotes`` (integer prices), with their kind, market key and line cells."""
    return pl.DataFrame(
        {c: [getattr(q, c) for q in quotes] for c in QUOTE_COLUMNS},
        schema={**{c: pl.String for c in QUOTE_COLUMNS}, "price": pl.Int64, "last_update": pl.Int64,
                "line": pl.Float64},
    )


# -- finding 7: after the fix of 1-2 (rules.observes_line / series_line) the batch engine still
# observes the old way: stream != batch -----------------------------------------------------

_GAME = {"kind": "game", "market_key": "spreads"}
_BATCH_CASES = {
    # an h2h row with a line cell (finding 2: the stream observes no series now)
    "h2h_line": [_q("a", "h2h_home", -110, 1, line=3.0), _q("a", "h2h_home", -110, 2, line=4.0)],
    # a line cell that contradicts the side (the stream takes the side's line now)
    "contradicting_line": [_q("a", "spread_home@3", -110, 1, line=3.0, **_GAME),
                           _q("a", "spread_home@3", -110, 2, line=4.0, **_GAME)],
    # kind and market key given, no line cell (the stream takes the side's line now)
    "no_line_cell": [_q("a", "spread_home@3", -110, 1, **_GAME), _q("a", "spread_home@4", -110, 2, **_GAME)],
    # a line beyond the bound of rules.observes_line (|line| <= 1,000,000)
    "huge_line": [_q("a", "spread_home@3", -110, 1), _q("a", "spread_home@2000000", -110, 2)],
}


@pytest.mark.parametrize("case", sorted(_BATCH_CASES))
def test_batch_observes_the_same_line_series_as_the_stream(case: str) -> None:
    quotes = _BATCH_CASES[case]
    eng = DropEngine(types=ALL)
    stream = [a.to_json() for a in eng.observe_many(quotes)]
    result = detect_counted(_frame(quotes), types=ALL)
    assert [a.to_json() for a in result.alert_values()] == stream
    assert result.counters == eng.counters


# -- finding 8: steam takes the outcome of a line move's side again, cutting a player's '@' ---


def test_steam_outcome_of_a_prop_player_with_at_sign() -> None:
    # SPEC 11: the outcome is the side without a line; a LineMove's side is already that
    # (`player_points:A@B:over`), and outcome_of() cuts it again at the player's '@' to
    # `player_points:A`. SPEC 2: parsing a side back must survive players whose names hold '@'.
    nba = "basketball_nba"
    # a price drop at book a and a line move at book b, same outcome, same direction: one steam
    same = [
        Quote(nba, "e", "a", "player_points:A@B:over@25.5", -110, 1),
        Quote(nba, "e", "b", "player_points:A@B:over@25.5", -110, 1),
        Quote(nba, "e", "a", "player_points:A@B:over@25.5", -130, 10),
        Quote(nba, "e", "b", "player_points:A@B:over@26.5", -110, 20),
    ]
    steams = [a for a in DropEngine(types=ALL, steam_books=2).observe_many(same) if a.type == "steam"]
    assert [s.side for s in steams] == ["player_points:A@B:over"]
    # two different players' line moves are no steam
    other = [
        Quote(nba, "e", "a", "player_points:A@B:over@25.5", -110, 1),
        Quote(nba, "e", "b", "player_points:A@C:over@25.5", -110, 1),
        Quote(nba, "e", "a", "player_points:A@B:over@26.5", -110, 10),
        Quote(nba, "e", "b", "player_points:A@C:over@26.5", -110, 20),
    ]
    assert [a.type for a in DropEngine(types=ALL, steam_books=2).observe_many(other) if a.type == "steam"] == []


# -- finding 3: restore accepts steam state no engine could have written ---------------------


def _craft(payload: dict[str, Any]) -> bytes:
    body = msgspec.msgpack.encode(payload)
    return _HEADER.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION, hashlib.sha256(body).digest()) + body


def _steam_payload() -> dict[str, Any]:
    eng = DropEngine(types=ALL, steam_books=2)
    eng.observe_many([_q("a", "h2h_home", -110, 1000), _q("a", "h2h_home", -130, 2000)])
    payload: dict[str, Any] = msgspec.msgpack.decode(eng.snapshot()[_HEADER.size:])
    return payload


def _entry(p: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = p["steam"][1][0][5][0][3]
    return entry



@pytest.mark.parametrize("case", ["bookmaker", "nan_price", "last_update", "no_line_fields"])
def test_restore_rejects_inconsistent_steam_state(case: str) -> None:
    # brief: a snapshot crafted with bad steam state must raise SnapshotError at restore. Today
    # each of these restores, and the next steam lists the same book twice (counted as two
    # books), a null price, a lag_ms of -1.8e19, or a line_move book without lines.
    p = _steam_payload()
    if case == "bookmaker":
        _entry(p)["bookmaker"] = "b"  # the entry of book "a" claims to be book "b"
    elif case == "nan_price":
        _entry(p)["prev"] = math.nan
    elif case == "last_update":
        _entry(p)["last_update"] = 2**64 - 1  # the row says 2000
    else:
        _entry(p)["type"] = "line_move"  # with prev/new/delta and no prev_line/new_line/points
    with pytest.raises(SnapshotError):
        DropEngine.restore(_craft(p))


# -- finding 4: key numbers do not survive snapshot/restore (written with %g) ----------------



@pytest.mark.parametrize("numbers", ["3.1234567", "123456.7", "3.0000000001"])
def test_key_numbers_survive_snapshot(numbers: str) -> None:
    eng = DropEngine(types="line_move", key_numbers=f"{NFL}:spreads={numbers}")
    restored = DropEngine.restore(eng.snapshot())
    assert restored.config.keys.lookup(NFL, "spreads") == eng.config.keys.lookup(NFL, "spreads")


# -- finding 6: a book quoting several lines of one side at once (a prop ladder) -------------


def _ladder_snapshot(ts: str) -> list[dict[str, Any]]:
    """The Odds API v4: three books each offering Over 0.5 and Over 1.5 for one player (as books
    do in standard prop markets and in every ``*_alternate`` market); nothing changes over time."""
    outcomes = [
        {"name": "Over", "description": "Patrick Mahomes", "price": -250, "point": 0.5},
        {"name": "Over", "description": "Patrick Mahomes", "price": 120, "point": 1.5},
    ]
    markets = [{"key": "player_pass_tds", "last_update": ts, "outcomes": outcomes}]
    return [{
        "id": "ev1", "sport_key": NFL, "commence_time": "2025-11-09T18:00:00Z", "home_team": "KC", "away_team": "DEN",
        "bookmakers": [{"key": bk, "title": bk, "last_update": ts, "markets": markets}
                       for bk in ("draftkings", "fanduel", "betmgm")],
    }]


@pytest.mark.xfail(strict=True, reason=(
    "breaker12 finding 6, a documented limitation: SPEC 10 applies SPEC 3's rules to line series, where an equal "
    "last_update is not stale, so a book quoting one side at several lines at once flips its series; README "
    "'Signals' gives the workaround (the markets filter)"))
def test_unchanged_ladder_of_lines_fires_nothing() -> None:
    # Each rung observes the same line series (event, book, `player_pass_tds:Patrick Mahomes:over`),
    # so the series' line flips 0.5 -> 1.5 -> 0.5 within every snapshot: a line move per rung and
    # a steam per snapshot although no book moved anything. A user expects no alert when the
    # board did not change (SPEC 10 is silent on several lines at once; SPEC intro: decide as a
    # user would expect).
    from dropengine.core.skips import SkipLog
    from dropengine.formats.theoddsapi import quotes_from_odds_api

    eng = DropEngine(types=ALL)
    eng.observe_many(quotes_from_odds_api(_ladder_snapshot("2025-11-09T12:00:00Z"), SkipLog()))
    later = eng.observe_many(quotes_from_odds_api(_ladder_snapshot("2025-11-09T12:05:00Z"), SkipLog()))
    assert [a.type for a in later] == []
