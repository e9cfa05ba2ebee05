"""The Betfair stream decoder on hand-made messages: prices, availability, bad input.

Each test builds the few ``mcm`` messages a rule needs, so the rule is visible in the test:
decimal prices become American (SPEC 1, across even money), a suspension / removal / the off
are null-price boundaries, ``back`` quotes the best back of the ladders, and bad input is a
located skip that never stops the messages after it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.engine import DropEngine
from dropengine.core.errors import ConfigError
from dropengine.core.odds import decimal_to_american
from dropengine.core.quote import Quote
from dropengine.core.sides import parse_side
from dropengine.core.skips import SkipLog
from dropengine.formats.betfair import BetfairDecoder, sport_key_of

from .conftest import require_data

MID = "1.500"


def definition(status: str = "OPEN", in_play: bool = False, runners: dict[int, str] | None = None,
               extra: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    extra = extra or {}
    runners = runners if runners is not None else {11: "ACTIVE", 22: "ACTIVE"}
    return {"eventTypeId": "7", "marketType": "WIN", "marketTime": "2024-05-01T15:00:00.000Z",
            "status": status, "inPlay": in_play,
            "runners": [{"id": sid, "status": s, **extra.get(sid, {})} for sid, s in runners.items()]}


def mcm(pt: int, *, md: dict[str, Any] | None = None, rc: list[dict[str, Any]] | None = None,
        **mc: Any) -> dict[str, Any]:
    change: dict[str, Any] = {"id": MID, **mc}
    if md is not None:
        change["marketDefinition"] = md
    if rc is not None:
        change["rc"] = rc
    return {"op": "mcm", "clk": "1", "pt": pt, "mc": [change]}


def feed_all(messages: list[Any], price: str = "ltp") -> tuple[list[Quote], SkipLog, BetfairDecoder]:
    decoder, skips = BetfairDecoder(price), SkipLog()
    out: list[Quote] = []
    for n, msg in enumerate(messages, 1):
        out += decoder.feed(msg, f"f:{n}", skips)
    return out, skips, decoder


def prices(quotes: list[Quote], side: str) -> list[float | None]:
    return [q.price for q in quotes if q.side == side]


def test_quote_fields_and_decimal_to_american() -> None:
    quotes, skips, _ = feed_all([mcm(1000, md=definition()), mcm(2000, rc=[{"id": 11, "ltp": 3.5}])])
    assert not skips
    (q,) = quotes
    assert (q.sport_key, q.event_id, q.bookmaker, q.side, q.kind, q.market_key) == (
        "horse_racing", MID, "betfair", "win:11", "game", "win")
    assert q.price == decimal_to_american(3.5) == 250.0 and q.last_update == 2000
    assert q.commence_time == "2024-05-01T15:00:00.000Z"
    info = parse_side(q.side)  # the runner side grammar of core.sides
    assert (info.kind, info.market_key, info.outcome, info.line) == ("game", "win", "11", None)
    assert sport_key_of("4339") == "greyhound_racing" and sport_key_of("99999") == "betfair_99999"


def test_even_money_crossing_is_one_move_in_cents() -> None:
    """2.1 -> 1.95 is +110 -> -105.26...: a 15.26 cent shortening (SPEC 1), not 215 cents."""
    msgs = [mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "ltp": 2.1}]), mcm(3, rc=[{"id": 11, "ltp": 1.95}])]
    quotes, _, _ = feed_all(msgs)
    assert prices(quotes, "win:11") == [pytest.approx(110.0), pytest.approx(-100 / 0.95)]
    engine = DropEngine(threshold=10)
    alerts = [a for q in quotes for a in engine.observe(q)]
    (alert,) = alerts
    assert alert.direction == "toward_favorite" and alert.delta == pytest.approx(-(100 / 0.95 - 100) - 10)


def test_repeated_price_is_not_requoted() -> None:
    msgs = [mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "ltp": 4.0}]), mcm(3, rc=[{"id": 11, "ltp": 4.0}]),
            mcm(4, rc=[{"id": 11, "ltp": 4.2}])]
    quotes, _, _ = feed_all(msgs)
    assert [q.last_update for q in quotes] == [2, 4]


def test_suspension_quotes_null_and_reopening_requotes_only_new_prices() -> None:
    """SPEC 3: the first price after a suspension re-primes, so it must be a price from after
    it (breaker B15B-14: the reopening re-quoted the pre-suspension price, and the first trade
    after a non-runner's reduction alerted against it)."""
    msgs = [mcm(1, md=definition(runners={11: "ACTIVE", 22: "ACTIVE", 33: "ACTIVE"})),
            mcm(2, rc=[{"id": 11, "ltp": 4.0}, {"id": 33, "ltp": 2.0}]),
            mcm(3, md=definition("SUSPENDED", runners={11: "ACTIVE", 22: "ACTIVE", 33: "ACTIVE"})),
            mcm(4, rc=[{"id": 11, "ltp": 5.0}]),  # a price while suspended is kept, quoted at the reopening
            mcm(5, md=definition("OPEN", runners={11: "ACTIVE", 22: "ACTIVE", 33: "ACTIVE"})),
            mcm(6, rc=[{"id": 33, "ltp": 1.6}])]  # 33's first trade after it: re-primes, no alert
    quotes, _, _ = feed_all(msgs)
    # runner 22 never had a price: its suspension is still a null quote (it was available)
    assert [(q.side, q.price, q.last_update) for q in quotes] == [
        ("win:11", 300.0, 2), ("win:33", 100.0, 2),
        ("win:11", None, 3), ("win:22", None, 3), ("win:33", None, 3),
        ("win:11", 400.0, 5), ("win:33", -166.666666667, 6)]
    engine = DropEngine(threshold=10)
    assert [a for q in quotes for a in engine.observe(q)] == []


def test_removed_runner_gets_one_null_quote_then_silence() -> None:
    msgs = [mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "ltp": 4.0}, {"id": 22, "ltp": 6.0}]),
            mcm(3, md=definition(runners={11: "ACTIVE", 22: "REMOVED"})),
            mcm(4, rc=[{"id": 22, "ltp": 7.0}, {"id": 11, "ltp": 3.0}]),
            mcm(5, md=definition("SUSPENDED", runners={11: "ACTIVE", 22: "REMOVED"}))]
    quotes, _, decoder = feed_all(msgs)
    assert prices(quotes, "win:22") == [500.0, None]
    assert prices(quotes, "win:11") == [300.0, 200.0, None]
    view = decoder.market(MID)
    assert view is not None and [r.status for r in view.runners] == ["ACTIVE", "REMOVED"]


