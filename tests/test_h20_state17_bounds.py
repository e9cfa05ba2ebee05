"""state17 (issue 14, aim 3): the price loop compares int moves with int bounds and tests a price's
validity by its sign (no ``abs``), and the fused path's observations take the same way in.

For an int move ``d``, ``d >= threshold`` is ``d >= ceil(threshold)``; the rounding window's test
against ``floor(near)`` only widens it (a move between that and ``near`` is decided exactly, as
every move past ``near`` is). These properties hold the engine to the model written with
``core.rules`` alone (``test_h11_rules_engine.model``) where that matters: moves of exactly the
threshold and one cent either side, thresholds just above, at and below whole cents (and below
the rounding margin), int and float prices on both sides of even money and of the validity
bounds, ``-0.0``, NaN and infinities.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core import rules
from dropengine.core.options import DetectOptions

from .test_h11_rules_engine import model

#: thresholds at, just above and just below whole cents, within the rounding margin of them, a
#: half cent, a few times the margin, and large (at or below THRESHOLD_EPSILON a price that rounds
#: to no move would fire with no direction: the model refuses it, the engine never had a rule for it)
_THRESHOLDS = (1, 2, 10, 25, 10.0, 9.999999999, 10.000000001, 9.9999999995, 10.0000000005, 0.5, 2.5,
               2e-9, 5e-9, 1e6, 123456789)
_EDGES = (100, -100, 100.0, -100.0, 100_000, -100_000, 99.99999999, -99.99999999, 100_000.00000001,
          -100_000.00000001, 99, -99, 100_001, -100_001, 0, -0.0, float("nan"), float("inf"), float("-inf"))


_FIRST = st.one_of(st.integers(-300, -100), st.integers(100, 300), st.sampled_from(_EDGES), st.none(),
                   st.integers(-300, 300), st.floats(-300, 300, allow_nan=False).map(lambda x: round(x, 2)))


@st.composite
def _moves(
    draw: Any, sides: tuple[str, ...] = ("h2h_home", "h2h_away", "spread_home@-3")
) -> tuple[list[Quote], DetectOptions]:
    """A few keys whose prices move by the threshold, one cent either side of it, or a fraction
    within the rounding margin of it, from int or float prices (crossing even money at times)."""
    threshold = draw(st.sampled_from(_THRESHOLDS))
    unit = draw(st.sampled_from(["cents", "cents", "prob"]))
    if unit == "prob":
        threshold = max(min(threshold, 100) / 4, 1e-8)
    opts = DetectOptions.build(threshold, draw(st.sampled_from(rules.DIRECTIONS)),
                               draw(st.sampled_from(["last", "anchor"])), unit,
                               reprime_after_suspension=draw(st.booleans()))
    whole = math.ceil(threshold) if threshold < 1e6 else 20
    near_whole = st.sampled_from([whole, -whole, whole - 1, 1 - whole, whole + 1, -whole - 1, 0])
    step = st.one_of(
        near_whole, near_whole, near_whole,
        st.sampled_from([threshold, -threshold, threshold - 5e-10, 5e-10 - threshold, threshold + 4e-10]),
        st.floats(-3 * whole, 3 * whole, allow_nan=False),
    )
    plan = draw(st.lists(st.tuples(st.sampled_from(sides), st.integers(-1, 3), st.integers(0, 9), step,
                                   _FIRST, st.booleans()), min_size=1, max_size=30))
    quotes: list[Quote] = []
    price: dict[str, int | float | None] = {}
    clock = 1_000
    for side, dt, fresh, move, first, as_int in plan:
        clock += dt
        old = price.get(side)
        if side not in price or fresh == 0:
            p: Any = first
        else:
            base = old if old is not None and rules.is_valid_price(old) else -110
            p = base + move
            if as_int and isinstance(p, float) and p.is_integer():
                p = int(p)
        price[side] = p
        quotes.append(Quote("nba", "e", "b", side, p, max(clock, 0)))
    return quotes, opts


@settings(max_examples=200, deadline=None)
@given(_moves(("h2h_home", "h2h_away", "h2h_draw")))  # the model writes no line
def test_int_bounds_and_signed_validity_equal_the_rules(case: tuple[list[Quote], DetectOptions]) -> None:
    quotes, opts = case
    eng = DropEngine.from_options(opts)
    got = [d.to_json() for d in eng.observe_many(quotes)]
    want, counts = model(quotes, opts)
    assert got == want
    assert eng.counters.as_dict() == {**dict.fromkeys(eng.counters.as_dict(), 0), **counts}


@settings(max_examples=60, deadline=None)
@given(_moves())
def test_observations_take_the_same_way_as_quotes(case: tuple[list[Quote], DetectOptions]) -> None:
    """The fused path's observation tuples (``_observe_prices``) give what the same quotes give."""
    from dropengine.core.quote import QuoteInfo

    quotes, opts = case
    by_quotes = DropEngine.from_options(opts)
    want = [d.to_json() for d in by_quotes.observe_many(quotes)]
    obs = []
    for q in quotes:
        info = QuoteInfo(q.sport_key, q.kind or "", q.market, q.player, q.home_team, q.away_team, q.commence_time)
        obs.append(((q.event_id, q.bookmaker, q.side), q.price, q.last_update, q.market_key, q.line, info))
    by_obs = DropEngine.from_options(opts)
    assert [d.to_json() for d in by_obs._observe_prices(obs)] == want
    assert by_obs.counters == by_quotes.counters
    assert by_obs.snapshot() == by_quotes.snapshot()
