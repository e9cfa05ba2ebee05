"""Issue 11, defect 1: the threshold comparison has one home (``rules.crosses``), so an engine at
the asked threshold and the server's engine at 1 cent plus a connection's filter agree, and a
fractional ``delta`` is written rounded (``rules.round_delta``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.filters import AlertFilter
from dropengine.core.rules import DELTA_DECIMALS, THRESHOLD_EPSILON, crosses, round_delta
from dropengine.server.params import parse_request


def _quotes(prices: list[float]) -> list[Quote]:
    return [Quote("nba", "e", "book", "h2h_home", p, 1_000 + i) for i, p in enumerate(prices)]


def test_server_filter_keeps_a_move_of_exactly_the_threshold_between_fractional_prices() -> None:
    quotes = _quotes([261.9, 251.9])
    own = DropEngine(threshold=10).observe_many(quotes)
    assert len(own) == 1
    once = DropEngine(threshold=1).observe_many(quotes)
    flt = parse_request({"threshold": "10"}).filter
    assert [d for d in once if flt.accepts(d)] == own
    assert [d for d in once if AlertFilter.build(threshold=10).accepts(d)] == own


def test_fractional_delta_is_written_rounded() -> None:
    (d,) = DropEngine(threshold=10).observe_many(_quotes([261.9, 251.9]))
    assert d.delta == -10.0 and type(d.delta) is float
    assert b'"delta":-10.0,' in d.to_json()
    (i,) = DropEngine(threshold=10).observe_many(_quotes([-110, -120]))
    assert i.delta == -10 and type(i.delta) is int


prices = st.one_of(
    st.integers(100, 100_000), st.integers(-100_000, -100),
    st.floats(100, 100_000), st.floats(-100_000, -100),
    st.decimals(100, 2_000, places=2).map(float), st.decimals(-2_000, -100, places=2).map(float),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(prices, min_size=2, max_size=30), st.integers(1, 200), st.sampled_from(["last", "anchor"]))
def test_engine_at_threshold_equals_one_cent_engine_filtered(ps: list[float], threshold: int, ref: str) -> None:
    """SPEC 7: detection once at 1 cent, then each connection's threshold as a post-filter, gives
    the alerts of an engine at that threshold (reference last; the server runs last)."""
    quotes = _quotes(ps)
    own = DropEngine(threshold=threshold).observe_many(quotes)
    once = DropEngine(threshold=1).observe_many(quotes)
    flt = AlertFilter.build(threshold=threshold)
    assert [d for d in once if flt.accepts(d)] == own
    for d in own:
        assert crosses(d.delta, threshold)
        assert d.delta == round_delta(d.delta)


@given(st.floats(-1e6, 1e6), st.floats(0.01, 1e4))
def test_crosses_is_abs_with_tolerance(move: float, threshold: float) -> None:
    assert crosses(move, threshold) == (abs(move) >= threshold - THRESHOLD_EPSILON)


@given(st.one_of(st.floats(-1e6, 1e6), st.integers(-10**9, 10**9).map(lambda k: k / 512),
                 st.integers(-10**9, 10**9).map(lambda k: k / 1024)), st.integers(-10**6, 10**6))
def test_round_delta_keeps_ints_and_rounds_floats(x: float, n: int) -> None:
    """Python's correctly rounded ``round`` to 9 decimals, with its fast path (multiples of 1/512)."""
    assert round_delta(n) == n and type(round_delta(n)) is int
    r = round_delta(x)
    assert type(r) is float and r == round(x, DELTA_DECIMALS)
    assert abs(r - x) <= 0.5 * 10**-DELTA_DECIMALS + 1e-12 * abs(x)


def test_subscription_filter_compares_with_the_tolerance() -> None:
    """A delta a hair under the threshold (as floating point computes it) passes, as
    ``rules.crosses`` says; one clearly under does not."""
    (d,) = DropEngine(threshold=1).observe_many(_quotes([-110, -120]))
    near = d.__class__(**{**{f: getattr(d, f) for f in d.__struct_fields__}, "delta": -9.99999999997})
    far = d.__class__(**{**{f: getattr(d, f) for f in d.__struct_fields__}, "delta": -9.99999})
    assert AlertFilter.build(threshold=10).accepts(near)
    assert not AlertFilter.build(threshold=10).accepts(far)