def test_runner_removed_before_any_quote_is_never_quoted() -> None:
    quotes, _, _ = feed_all([mcm(1, md=definition(runners={11: "ACTIVE", 22: "REMOVED"})),
                             mcm(2, rc=[{"id": 22, "ltp": 7.0}])])
    assert quotes == []


def test_in_play_is_a_boundary_then_prices_go_on() -> None:
    """At the off each priced runner gets a null quote; its pre-off price is not re-quoted, so
    the first in-play trade re-primes silently (breaker B15B-11: it used to alert against the
    pre-off price); in-play moves after that alert as any move."""
    msgs = [mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "ltp": 4.0}, {"id": 22, "ltp": 5.0}]),
            mcm(3, md=definition(in_play=True), rc=[{"id": 22, "ltp": 6.0}]),  # an in-play trade with the off
            mcm(4, rc=[{"id": 11, "ltp": 1.5}]),
            mcm(5, rc=[{"id": 11, "ltp": 1.25}])]
    quotes, _, decoder = feed_all(msgs)
    assert [(q.side, q.price, q.last_update) for q in quotes] == [
        ("win:11", 300.0, 2), ("win:22", 400.0, 2),
        ("win:11", None, 3), ("win:22", None, 3), ("win:22", 500.0, 3),
        ("win:11", -200.0, 4), ("win:11", -400.0, 5)]
    engine = DropEngine(threshold=10)
    alerts = [a for q in quotes for a in engine.observe(q)]
    assert [(a.side, a.prev, a.new) for a in alerts] == [("win:11", -200.0, -400.0)]
    view = decoder.market(MID)  # the state keeps the last traded price across the off, as Betfair does
    assert view is not None and view.in_play and view.runners[0].ltp == 1.25


def test_closed_market_withdraws_every_runner_and_keeps_bsp() -> None:
    final = definition("CLOSED", True, runners={11: "WINNER", 22: "LOSER"},
                       extra={11: {"bsp": 4.15}, 22: {"bsp": 1.9}})
    quotes, _, decoder = feed_all([mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "ltp": 4.0}]), mcm(3, md=final)])
    assert prices(quotes, "win:11") == [300.0, None] and prices(quotes, "win:22") == [None]
    assert [(s.side, s.bsp, s.off_ms) for s in decoder.starting_prices()] == [
        ("win:11", 4.15, 3), ("win:22", 1.9, 3)]


