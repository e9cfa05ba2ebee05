"""DropEngine API: configuration errors, counters, eviction, snapshots, the alert wire shape."""

from __future__ import annotations

import json
import math

import pytest

from dropengine import (
    ConfigError,
    Drop,
    DropEngine,
    DropEngineError,
    FeedError,
    Quote,
    SnapshotError,
)


def q(price: float | None, t: int, side: str = "h2h_home", event: str = "E1", book: str = "pin") -> Quote:
    return Quote("basketball_nba", event, book, side, price, t)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"threshold": 0}, "threshold"),
        ({"threshold": -1}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"threshold": 101, "unit": "prob"}, "threshold"),
        ({"direction": "up"}, "direction"),
        ({"reference": "open"}, "reference"),
        ({"unit": "pct"}, "unit"),
        ({"kinds": "games"}, "kinds"),
        ({"bookmakers": ""}, "bookmakers"),
    ],
)
def test_bad_configuration_names_the_argument(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        DropEngine(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, DropEngineError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"event_id": ""}, "event_id"),
        ({"bookmaker": None}, "bookmaker"),
        ({"price": "-110"}, "price"),
        ({"price": True}, "price"),
        ({"last_update": -1}, "last_update"),
        ({"last_update": 1.5}, "last_update"),
        ({"side": "moneyline"}, "side"),
        ({"kind": "future"}, "kind"),
    ],
)
def test_quote_validation_names_the_field(fields: dict[str, object], named: str) -> None:
    base: dict[str, object] = {
        "sport_key": "nba", "event_id": "E1", "bookmaker": "pin", "side": "h2h_home",
        "price": -110, "last_update": 1,
    }
    base.update(fields)
    with pytest.raises(FeedError, match=named):
        Quote(**base)  # type: ignore[arg-type]


def test_quote_derives_kind_market_player_line_from_side() -> None:
    g = Quote("nba", "E1", "pin", "spread_home@-3.5", -110, 1)
    assert (g.kind, g.market_key, g.player, g.line) == ("game", "spreads", None, -3.5)
    assert Quote("nba", "E1", "pin", "h2h_home", -110, 1).line is None
    p = Quote("nba", "E1", "pin", "player_points:A:B@C:under@24.5", -110, 1)
    assert (p.kind, p.market_key, p.player, p.line) == ("prop", "player_points", "A:B@C", 24.5)
    assert p.key == ("E1", "pin", "player_points:A:B@C:under@24.5")
    with pytest.raises(AttributeError):
        p.price = -120  # type: ignore[misc]  # quotes are immutable


def test_counters_and_keys_held() -> None:
    eng = DropEngine()
    eng.observe_many([
        q(-110, 1), q(-110, 2), q(-130, 3), q(-140, 2), q(None, 4), q(-200, 5), q(50, 6),
        q(math.nan, 6), q(-210, 7, side="h2h_away"),
    ])
    assert eng.counters.as_dict() == {
        "seen": 9, "primed": 3, "stale": 1, "invalid": 2, "suspended": 1, "repeated": 1,
        "detected": 1, "alerts": 1,
        # the signals' counters (issue 12) stay zero with the default options
        "line_seen": 0, "line_primed": 0, "line_stale": 0, "line_suspended": 0, "line_repeated": 0,
        "line_detected": 0, "cooled": 0, "steam": 0,
    }
    assert eng.keys_held == len(eng) == 2
    assert eng.price_of("E1", "pin", "h2h_home") == -200
    assert eng.price_of("E1", "pin", "nope") is None


def test_invalid_price_leaves_the_key_as_it_was() -> None:
    eng = DropEngine()
    eng.observe(q(-110, 1))
    for bad in (0, 50, -99, 99.9, 100_001, math.inf, -math.inf, math.nan):
        assert eng.observe(q(bad, 10)) == []
    # an invalid price does not advance the key's time, so an older valid quote still counts
    [drop] = eng.observe(q(-125, 5))
    assert (drop.prev, drop.new, drop.elapsed_ms) == (-110, -125, 4)


def test_suspension_reprime_can_be_turned_off() -> None:
    stream = [q(-110, 1), q(None, 2), q(-150, 3)]
    assert DropEngine().observe_many(stream) == []
    [drop] = DropEngine(reprime_after_suspension=False).observe_many(stream)
    assert (drop.prev, drop.new, drop.delta, drop.elapsed_ms) == (-110, -150, -40, 2)


def test_a_key_whose_first_observation_is_null_primes_on_its_first_price() -> None:
    for reprime in (True, False):
        eng = DropEngine(reprime_after_suspension=reprime)
        assert eng.observe_many([q(None, 1), q(-110, 2), q(-130, 3)])[0].delta == -20
        assert eng.counters.primed == 1


def test_now_ms_stamps_the_alert_timestamp() -> None:
    eng = DropEngine()
    eng.observe(q(-110, 1000))
    [d] = eng.observe(q(-130, 2000), now_ms=2500)
    assert (d.last_update, d.timestamp) == (2000, 2500)
    eng.observe(q(-110, 3000))
    [d] = eng.observe(q(-130, 4000))
    assert d.timestamp == 4000


