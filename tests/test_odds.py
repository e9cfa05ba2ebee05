"""Unit and property tests for ``dropengine.core.odds`` (SPEC section 1) and ``dropengine.core.sides``
(SPEC section 2, side strings)."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError, DropEngineError, FeedError
from dropengine.core.odds import (
    MAX_ABS_PRICE,
    MIN_ABS_PRICE,
    american_to_decimal,
    american_to_prob,
    cents,
    decimal_to_american,
    delta,
    direction_of,
    is_valid_price,
    prob_to_american,
)
from dropengine.core.sides import (
    SideInfo,
    format_line,
    h2h_side,
    market_key_of,
    parse_side,
    prop_side,
    spread_side,
    total_side,
)

# --------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------


def spec_cents(a: float) -> float:
    """SPEC section 1, written out independently of the library."""
    return a - 100 if a >= 100 else a + 100


#: Valid American prices whose arithmetic is exact in binary floating point: integers and
#: multiples of 0.5 (fractional prices such as -112.5 are valid).
int_prices = st.one_of(
    st.integers(MIN_ABS_PRICE, MAX_ABS_PRICE),
    st.integers(-MAX_ABS_PRICE, -MIN_ABS_PRICE),
)
half_prices = st.one_of(
    st.integers(2 * MIN_ABS_PRICE, 2 * MAX_ABS_PRICE).map(lambda n: n / 2),
    st.integers(-2 * MAX_ABS_PRICE, -2 * MIN_ABS_PRICE).map(lambda n: n / 2),
)
exact_prices = st.one_of(
    st.sampled_from([100, -100, 105, -105, 110, -110, -112.5, 112.5, 100000, -100000, 100.0, -100.0]),
    st.integers(-400, -100),
    st.integers(100, 400),
    int_prices,
    half_prices,
)
#: Any valid price, including arbitrary floats.
any_valid_price = st.one_of(
    exact_prices,
    st.floats(MIN_ABS_PRICE, MAX_ABS_PRICE),
    st.floats(-MAX_ABS_PRICE, -MIN_ABS_PRICE),
)


# --------------------------------------------------------------------------------------
# validity
# --------------------------------------------------------------------------------------

VALID = [100, -100, 100.0, -100.0, 101, -101, -110, 250, -112.5, 112.5, 100000, -100000, 100000.0]
INVALID = [
    0,
    0.0,
    50,
    -50,
    99,
    -99,
    99.999,
    -99.5,
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    100001,
    -100001,
    100000.5,
    1e6,
    True,
    False,
    "110",
    "-110",
    None,
    b"110",
    [110],
    complex(110, 0),
]


@pytest.mark.parametrize("price", VALID, ids=repr)
def test_valid_prices(price: object) -> None:
    assert is_valid_price(price) is True


@pytest.mark.parametrize("price", INVALID, ids=repr)
def test_invalid_prices(price: object) -> None:
    assert is_valid_price(price) is False


@given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
@settings(max_examples=300)
def test_validity_matches_spec_for_any_number(x: float) -> None:
    expected = math.isfinite(x) and 100 <= abs(x) <= 100000
    assert is_valid_price(x) is expected


@pytest.mark.parametrize("price", [0, 50, -99, math.nan, math.inf, 100001, True, "110", None])
@pytest.mark.parametrize(
    "fn", [cents, american_to_prob, american_to_decimal], ids=lambda f: f.__name__
)
def test_conversions_reject_invalid_prices(fn: object, price: object) -> None:
    with pytest.raises(ConfigError) as info:
        fn(price)  # type: ignore[operator]
    assert isinstance(info.value, DropEngineError)
    assert "price" in str(info.value)


# --------------------------------------------------------------------------------------
# cents and delta
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "expected"),
    [(100, 0), (-100, 0), (105, 5), (-105, -5), (-110, -10), (250, 150), (-112.5, -12.5),
     (100000, 99900), (-100000, -99900)],
)
def test_cents_examples(price: float, expected: float) -> None:
    assert cents(price) == expected


@pytest.mark.parametrize(
    ("prev", "new", "expected"),
    [
        (-110, -120, -10),
        (+120, +110, -10),
        (+105, -105, -10),  # across even money: 10 cents, not 210
        (-120, +110, +30),
        (+100, -100, 0),  # even money is one price
        (-100, +100, 0),
        (-105, +105, 10),
        (+110, -110, -20),
        (-110, -110, 0),
    ],
)
def test_delta_spec_examples(prev: float, new: float, expected: float) -> None:
    assert delta(prev, new) == expected


def test_delta_keeps_integers_integers() -> None:
    d = delta(-110, -120)
    assert d == -10 and type(d) is int
    assert type(delta(-110, -112.5)) is float
    assert delta(-110, -112.5) == -2.5


@pytest.mark.parametrize(("move", "expected"), [(-10, "toward_favorite"), (-0.5, "toward_favorite"),
                                                (10, "toward_dog"), (0.5, "toward_dog"), (0, None)])
def test_direction_of(move: float, expected: str | None) -> None:
    assert direction_of(move) == expected


@given(exact_prices, exact_prices)
@settings(max_examples=400)
def test_delta_is_spec_cents_difference(prev: float, new: float) -> None:
    d = delta(prev, new)
    assert d == spec_cents(new) - spec_cents(prev)
    assert abs(d) <= abs(new - prev)
    if (prev > 0) == (new > 0):
        assert d == new - prev
    else:
        # crossing even money removes the 200-point gap between +100 and -100
        assert abs(d) == abs(new - prev) - 200


@given(any_valid_price, any_valid_price)
@settings(max_examples=400)
def test_delta_sign_follows_implied_probability(prev: float, new: float) -> None:
    """Shortening (delta < 0) means the implied probability went up, and vice versa."""
    d = delta(prev, new)
    p_prev, p_new = american_to_prob(prev), american_to_prob(new)
    if d < 0:
        assert p_new >= p_prev
        assert direction_of(d) == "toward_favorite"
    elif d > 0:
        assert p_new <= p_prev
        assert direction_of(d) == "toward_dog"
    else:
        assert p_new == p_prev
    assert delta(new, prev) == -d


@given(any_valid_price, any_valid_price, any_valid_price)
@settings(max_examples=200)
def test_cents_scale_is_additive(a: float, b: float, c: float) -> None:
    assert math.isclose(delta(a, b) + delta(b, c), delta(a, c), rel_tol=1e-12, abs_tol=1e-7)


@given(exact_prices, exact_prices)
def test_cents_is_monotone_in_price_order(a: float, b: float) -> None:
    """The cents scale orders prices from the shortest favourite to the longest dog."""
    if american_to_prob(a) > american_to_prob(b):
        assert cents(a) < cents(b)


# --------------------------------------------------------------------------------------
# implied probability and decimal odds
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "prob", "dec"),
    [
        (100, 0.5, 2.0),
        (-100, 0.5, 2.0),
        (-110, 110 / 210, 1 + 100 / 110),
        (150, 0.4, 2.5),
        (-150, 0.6, 1 + 100 / 150),
        (-200, 2 / 3, 1.5),
        (300, 0.25, 4.0),
        (-112.5, 112.5 / 212.5, 1 + 100 / 112.5),
    ],
)
def test_prob_and_decimal_examples(price: float, prob: float, dec: float) -> None:
    assert american_to_prob(price) == pytest.approx(prob, rel=1e-12)
    assert american_to_decimal(price) == pytest.approx(dec, rel=1e-12)
    assert american_to_prob(price) * american_to_decimal(price) == pytest.approx(1.0, rel=1e-12)


@given(any_valid_price)
@settings(max_examples=300)
def test_prob_and_decimal_ranges(price: float) -> None:
    p = american_to_prob(price)
    d = american_to_decimal(price)
    assert 0.0 < p < 1.0
    assert d > 1.0
    assert math.isclose(p * d, 1.0, rel_tol=1e-12)
    if price < 0 or price == 100:
        assert p >= 0.5  # favourites (and even money) are at least 50%
    else:
        assert p <= 0.5


def _same_price(a: float, b: float) -> bool:
    """Equal on the cents scale (so +100 and -100 are one price), up to float rounding."""
    return math.isclose(cents(a), cents(b), rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.parametrize("price", [100, -100, 101, -101, -110, 150, -112.5, 99999, -99999, 100000, -100000])
def test_american_round_trips_at_examples_and_bounds(price: float) -> None:
    """Every valid price survives American -> decimal -> American and American -> prob -> American."""
    assert _same_price(decimal_to_american(american_to_decimal(price)), price)
    assert _same_price(prob_to_american(american_to_prob(price)), price)


@given(any_valid_price)
@example(-100000)
@example(100000)
@example(-100)
@settings(max_examples=400)
def test_american_round_trip_property(price: float) -> None:
    back = decimal_to_american(american_to_decimal(price))
    assert is_valid_price(back)
    assert _same_price(back, price)
    back_p = prob_to_american(american_to_prob(price))
    assert is_valid_price(back_p)
    assert _same_price(back_p, price)


@given(st.floats(min_value=1.0011, max_value=1001.0))
@settings(max_examples=300)
def test_decimal_round_trip_property(dec: float) -> None:
    a = decimal_to_american(dec)
    assert is_valid_price(a)
    assert math.isclose(american_to_decimal(a), dec, rel_tol=1e-9)


@pytest.mark.parametrize(("dec", "american"), [(2.0, 100), (3.0, 200), (1.5, -200), (1.25, -400),
                                               (1.909090909090909, -110)])
def test_decimal_to_american_examples(dec: float, american: float) -> None:
    assert decimal_to_american(dec) == pytest.approx(american, rel=1e-9)


@pytest.mark.parametrize("dec", [1.0, 0.5, 0.0, -2.0, math.nan, math.inf, 1.0000001, 1002.0])
def test_decimal_to_american_rejects(dec: float) -> None:
    with pytest.raises(ConfigError, match="decimal_odds"):
        decimal_to_american(dec)


@pytest.mark.parametrize("prob", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_prob_to_american_rejects(prob: float) -> None:
    with pytest.raises(ConfigError, match="prob"):
        prob_to_american(prob)


@pytest.mark.parametrize(("prob", "american"), [(0.5, 100), (0.25, 300), (0.75, -300), (2 / 3, -200)])
def test_prob_to_american_examples(prob: float, american: float) -> None:
    assert prob_to_american(prob) == pytest.approx(american, rel=1e-9)


# --------------------------------------------------------------------------------------
# sides: format_line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "text"),
    [(-1.5, "-1.5"), (1.5, "1.5"), (220.5, "220.5"), (-3, "-3"), (-3.0, "-3"), (0, "0"), (0.0, "0"),
     (-0.0, "0"), (3, "3"), (7.25, "7.25"), (-0.5, "-0.5"), (44.0, "44")],
)
def test_format_line_examples(line: float, text: str) -> None:
    assert format_line(line) == text


@pytest.mark.parametrize("line", [math.nan, math.inf, -math.inf, True, "1.5", None])
def test_format_line_rejects(line: object) -> None:
    with pytest.raises(ConfigError, match="line"):
        format_line(line)  # type: ignore[arg-type]


def _check_line_text(line: float, text: str) -> None:
    # round trips exactly (ints beyond 2**53 are written exactly too)
    assert (int(text) if type(line) is int else float(text)) == line
    assert "+" not in text
    assert not text.endswith(".0")
    assert text != "-0"
    assert text.strip() == text


#: Lines a book may publish: halves and quarters, small decimals.
realistic_lines = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-2000, 2000).map(lambda n: n / 2),
    st.integers(-4000, 4000).map(lambda n: n / 4),
    st.floats(-1000, 1000),
)


@given(realistic_lines)
@settings(max_examples=300)
def test_format_line_shortest_form_realistic(line: float) -> None:
    _check_line_text(line, format_line(line))


@given(st.one_of(st.integers(-(10**18), 10**18), st.floats(allow_nan=False, allow_infinity=False)))
@example(1e15)
@example(2**53)
@example(1e16)
@settings(max_examples=300)
def test_format_line_shortest_form_any_finite(line: float) -> None:
    """SPEC 2: no ``+`` sign and no trailing ``.0``, for any finite line (however absurd)."""
    _check_line_text(line, format_line(line))


# --------------------------------------------------------------------------------------
# sides: build and parse
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "info"),
    [
        ("h2h_home", SideInfo("game", "h2h", "home")),
        ("h2h_away", SideInfo("game", "h2h", "away")),
        ("h2h_draw", SideInfo("game", "h2h", "draw")),
        ("spread_home@-3", SideInfo("game", "spreads", "home", -3.0)),
        ("spread_away@1.5", SideInfo("game", "spreads", "away", 1.5)),
        ("total_over@220.5", SideInfo("game", "totals", "over", 220.5)),
        ("total_under@0", SideInfo("game", "totals", "under", 0.0)),
        ("player_points:LeBron James:over@24.5",
         SideInfo("prop", "player_points", "over", 24.5, "LeBron James")),
        ("player_points:A:B@C:over@24.5", SideInfo("prop", "player_points", "over", 24.5, "A:B@C")),
        ("player_assists:Nikola Jokić:under@9", SideInfo("prop", "player_assists", "under", 9.0,
                                                        "Nikola Jokić")),
        ("pp:::over@1", SideInfo("prop", "pp", "over", 1.0, ":")),
        ("pp:x:under@:under@2", SideInfo("prop", "pp", "under", 2.0, "x:under@")),
    ],
)
def test_parse_side_examples(side: str, info: SideInfo) -> None:
    assert parse_side(side) == info
    assert market_key_of(side) == info.market_key


def test_builders_examples() -> None:
    assert h2h_side("home") == "h2h_home"
    assert h2h_side("draw") == "h2h_draw"
    assert spread_side("home", -3.0) == "spread_home@-3"
    assert spread_side("away", 1.5) == "spread_away@1.5"
    assert total_side("over", 220.5) == "total_over@220.5"
    assert total_side("under", -0.0) == "total_under@0"
    assert prop_side("player_points", "A:B@C", "over", 24.5) == "player_points:A:B@C:over@24.5"


@pytest.mark.parametrize(
    "call",
    [
        lambda: h2h_side("both"),  # type: ignore[arg-type]
        lambda: spread_side("draw", 1),  # type: ignore[arg-type]
        lambda: total_side("home", 1),  # type: ignore[arg-type]
        lambda: prop_side("", "A", "over", 1),
        lambda: prop_side("a:b", "A", "over", 1),
        lambda: prop_side("pp", "", "over", 1),
        lambda: prop_side("pp", "A", "home", 1),  # type: ignore[arg-type]
        lambda: prop_side("pp", "A", "over", math.nan),
    ],
)
def test_builders_reject_bad_parts(call: object) -> None:
    with pytest.raises(ConfigError):
        call()  # type: ignore[operator]


BAD_SIDES = [
    "",
    "h2h",
    "h2h_",
    "h2h_home@1",
    "h2h_over",
    "moneyline_home",
    "spread_home",
    "spread_home@",
    "spread_home@abc",
    "spread_home@nan",
    "spread_home@inf",
    "spread_over@1",
    "total_home@220.5",
    "total@220.5",
    "spread-home@1",
    "player_points:over@1",
    ":A:over@1",
    "pp::over@1",
    "pp:A:over",
    "pp:A:over@",
    "pp:A:over@x",
    "pp:A:sideways@1",
    "pp:A:over@inf",
    "pp:A:under@nan",
]


@pytest.mark.parametrize("side", BAD_SIDES)
def test_parse_side_errors_name_the_side(side: str) -> None:
    with pytest.raises(FeedError) as info:
        parse_side(side)
    assert repr(side) in str(info.value)
    assert info.value.reason == "bad side"


@pytest.mark.parametrize("side", [None, 5, b"h2h_home", ["h2h_home"]])
def test_parse_side_rejects_non_strings(side: object) -> None:
    with pytest.raises(FeedError, match="side"):
        parse_side(side)  # type: ignore[arg-type]


player_names = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(":@ .'-_éÉñøßłŁžčćĆöÖüÜåçğİıšŠ")),
        st.characters(categories=["L"]),  # letters of any script
        st.characters(min_codepoint=32, max_codepoint=126),
    ),
    min_size=1,
    max_size=24,
)
market_keys = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=20,
)
lines = st.one_of(realistic_lines, st.sampled_from([-0.0, 0, -3, -3.0, 24.5, 220.5, -1.5]))


@given(market_keys, player_names, st.sampled_from(["over", "under"]), lines)
@example("player_points", "A:B@C", "over", 24.5)
@example("player_points", "x:over@1", "under", -0.0)
@example("player_points", "Łukasz:@Ćwik", "over", 6)
@settings(max_examples=400)
def test_prop_side_round_trip(market_key: str, player: str, outcome: str, line: float) -> None:
    side = prop_side(market_key, player, outcome, line)  # type: ignore[arg-type]
    info = parse_side(side)
    assert info.kind == "prop"
    assert info.market_key == market_key
    assert info.player == player
    assert info.outcome == outcome
    assert info.line == line
    assert side.endswith(f":{outcome}@{format_line(line)}")


@given(st.sampled_from(["home", "away"]), st.sampled_from(["over", "under"]), lines)
@settings(max_examples=200)
def test_game_side_round_trip(line_outcome: str, ou: str, line: float) -> None:
    s = spread_side(line_outcome, line)  # type: ignore[arg-type]
    assert parse_side(s) == SideInfo("game", "spreads", line_outcome, line)
    t = total_side(ou, line)  # type: ignore[arg-type]
    assert parse_side(t) == SideInfo("game", "totals", ou, line)
    assert "+" not in s and "+" not in t


@pytest.mark.parametrize("outcome", ["home", "away", "draw"])
def test_h2h_round_trip(outcome: str) -> None:
    assert parse_side(h2h_side(outcome)) == SideInfo("game", "h2h", outcome)  # type: ignore[arg-type]