def test_the_off_is_when_pre_off_trading_last_ended() -> None:
    """A pre-race suspension that reopens (a non-runner's reduction) is not the off: the last end is."""
    msgs = [mcm(1, md=definition()), mcm(2, md=definition("SUSPENDED")), mcm(3, md=definition()),
            mcm(4, md=definition(in_play=True)), mcm(5, md=definition("SUSPENDED", True)),
            mcm(6, md=definition("CLOSED", True))]
    _, _, decoder = feed_all(msgs)
    view = decoder.market(MID)
    assert view is not None and view.off_ms == 4


def test_back_price_from_atb_ladder_deltas_and_images() -> None:
    msgs = [mcm(1, md=definition()),
            mcm(2, rc=[{"id": 11, "atb": [[3.0, 10], [3.2, 5]], "ltp": 9.0}]),
            mcm(3, rc=[{"id": 11, "atb": [[3.2, 0]]}]),          # size 0: the level is gone
            mcm(4, rc=[{"id": 11, "atb": [[2.8, 1]]}], img=True)]  # a full image replaces the ladder
    quotes, skips, _ = feed_all(msgs, "back")
    assert not skips
    assert prices(quotes, "win:11") == [220.0, 200.0, 180.0]


def test_back_price_from_level_ladders() -> None:
    msgs = [mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "batb": [[0, 5.0, 3], [1, 4.9, 2]]}]),
            mcm(3, rc=[{"id": 22, "bdatb": [[0, 2.5, 1]]}])]
    quotes, _, _ = feed_all(msgs, "back")
    assert [(q.side, q.price) for q in quotes] == [("win:11", 400.0), ("win:22", 150.0)]


def test_bad_messages_and_fields_are_located_skips_and_later_messages_decode() -> None:
    msgs: list[Any] = [
        mcm(1, md=definition()),
        [1, 2],                                              # not an object
        {"op": "mcm", "pt": "soon", "mc": []},               # bad publish time
        {"op": "nonsense", "pt": 3},                         # unknown op
        {"op": "heartbeat", "pt": 3},                        # known, quiet
        {"op": "mcm", "pt": 4, "mc": [{"id": MID, "rc": [{"id": 11, "ltp": 0.5}, {"id": "x"},
                                                          {"id": 22, "ltp": 3.0}]}]},
        {"op": "mcm", "pt": 5, "mc": [{"id": 7}, "junk", {"id": MID, "rc": [{"id": 11, "ltp": 2.0}]}]},
    ]
    quotes, skips, _ = feed_all(msgs)
    assert [(q.side, q.price, q.last_update) for q in quotes] == [("win:22", 200.0, 4), ("win:11", 100.0, 5)]
    where = [s.where for s in skips.first]
    assert where == ["f:2", "f:3", "f:4", "f:6 mc[0].rc[0].ltp", "f:6 mc[0].rc[1]", "f:7 mc[0]", "f:7 mc[1]"]
    assert skips.counts == {"bad message": 2, "bad time": 1, "invalid price": 1, "bad field": 1, "bad market": 2}
    assert "ltp: 0.5" in str(skips.first[3])
    # the ladders (read when they are the quote): each bad entry a skip, the good ones kept
    ladder = [mcm(1, md=definition()),
              mcm(2, rc=[{"id": 11, "atb": [[2.0], [True, 1], [1.5, -1], [float("nan"), 1], [3.0, 2]],
                          "batb": [[0, 5.0, 1]]},  # a runner with the full ladder is quoted from it alone
                         {"id": 22, "batb": [[0, 0.9, 1], [-1, 2.0, 1], [0, 2.4, 1]]}])]
    quotes, skips, decoder = feed_all(ladder, "back")
    assert [(q.side, q.price) for q in quotes] == [("win:11", 200.0), ("win:22", 140.0)]
    assert [s.where for s in skips.first] == [f"f:2 mc[0].rc[0].atb[{i}]" for i in range(4)] + [
        "f:2 mc[0].rc[1].batb[0]", "f:2 mc[0].rc[1].batb[1]"]
    view = decoder.market(MID)
    assert view is not None and [r.best_back for r in view.runners] == [3.0, 2.4]


def test_price_choice_is_checked() -> None:
    with pytest.raises(ConfigError, match="price: 'mid'"):
        BetfairDecoder("mid")


_LINES: list[bytes] = []


def _real_lines() -> list[bytes]:
    if not _LINES:
        path = require_data("betfair_stream", "PRO-greyhound-1.197931750")
        lines = path.read_bytes().splitlines()
        _LINES.extend(lines[:6] + lines[160:])  # the opening image and the suspension, close
    return _LINES


_JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                     max_leaves=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cut_and_rechunked_messages_never_raise(data: st.DataObject) -> None:
    """Any line cut anywhere, or any JSON value in place of a field, is at worst a skip: the
    decoder never raises and every quote it yields is a valid Quote of the market."""
    lines = _real_lines()
    decoder, skips = BetfairDecoder(data.draw(st.sampled_from(["ltp", "back"]))), SkipLog()
    for n, line in enumerate(lines, 1):
        how = data.draw(st.sampled_from(["keep", "cut", "mutate"]))
        if how == "cut":
            line = line[: data.draw(st.integers(0, len(line)))]
        try:
            msg = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue  # the reader's JSON decoder skips it (io.recordings)
        if how == "mutate" and isinstance(msg, dict) and msg.get("mc"):
            mc = msg["mc"][0]
            target = mc["rc"][0] if mc.get("rc") and data.draw(st.booleans()) else mc
            key = data.draw(st.sampled_from(sorted(target) or ["id"]))
            target[key] = data.draw(_JUNK)
        for q in decoder.feed(msg, f"p:{n}", skips):
            assert q.event_id == "1.197931750" and q.side.startswith("win:")
            assert q.price is None or abs(q.price) >= 100


def test_a_market_type_that_cannot_be_a_market_key_is_a_skip() -> None:
    md = {**definition(), "marketType": "TOTALS"}  # would collide with the game market `totals`
    quotes, skips, _ = feed_all([mcm(1, md=md), mcm(2, rc=[{"id": 11, "ltp": 2.0}])])
    assert quotes == [] and [s.where for s in skips.first] == ["f:1 mc[0].marketDefinition.marketType"]


def test_a_bad_definition_field_is_a_skip_and_the_rest_of_it_applies() -> None:
    md = {**definition(), "marketTime": "tomorrow", "inPlay": "no", "eventTypeId": [7]}
    quotes, skips, decoder = feed_all([mcm(1, md=md), mcm(2, rc=[{"id": 11, "ltp": 2.0}])])
    assert [(q.side, q.price, q.commence_time, q.sport_key) for q in quotes] == [("win:11", 100.0, None, "betfair")]
    assert [s.where for s in skips.first] == [f"f:1 mc[0].marketDefinition.{f}" for f in
                                              ("inPlay", "eventTypeId", "marketTime")]
    view = decoder.market(MID)
    assert view is not None and view.status == "OPEN" and view.market_time is None


def test_markets_keep_their_own_state_in_one_stream() -> None:
    """A flumine recording holds many markets, several in one message: each its own state."""
    place = {**definition(), "marketType": "PLACE", "eventTypeId": "4339"}
    msgs = [{"op": "mcm", "pt": 1, "mc": [{"id": "1.1", "marketDefinition": definition()},
                                          {"id": "1.2", "marketDefinition": place}]},
            {"op": "mcm", "pt": 2, "mc": [{"id": "1.1", "rc": [{"id": 11, "ltp": 3.0}]},
                                          {"id": "1.2", "rc": [{"id": 11, "ltp": 1.5}]}]},
            {"op": "mcm", "pt": 3, "mc": [{"id": "1.1", "marketDefinition": definition("SUSPENDED")}]}]
    quotes, skips, decoder = feed_all(msgs)
    assert not skips
    assert [(q.event_id, q.side, q.sport_key, q.price, q.last_update) for q in quotes] == [
        ("1.1", "win:11", "horse_racing", 200.0, 2), ("1.2", "place:11", "greyhound_racing", -200.0, 2),
        ("1.1", "win:11", "horse_racing", None, 3), ("1.1", "win:22", "horse_racing", None, 3)]
    assert decoder.market_ids() == ("1.1", "1.2")
    two = decoder.market("1.2")
    assert two is not None and two.status == "OPEN" and decoder.market("9.9") is None


def test_a_price_outside_spec_1_is_a_skip_and_the_runner_keeps_its_price() -> None:
    """B15B-5: ltp 1500 (decimal 1500 is +149900, beyond SPEC 1's 100000) is an invalid price,
    skipped where it is; the runner's quote stands (it used to become a silent suspension)."""
    msgs = [mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "ltp": 2.0}]), mcm(3, rc=[{"id": 11, "ltp": 1500}]),
            mcm(4, rc=[{"id": 11, "ltp": 1001}])]  # 1001 is +100000, the last valid price
    quotes, skips, _ = feed_all(msgs)
    assert [q.price for q in quotes] == [100.0, 100000.0]
    assert [(s.where, s.reason) for s in skips.first] == [("f:3 mc[0].rc[0].ltp", "invalid price")]
    quotes, skips, _ = feed_all([mcm(1, md=definition()), mcm(2, rc=[{"id": 11, "atb": [[1500, 1], [1.0005, 1]]}])],
                                "back")
    assert quotes == [] and skips.counts == {"invalid price": 2}
