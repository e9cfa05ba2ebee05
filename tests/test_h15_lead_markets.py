"""Issue 15 groundwork in the core: runner sides of multi-runner markets, n-way devig, clean
decimal conversions.

- A runner side ``{market_key}:{selection}`` (exactly one ``:``) parses to kind ``game``; every
  side with another number of colons reads exactly as before (a frozen copy of the old prop rule).
- ``devig`` takes a market of any number of outcomes (an exchange WIN market has 6-14 runners).
- ``decimal_to_american`` carries no float noise past nine decimals (4.9 -> +390, not
  390.00000000000006), and stays within 1e-9 of the exact value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import ConfigError, FeedError, decimal_to_american, parse_side
from dropengine.analysis.devig import DEVIG_METHODS, devig, implied_probabilities
from dropengine.core.sides import SideInfo, _parse_line, canonical_side, runner_side


def test_runner_sides_round_trip() -> None:
    side = runner_side("win", 12115648)
    assert side == "win:12115648"
    info = parse_side(side)
    assert (info.kind, info.market_key, info.outcome, info.line, info.player) == ("game", "win", "12115648", None, None)
    assert canonical_side(side) == side
    assert parse_side("match_odds:Arsenal FC").outcome == "Arsenal FC"


@pytest.mark.parametrize("bad", ["h2h:1", "spreads:1", "totals:3", "win:", ":1", "win:1@", "win: 1", "win:1 ",
                                 "w in:1", "win@x:1"])
def test_malformed_runner_sides_are_refused(bad: str) -> None:
    with pytest.raises(FeedError, match="side"):
        parse_side(bad)


@pytest.mark.parametrize(("key", "sel"), [("h2h", 1), ("", 1), ("win", ""), ("win", "a:b"), ("a b", 1), ("win", " 1")])
def test_runner_side_builder_names_the_bad_part(key: str, sel: str | int) -> None:
    with pytest.raises(ConfigError, match=r"market_key|selection"):
        runner_side(key, sel)


def _old_parse(side: str) -> SideInfo:
    """parse_side as it was before runner sides (7b11c84), frozen here to compare against."""
    if ":" in side:
        market_key, _, rest = side.partition(":")
        player, sep, tail = rest.rpartition(":")
        outcome, at, line_text = tail.partition("@")
        if not market_key or not sep or not player or not at or outcome not in ("over", "under"):
            raise FeedError("prop", "bad side")
        return SideInfo("prop", market_key, outcome, _parse_line(line_text, side), player)
    head, at, line_text = side.partition("@")
    market, underscore, outcome = head.partition("_")
    if market == "h2h" and not at and outcome in ("home", "away", "draw"):
        return SideInfo("game", "h2h", outcome)
    if ((market == "spread" and outcome in ("home", "away")) or (
        market == "total" and outcome in ("over", "under")
    )) and at and underscore:
        return SideInfo("game", {"spread": "spreads", "total": "totals"}[market], outcome, _parse_line(line_text, side))
    raise FeedError("game", "bad side")


def _outcome(parse: Callable[[str], SideInfo], side: str) -> SideInfo | str:
    try:
        return parse(side)
    except FeedError:
        return "refused"


_TOKENS = [":", "@", "_", " ", "1", ".5", "-", "a", "h2h", "home", "away", "draw", "over", "under", "player_points",
           "spread", "total", "spreads", "win", "12115648"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=8).map("".join))
def test_sides_without_exactly_one_colon_read_as_before(side: str) -> None:
    """The runner form only takes sides every earlier version refused (exactly one ``:``)."""
    old, new = _outcome(_old_parse, side), _outcome(parse_side, side)
    if side.count(":") == 1:
        assert old == "refused"
        assert new == "refused" or (isinstance(new, SideInfo) and new.kind == "game" and new.line is None
                                    and side == f"{new.market_key}:{new.outcome}")
    else:
        assert new == old


# a Betfair WIN market at the off: 12 runners (decimal prices of the BASIC recording's favourites)
_WIN = [4.15, 11.0, 5.73, 21.0, 6.4, 13.55, 9.14, 60.33, 40.0, 19.59, 150.0, 127.35]


@pytest.mark.parametrize("method", DEVIG_METHODS)
def test_devig_takes_a_market_of_many_runners(method: str) -> None:
    got = devig(_WIN, method, fmt="decimal")  # type: ignore[arg-type]
    assert len(got.probabilities) == len(_WIN)
    assert math.isclose(math.fsum(got.probabilities), 1.0, abs_tol=1e-12)
    if method == "multiplicative":
        pi = implied_probabilities(_WIN, "decimal")
        assert got.probabilities == pytest.approx([p / math.fsum(pi) for p in pi], rel=1e-12)
    # shorter price, never a smaller fair probability
    order = sorted(range(len(_WIN)), key=lambda i: _WIN[i])
    probs = [got.probabilities[i] for i in order]
    assert all(a >= b for a, b in itertools.pairwise(probs))


def test_devig_still_needs_two_outcomes() -> None:
    with pytest.raises(ConfigError, match="at least 2 outcomes"):
        devig([-110])


@pytest.mark.parametrize(("dec", "american"), [(4.9, 390), (8.2, 720), (1.5, -200), (2.0, 100), (1.91, -109.89010989)])
def test_decimal_to_american_has_no_float_noise(dec: float, american: float) -> None:
    assert decimal_to_american(dec) == american


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1.0011, max_value=999.0))  # the ends snap onto the bounds (odds.py)
def test_decimal_to_american_within_a_billionth(dec: float) -> None:
    exact = (Fraction(dec) - 1) * 100 if dec >= 2 else -100 / (Fraction(dec) - 1)
    assert abs(Fraction(decimal_to_american(dec)) - exact) <= Fraction(1, 10**9)


def test_a_runner_quote_has_no_vendor_row() -> None:
    """The vendor's rows carry no multi-runner market: a runner quote is a skip (``unsupported
    side``), so mock-upstream counts it instead of crashing (it raised KeyError)."""
    from dropengine import Quote
    from dropengine.formats.vendor import vendor_row

    with pytest.raises(FeedError, match="multi-runner") as info:
        vendor_row(Quote("horse_racing", "1.132153978", "betfair", "win:12115648", -200, 1_000))
    assert info.value.reason == "unsupported side"


def test_mock_upstream_skips_a_betfair_recording_whole() -> None:
    from dropengine.mock.timeline import load_timeline
    from tests.conftest import require_data

    path = require_data("betfair_stream", "BASIC-1.132153978")
    tl = load_timeline([path])
    assert tl.formats[str(path)] == "betfair"
    assert tl.releases == [] and tl.skips.counts.get("unsupported side", 0) > 1000


def test_a_line_no_float_holds_is_a_bad_line_skip() -> None:
    """A 400-digit line (an int or a numeric text) is no line: a ``bad line`` FeedError, not an
    OverflowError out of ``math.isfinite`` that ended a whole read."""
    from dropengine.formats.frames import coerce_line

    for value in (10**400, "1" + "0" * 400, -(10**400)):
        with pytest.raises(FeedError, match="not finite") as info:
            coerce_line(value, "line")
        assert info.value.reason == "bad line"
    assert coerce_line(10**300, "line") == 10**300 and coerce_line("-3.5", "line") == -3.5