def test_evict_forgets_old_keys_which_then_prime_again() -> None:
    eng = DropEngine()
    eng.observe_many([q(-110, 1000, side="h2h_home"), q(-110, 5000, side="h2h_away")])
    assert eng.evict(2000) == 1
    assert eng.keys_held == 1
    assert eng.observe(q(-150, 6000, side="h2h_home")) == []  # primed again, no alert
    assert eng.observe(q(-150, 6000, side="h2h_away"))[0].delta == -40
    with pytest.raises(ConfigError, match="before_ms"):
        eng.evict("yesterday")  # type: ignore[arg-type]


def test_snapshot_restore_continues_without_repriming() -> None:
    eng = DropEngine(threshold=15, direction="toward_favorite", reference="anchor", bookmakers="pin")
    eng.observe_many([q(-110, 1), q(-120, 2)])
    blob = eng.snapshot()
    back = DropEngine.restore(blob)
    assert back.config == eng.config and back.filter == eng.filter
    assert back.counters == eng.counters and back.keys_held == 1
    # anchor is still -110: -110 -> -126 is -16 and fires; a fresh engine would just prime
    assert [d.delta for d in back.observe(q(-126, 3))] == [-16]
    assert DropEngine.restore(back.snapshot()).counters == back.counters


def test_snapshot_errors_are_clear() -> None:
    blob = DropEngine().snapshot()
    with pytest.raises(SnapshotError, match="too short"):
        DropEngine.restore(b"abc")
    with pytest.raises(SnapshotError, match="not a dropengine snapshot"):
        DropEngine.restore(b"PK\x03\x04" + blob[4:])
    with pytest.raises(SnapshotError, match="version 9"):
        DropEngine.restore(blob[:8] + b"\x00\x09" + blob[10:])
    eng = DropEngine()
    eng.observe(q(-110, 1))
    good = eng.snapshot()
    corrupt = good[:-3] + bytes([good[-3] ^ 0xFF]) + good[-2:]
    with pytest.raises(SnapshotError, match="checksum"):
        DropEngine.restore(corrupt)
    with pytest.raises(SnapshotError, match="checksum"):
        DropEngine.restore(good[:-1])
    with pytest.raises(SnapshotError, match="expected bytes"):
        DropEngine.restore("not bytes")  # type: ignore[arg-type]


def test_drop_wire_shape() -> None:
    eng = DropEngine()
    eng.observe(Quote("basketball_nba", "E1", "pinnacle", "h2h_home", -110, 1000, home_team="LAL",
                      away_team="GSW", commence_time="2026-05-12T22:30:00Z"))
    [d] = eng.observe(Quote("basketball_nba", "E1", "pinnacle", "h2h_home", -120, 62000, home_team="LAL",
                            away_team="GSW", commence_time="2026-05-12T22:30:00Z"))
    wire = json.loads(d.to_json())
    assert wire == {
        "type": "odds_drop", "sport_key": "basketball_nba", "event_id": "E1", "bookmaker": "pinnacle",
        "side": "h2h_home", "kind": "game", "market_key": "h2h", "prev": -110, "new": -120,
        "delta": -10, "direction": "toward_favorite", "home_team": "LAL", "away_team": "GSW",
        "commence_time": "2026-05-12T22:30:00Z", "last_update": 62000, "timestamp": 62000,
        "elapsed_ms": 61000,
    }
    assert type(wire["prev"]) is int
    assert d.to_dict() == wire
    assert isinstance(d, Drop)


def test_prop_alert_carries_player_market_line() -> None:
    eng = DropEngine()
    side = "player_points:Nikola Jokić:over@24.5"
    eng.observe(Quote("nba", "E1", "dk", side, -110, 1, market="Points"))
    [d] = eng.observe(Quote("nba", "E1", "dk", side, -125, 2, market="Points"))
    wire = d.to_dict()
    assert (wire["player"], wire["market"], wire["line"], wire["kind"]) == ("Nikola Jokić", "Points", 24.5, "prop")
    assert "NaN" not in d.to_json().decode()


def test_prob_unit_threshold() -> None:
    # -110 (52.38%) -> -120 (54.55%) is 2.16 points: fires at 2, not at 2.5
    assert len(DropEngine(2, unit="prob").observe_many([q(-110, 1), q(-120, 2)])) == 1
    assert DropEngine(2.5, unit="prob").observe_many([q(-110, 1), q(-120, 2)]) == []
    # long prices move many cents for few points: +1000 -> +1200 is 9.09% -> 7.69% (1.4 pts)
    assert DropEngine(2, unit="prob").observe_many([q(1000, 1), q(1200, 2)]) == []
    [d] = DropEngine(10).observe_many([q(1000, 1), q(1200, 2)])
    assert (d.delta, d.direction) == (200, "toward_dog")
