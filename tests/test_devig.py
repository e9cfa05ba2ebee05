"""Tests for the devig in ``dropengine.analysis.devig`` (SPEC section 9): published worked examples,
hypothesis properties, and the errors.

The published examples live outside the repository, in
``test_vectors/odds_math_published_vectors.json`` under ``DROPENGINE_DATA``; they are read,
never copied. Each vector (or each case of a vector with ``cases``) is one test: asserted when
its ``status`` starts with "exact", at the tolerance it states, and skipped with the reason
otherwise (also when the method it exercises is not one dropengine offers). An exact vector
with no checker here fails, so a vector added to the file cannot pass unnoticed.

Tolerances are read from the vector: ``tolerance`` ("rel 1e-6"), a status "exact at N dp",
or else the precision each value is printed at. A value printed at N decimals must be the
true value rounded or truncated to N decimals (bettingtools prints the hold 0.045454... as
0.0454); a value printed at full float precision (12 or more significant digits) comes from
another implementation's iterative solver, stopped at about 1e-12, and is held to rel 1e-10
(abs 1e-11).
"""

from __future__ import annotations

import decimal
import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from dropengine.analysis.devig import DEVIG_METHODS, Devigged, _shin_numeric, devig, implied_probabilities, overround
from dropengine.core.errors import ConfigError, DropEngineError
from dropengine.core.odds import (
    MAX_ABS_PRICE,
    MIN_ABS_PRICE,
    american_to_decimal,
    american_to_prob,
    decimal_to_american,
    delta,
    prob_to_american,
)

from .conftest import data_root, require_data

VECTORS = ("test_vectors", "odds_math_published_vectors.json")

# --------------------------------------------------------------------------------------
# tolerances
# --------------------------------------------------------------------------------------

FULL_REL, FULL_ABS = 1e-10, 1e-11


def _decimals(printed: float) -> int:
    text = repr(float(printed)) if isinstance(printed, float) else str(printed)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def _significant(printed: float) -> int:
    return len(repr(printed).lstrip("-").replace(".", "").lstrip("0").split("e")[0])


def agrees(actual: float, printed: float, tol: str | None = None) -> bool:
    """``actual`` matches ``printed`` at the tolerance ``tol`` ("rel X", "abs X", "N dp") or, by
    default, at the precision ``printed`` is written with (rounded or truncated)."""
    if tol is not None and tol.startswith("rel "):
        return math.isclose(actual, printed, rel_tol=float(tol[4:]), abs_tol=1e-12)
    if tol is not None and tol.startswith("abs "):
        return abs(actual - printed) <= float(tol[4:])
    if tol is not None and tol.endswith(" dp"):
        dp = int(tol[:-3])
    elif isinstance(printed, float) and _significant(printed) >= 12:
        return math.isclose(actual, printed, rel_tol=FULL_REL, abs_tol=FULL_ABS)
    else:
        dp = _decimals(printed)
    unit, eps = 10.0**-dp, 1e-9 * 10.0**-dp
    rounded = abs(actual - printed) <= unit / 2 + eps
    truncated = 0.0 <= math.copysign(1.0, actual) * (actual - printed) < unit + eps
    return rounded or truncated


def vector_tolerance(entry: dict[str, Any], status: str) -> str | None:
    """The tolerance a vector states: its ``tolerance`` field, or "exact at N dp" in its status."""
    text = entry.get("tolerance")
    if isinstance(text, str):
        if m := re.search(r"rel\s+([0-9.eE+-]+)\s*(%?)", text):
            return f"rel {float(m[1]) / (100 if m[2] else 1)!r}"
        if m := re.search(r"(?:within|tolerance|abs)\s+([0-9.eE+-]+)", text):
            return f"abs {m[1]}"
        if m := re.search(r"(\d+)\s*dp", text):
            return f"{m[1]} dp"
        raise AssertionError(f"cannot read tolerance {text!r}")
    if m := re.match(r"exact at (\d+) dp", status):
        return f"{m[1]} dp"
    return None  # the printed precision of each value


def test_agrees_reads_tolerances() -> None:
    assert agrees(0.37299406033, 0.3729941, "rel 1e-06")
    assert not agrees(0.3729951, 0.3729941, "rel 1e-06")
    assert agrees(0.0324257, 0.0324) and not agrees(0.03255, 0.0324)
    assert agrees(0.0454545, 0.0454) and agrees(0.0454545, 0.0455)  # truncated or rounded
    assert not agrees(0.0454545, 0.0453) and not agrees(0.0454545, 0.0456)
    assert agrees(-149.25373134, -149.2537) and not agrees(-149.25391, -149.2537)
    assert not agrees(-149.2536, -149.2537) and not agrees(-149.25361, -149.2537)
    assert agrees(1.90909, 1.91, "2 dp") and agrees(2.1645, 2.2) and agrees(25, 25)
    assert agrees(0.35873803620, 0.35873803615739097) is False
    assert agrees(0.3587380361574, 0.35873803615739097)
    assert agrees(288.1579, 288.1988, "abs 0.05")
    assert vector_tolerance({"tolerance": "pytest.approx default (rel 1e-6)"}, "exact") == "rel 1e-06"
    assert vector_tolerance({"tolerance": "rel 0.1% (source rounding)"}, "approximate") == "rel 0.001"
    assert vector_tolerance({}, "exact at 4 dp") == "4 dp"
    assert vector_tolerance({}, "exact (z printed to 4 dp; exact 0.016236442857291165)") is None


def assert_agrees(actual: Sequence[float], printed: Sequence[float], tol: str | None, what: str) -> None:
    assert len(actual) == len(printed), what
    for i, (a, p) in enumerate(zip(actual, printed, strict=True)):
        assert agrees(a, p, tol), f"{what}[{i}]: got {a!r}, published {p!r} (tolerance {tol or 'printed precision'})"


def status_exact_value(status: str) -> float:
    """The full-precision value a status gives after "exact" ("... 4 dp; exact 0.0162364428...")."""
    m = re.search(r"exact\s+(\d+\.\d{8,})", status)
    assert m, f"no exact value in status {status!r}"
    return float(m[1])


# --------------------------------------------------------------------------------------
# the published vectors
# --------------------------------------------------------------------------------------

Checker = Callable[[dict[str, Any], dict[str, Any], str | None], None]


def fair_american(p: float) -> float:
    return prob_to_american(p)


def check_shin_mberk_3way(vector: dict[str, Any], _: dict[str, Any], tol: str | None) -> None:
    r = devig(vector["input_decimal"], "shin", fmt="decimal")
    assert_agrees(r.probabilities, vector["expected"]["probabilities"], tol, "probabilities")
    assert agrees(r.parameter or 0.0, vector["expected"]["z"], tol), r.parameter


def check_shin_mberk_2way(vector: dict[str, Any], _: dict[str, Any], tol: str | None) -> None:
    odds = vector["input_decimal"]
    r = devig(odds, "shin", fmt="decimal")
    assert_agrees(r.probabilities, vector["recomputed"]["probabilities"], tol, "probabilities")
    # the rule: p_i = 1/o_i - (sum(1/o) - 1)/2, i.e. Shin == additive, with no iterations
    inv = [1 / o for o in odds]
    rule = [x - (sum(inv) - 1) / 2 for x in inv]
    assert r.probabilities == pytest.approx(rule, rel=1e-14)
    assert r.probabilities == pytest.approx(devig(odds, "additive", fmt="decimal").probabilities, rel=1e-14)
    # mberk/shin's two-outcome z, written out from its source
    s, d = sum(inv), inv[0] - inv[1]
    assert r.parameter == pytest.approx((s - 1) * (d**2 - s) / (s * (d**2 - 1)), rel=1e-12)


def check_penaltyblog_multiplicative(vector: dict[str, Any], entry: dict[str, Any], tol: str | None) -> None:
    odds, expected = vector["input_decimal"], vector["expected"]
    r = devig(odds, fmt="decimal")
    assert r == devig(odds, "multiplicative", fmt="decimal")
    assert_agrees(r.probabilities, expected["probabilities"], tol, "probabilities")
    assert agrees(r.overround, expected["margin"], tol), r.overround
    assert agrees(r.overround, status_exact_value(entry["status"])), r.overround
    assert overround(odds, fmt="decimal") == r.overround


def check_penaltyblog_shin_american(vector: dict[str, Any], entry: dict[str, Any], tol: str | None) -> None:
    american = [float(a) for a in vector["input_american"]]  # published as strings: "+170"
    assert [american_to_decimal(a) for a in american] == pytest.approx(vector["input_decimal_equiv"], rel=1e-15)
    for r in (devig(american, "shin"), devig(vector["input_decimal_equiv"], "shin", fmt="decimal")):
        assert_agrees(r.probabilities, vector["expected"]["probabilities"], tol, "probabilities")
        assert r.parameter is not None
        assert agrees(r.parameter, vector["expected"]["z"], tol), r.parameter
        assert agrees(r.parameter, status_exact_value(entry["status"])), r.parameter


def check_bettingtools(vector: dict[str, Any], case: dict[str, Any], tol: str | None) -> None:
    fn, given_, expected = case["fn"].split()[0], case["in"], case["expected"]
    if fn == "US2Implied":
        assert_agrees([american_to_prob(a) for a in given_], expected, tol, fn)
        assert_agrees(implied_probabilities(given_), expected, tol, fn)
    elif fn == "US2Dec":
        assert_agrees([american_to_decimal(a) for a in given_], expected, tol, fn)
    elif fn == "Dec2US":
        assert_agrees([decimal_to_american(d) for d in given_], expected, tol, fn)
    elif fn == "Dec2Implied":
        assert_agrees(implied_probabilities(given_, fmt="decimal"), expected, tol, fn)
    elif fn == "TheoreticalHold":  # 1 - 1/sum(implied); our overround is sum(implied) - 1
        hold = 1 - 1 / (1 + overround(given_))
        assert_agrees([hold], [expected], tol, fn)
        assert_agrees([hold], [case["recomputed"]], None, fn + " recomputed")
    elif fn in ("US2Fair", "Dec2Fair"):
        r = devig(given_, fmt="american" if fn == "US2Fair" else "decimal")  # multiplicative
        assert_agrees([fair_american(p) for p in r.probabilities], expected, tol, fn)
    else:
        raise AssertionError(f"exact case {case['fn']!r} has no checker in this file: add one")


def check_clv_sbr_forum(vector: dict[str, Any], _: dict[str, Any], tol: str | None) -> None:
    bet, close = vector["bet_american"], vector["close_american"]
    exp, rec = vector["expected"], vector["recomputed"]
    assert delta(bet, close) == -exp["cents"]  # the price shortened by 25 cents
    assert agrees(american_to_prob(bet), exp["breakeven_bet"], tol)
    assert agrees(american_to_prob(close), exp["breakeven_close"], tol)
    pp = 100 * (american_to_prob(close) - american_to_prob(bet))
    assert agrees(pp, exp["clv_prob_pp"], tol) and agrees(pp, rec["clv_prob_pp"], tol)
    price_clv = american_to_decimal(bet) / american_to_decimal(close) - 1  # SPEC 9 price CLV
    assert agrees(100 * price_clv, exp["clv_ev_pct"], tol) and agrees(price_clv, rec["decimal_ratio_minus_1"], tol)
    # the no-vig close: the source's -145 is a cents-midpoint heuristic (its status says so);
    # the exact multiplicative devig, +144/-144, is checked instead
    novig = vector["novig_example"]
    fair = devig(novig["close_pair"]).probabilities
    assert_agrees([fair_american(p) for p in fair], novig["exact_multiplicative"], tol, "exact_multiplicative")


def _clv_pp(bet: float, close: float) -> float:
    return 100 * (american_to_prob(close) - american_to_prob(bet))


def check_clv_calculator_academy(vector: dict[str, Any], _: dict[str, Any], tol: str | None) -> None:
    assert agrees(_clv_pp(vector["bet_american"], vector["close_american"]), vector["expected"]["clv_pp"], tol)


def check_clv_sharksnip(vector: dict[str, Any], case: dict[str, Any], tol: str | None) -> None:
    bet, close, exp = case["bet"], case["close"], case["expected"]
    assert delta(bet, close) == -exp["cents"]
    if "implied_bet" in exp:
        assert agrees(american_to_prob(bet), exp["implied_bet"], tol)
        assert agrees(american_to_prob(close), exp["implied_close"], tol)
    if "note" in case:  # "3.18 comes from subtracting rounded percentages": the recomputation instead
        assert not agrees(_clv_pp(bet, close), exp["clv_pp"], tol)
        assert agrees(_clv_pp(bet, close), case["recomputed"]["clv_pp"], tol)
    else:
        assert agrees(_clv_pp(bet, close), exp["clv_pp"], tol)


def check_clv_latentquant(vector: dict[str, Any], case: dict[str, Any], tol: str | None) -> None:
    exp = case["expected"]
    if "pair" in case:  # the source's "overround" is the booksum 1.048; ours is the margin
        pair = case["pair"]
        assert_agrees(implied_probabilities(pair), [exp["implied_each"]] * 2, tol, "implied_each")
        assert agrees(1 + overround(pair), exp["overround"], tol)
        for method in DEVIG_METHODS:
            assert_agrees(devig(pair, method).probabilities, [exp["fair_each"]] * 2, tol, method)
    else:
        assert agrees(_clv_pp(case["bet"], case["close"]), exp["clv_pp"], tol)


def check_overround_ganchrow(vector: dict[str, Any], case: dict[str, Any], tol: str | None) -> None:
    exp = case["expected"]
    booksum = 1 + overround(case["pair"])  # the source's "overround" is the booksum
    assert agrees(booksum, exp["overround"], tol), booksum
    assert agrees(1 - 1 / booksum, exp["vig"], tol)  # vig = 1 - 1/overround
    assert devig(case["pair"]).overround == overround(case["pair"])


CHECKERS: dict[str, Checker] = {
    "shin_mberk_3way": check_shin_mberk_3way,
    "shin_mberk_2way_equals_additive": check_shin_mberk_2way,
    "penaltyblog_docs_multiplicative": check_penaltyblog_multiplicative,
    "penaltyblog_docs_shin_american": check_penaltyblog_shin_american,
    "bettingtools_conversions": check_bettingtools,
    "clv_sbr_forum": check_clv_sbr_forum,
    "clv_calculator_academy": check_clv_calculator_academy,
    "clv_sharksnip": check_clv_sharksnip,
    "clv_latentquant": check_clv_latentquant,
    "overround_sbr_ganchrow": check_overround_ganchrow,
}

#: Exact vectors (by method) and cases (by function) of things dropengine does not offer.
NOT_OFFERED = {
    "goto_conversion": "goto_conversion is not one of dropengine's devig methods",
    "calculateKellyStake": "Kelly staking is not part of dropengine.analysis.devig",
}


@functools.cache
def load_vectors(path: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {v["id"]: v for v in doc["vectors"]}


def vector_params() -> list[Any]:
    """One test per vector, or per case of a vector with ``cases``; read at collection time."""
    path = data_root().joinpath(*VECTORS)
    if not path.exists():  # the test itself skips, or fails under DROPENGINE_REQUIRE_DATA=1
        return [pytest.param(None, None, id="vectors-file-absent")]
    params = []
    for vid, vector in load_vectors(path).items():
        if isinstance(vector.get("cases"), list):
            params += [pytest.param(vid, i, id=f"{vid}#{i}") for i in range(len(vector["cases"]))]
        else:
            params.append(pytest.param(vid, None, id=vid))
    return params


@pytest.mark.data
@pytest.mark.parametrize(("vector_id", "case"), vector_params())
def test_published_vector(vector_id: str | None, case: int | None) -> None:
    vectors = load_vectors(require_data(*VECTORS))
    assert vector_id is not None, "the vectors file appeared after collection: run again"
    vector = vectors[vector_id]
    entry = vector if case is None else vector["cases"][case]
    status = entry.get("status", vector.get("status"))
    label = vector_id if case is None else f"{vector_id}#{case} {entry.get('fn', '')}".rstrip()
    if status is None:
        note = vector.get("source", {}).get("note") or "formulas only, no numbers"
        pytest.skip(f"{label}: no status, not asserted ({note})")
    if not status.lower().startswith("exact"):
        pytest.skip(f"{label}: status {status!r}")
    for what in (vector.get("method"), entry.get("fn", "").split(" ")[0]):
        if what in NOT_OFFERED:
            pytest.skip(f"{label}: status {status!r}, but {NOT_OFFERED[what]}")
    checker = CHECKERS.get(vector_id)
    assert checker is not None, f"exact vector {vector_id!r} has no checker in this file: add one"
    checker(vector, entry, vector_tolerance(entry, status))


# --------------------------------------------------------------------------------------
# examples
# --------------------------------------------------------------------------------------


def test_devigged_is_a_frozen_record() -> None:
    r = devig([-110, -110])
    assert r == Devigged(probabilities=(0.5, 0.5), overround=r.overround, method="multiplicative", parameter=None)
    assert r.overround == pytest.approx(1 / 21, rel=1e-14)
    with pytest.raises(AttributeError):
        r.overround = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("method", DEVIG_METHODS)
def test_even_money_is_no_vig(method: str) -> None:
    for prices in ([100, -100], [100, 100], [-100, 100]):
        r = devig(prices, method)  # type: ignore[arg-type]
        assert r.probabilities == (0.5, 0.5)
        assert r.overround == 0.0
    assert devig([100, -100], "power").parameter == 1.0
    assert devig([100, -100], "shin").parameter == 0.0


def test_methods_by_hand() -> None:
    # -200 / +170: implied 2/3 and 100/270
    pi = (2 / 3, 100 / 270)
    s = sum(pi)
    assert devig([-200, 170]).probabilities == pytest.approx([p / s for p in pi], rel=1e-15)
    assert devig([-200, 170], "additive").probabilities == pytest.approx([p - (s - 1) / 2 for p in pi], rel=1e-15)
    power = devig([-200, 170], "power")
    assert power.parameter is not None and power.parameter > 1
    assert sum(p**power.parameter for p in pi) == pytest.approx(1, abs=1e-14)
    assert power.probabilities == pytest.approx([p**power.parameter for p in pi], rel=1e-14)
    # the favourite-longshot bias: shin and power move probability from the long shot to the favourite
    mult = devig([-400, 250, 900]).probabilities
    for method in ("power", "shin"):
        fair = devig([-400, 250, 900], method).probabilities
        assert fair[0] > mult[0] and fair[2] < mult[2]


def test_formats_agree() -> None:
    american = [-150, 130]
    decimal = [american_to_decimal(a) for a in american]
    prob = [american_to_prob(a) for a in american]
    for method in DEVIG_METHODS:
        a = devig(american, method)
        d = devig(decimal, method, fmt="decimal")
        p = devig(prob, method, fmt="prob")
        assert a.probabilities == pytest.approx(d.probabilities, rel=1e-14)
        assert a.probabilities == p.probabilities
        assert a.overround == pytest.approx(d.overround, abs=1e-15)


def test_inputs_may_be_any_iterable_of_reals() -> None:
    np = pytest.importorskip("numpy")
    ref = devig([-110, 105, 400])
    assert devig((-110, 105, 400)) == ref
    assert devig(iter([-110, 105, 400])) == ref
    assert devig(np.array([-110, 105, 400], dtype=np.float64)) == ref
    assert devig([-110.0, 105.0, 400.0]) == ref


def test_underround_markets() -> None:
    # +150 / +150 across two books: implied 0.4 + 0.4
    for method in ("multiplicative", "additive"):
        assert devig([150, 150], method).probabilities == (0.5, 0.5)
    power = devig([150, 150], "power")
    assert power.probabilities == pytest.approx((0.5, 0.5), rel=1e-15)
    assert power.parameter is not None and 0 < power.parameter < 1
    assert devig([150, 150]).overround == pytest.approx(-0.2, rel=1e-15)
    with pytest.raises(ConfigError, match=r"^prices: shin needs a market with an overround"):
        devig([150, 150], "shin")


def test_additive_refuses_negative_probabilities() -> None:
    # a 1.05 favourite, a 10.0 and a 50.0 shot: margin 0.0724, a third of it 0.0241 > 1/50
    with pytest.raises(ConfigError, match=r"^prices: additive devig gives outcome 2") as info:
        devig([1.05, 10.0, 50.0], "additive", fmt="decimal")
    assert isinstance(info.value, DropEngineError)
    for method in ("multiplicative", "power", "shin"):
        assert min(devig([1.05, 10.0, 50.0], method, fmt="decimal").probabilities) > 0


def test_extreme_prices() -> None:
    for prices in (
        [-MAX_ABS_PRICE, MAX_ABS_PRICE],
        [-MAX_ABS_PRICE, MAX_ABS_PRICE, MAX_ABS_PRICE],
        [MIN_ABS_PRICE, MIN_ABS_PRICE, MIN_ABS_PRICE],
        [-MAX_ABS_PRICE, -MAX_ABS_PRICE],
    ):
        for method in ("multiplicative", "power", "shin"):
            r = devig(prices, method)
            assert math.fsum(r.probabilities) == pytest.approx(1, abs=1e-14)
            assert all(0 < p < 1 for p in r.probabilities)
    # probabilities near 1, where the power exponent is huge: 2 * (1 - 1e-7) ** k = 1
    r = devig([0.9999999, 0.9999999], "power", fmt="prob")
    assert r.parameter == pytest.approx(math.log(2) / -math.log(0.9999999), rel=1e-12)
    assert r.probabilities == pytest.approx((0.5, 0.5), rel=1e-15)
    # a long shot beside two heavy favourites: k = 693 and 0.000999 ** 693 underflows to 0.0
    r = devig([-MAX_ABS_PRICE, -MAX_ABS_PRICE, MAX_ABS_PRICE], "power")
    assert r.probabilities[2] == 0.0 and r.probabilities[:2] == pytest.approx((0.5, 0.5), rel=1e-12)
    z, fair = _shin_numeric([0.9999999999, 0.5, 1e-300])
    assert 0 < z < 1 and math.fsum(fair) == pytest.approx(1, abs=1e-14) and fair[2] >= 0


# --------------------------------------------------------------------------------------
# errors name the argument
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"prices": []}, "prices"),
        ({"prices": [-110]}, "prices"),
        ({"prices": [-110, 120, 300, 50]}, "prices[3]"),  # four outcomes are a market now (issue 15: runners)
        ({"prices": "-110,-110"}, "prices"),
        ({"prices": b"ab"}, "prices"),
        ({"prices": {"home": -110, "away": -110}}, "prices"),
        ({"prices": None}, "prices"),
        ({"prices": -110}, "prices"),
        ({"prices": [-110, 50]}, "prices[1]"),
        ({"prices": [-110, 0]}, "prices[1]"),
        ({"prices": [True, -110]}, "prices[0]"),
        ({"prices": ["-110", -110]}, "prices[0]"),
        ({"prices": [-110, math.nan]}, "prices[1]"),
        ({"prices": [-110, math.inf]}, "prices[1]"),
        ({"prices": [-110, 100001]}, "prices[1]"),
        ({"prices": [-110, None]}, "prices[1]"),
        ({"prices": [-110, 10**400]}, "prices[1]"),
        ({"prices": [1.0, 2.0], "fmt": "decimal"}, "prices[0]"),
        ({"prices": [1.9, -110], "fmt": "decimal"}, "prices[1]"),
        ({"prices": [1.9, math.inf], "fmt": "decimal"}, "prices[1]"),
        ({"prices": [0.5, 1.0], "fmt": "prob"}, "prices[1]"),
        ({"prices": [0.0, 0.5], "fmt": "prob"}, "prices[0]"),
        ({"prices": [0.5, math.nan], "fmt": "prob"}, "prices[1]"),
        ({"prices": [-110, -110], "fmt": "fractional"}, "fmt"),
        ({"prices": [-110, -110], "fmt": None}, "fmt"),
        ({"prices": [-110, -110], "method": "logit"}, "method"),
        ({"prices": [-110, -110], "method": "Shin"}, "method"),
        ({"prices": [-110, -110], "method": None}, "method"),
        ({"prices": [1.05, 10.0, 50.0], "fmt": "decimal", "method": "additive"}, "prices"),
        ({"prices": [150, 150], "method": "shin"}, "prices"),
    ],
)
def test_devig_errors_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    prices = kwargs.pop("prices")
    with pytest.raises(ConfigError) as info:
        devig(prices, **kwargs)
    assert str(info.value).startswith(argument + ":"), str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("fn", [implied_probabilities, overround], ids=lambda f: f.__name__)
def test_market_helpers_errors(fn: Callable[..., object]) -> None:
    for prices, argument in (([], "prices"), ([-110], "prices"), ([-110, 50], "prices[1]"), ("ab", "prices")):
        with pytest.raises(ConfigError, match=rf"^{re.escape(argument)}:"):
            fn(prices)
    with pytest.raises(ConfigError, match=r"^fmt:"):
        fn([-110, -110], fmt="percent")
    # any number of outcomes from two up (a six-way book's margin)
    assert fn([1.15, 5, 10, 20, 50, 100], fmt="decimal") is not None


# --------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------

american = st.one_of(
    st.integers(MIN_ABS_PRICE, 2000),
    st.integers(-2000, -MIN_ABS_PRICE),
    st.integers(MIN_ABS_PRICE, MAX_ABS_PRICE),
    st.integers(-MAX_ABS_PRICE, -MIN_ABS_PRICE),
    st.integers(2 * MIN_ABS_PRICE, 2 * MAX_ABS_PRICE).map(lambda n: n / 2),
    st.floats(-MAX_ABS_PRICE, -MIN_ABS_PRICE),
)
probability = st.floats(1e-9, 1 - 1e-9)
markets = st.one_of(
    st.lists(american, min_size=2, max_size=3).map(lambda p: (p, "american")),
    st.lists(st.floats(1.0001, 1000.0), min_size=2, max_size=3).map(lambda p: (p, "decimal")),
    st.lists(probability, min_size=2, max_size=3).map(lambda p: (p, "prob")),
)
methods = st.sampled_from(DEVIG_METHODS)


def _devig_or_refusal(prices: list[float], method: str, fmt: str) -> Devigged | None:
    """``devig``, or None when it refuses, checking that it refuses exactly when it should."""
    pi = implied_probabilities(prices, fmt)  # type: ignore[arg-type]
    margin = math.fsum(pi) - 1
    refuses = (method == "additive" and min(pi) - margin / len(pi) <= 0) or (method == "shin" and margin < -1e-12)
    if refuses:
        with pytest.raises(ConfigError, match=r"^prices:"):
            devig(prices, method, fmt=fmt)  # type: ignore[arg-type]
        return None
    return devig(prices, method, fmt=fmt)  # type: ignore[arg-type]


@given(markets, methods)
@example(([-110, -110], "american"), "shin")
@example(([-10000, 10000, 10000], "american"), "power")
@example(([0.5, 0.5000000000000001], "prob"), "shin")
@example(([0.3, 0.3, 0.3], "prob"), "shin")
@settings(max_examples=400, deadline=None)
def test_fair_probabilities_sum_to_one_and_keep_the_order(market: tuple[list[float], str], method: str) -> None:
    prices, fmt = market
    r = _devig_or_refusal(prices, method, fmt)
    if r is None:
        return
    pi = implied_probabilities(prices, fmt)  # type: ignore[arg-type]
    fair = r.probabilities
    assert r.method == method and len(fair) == len(pi)
    assert math.fsum(fair) == pytest.approx(1.0, abs=1e-12)
    if method in ("multiplicative", "additive"):
        assert all(0 < p < 1 for p in fair)
    else:  # power and shin shrink long shots: p ** k or about p^2 / (S z) may underflow to 0.0
        assert all(0 <= p <= 1 for p in fair)
    for i in range(len(pi)):
        for j in range(len(pi)):
            if pi[i] > pi[j]:
                assert fair[i] >= fair[j], (i, j, pi, fair)  # equal only by rounding
            elif pi[i] == pi[j]:
                assert fair[i] == fair[j]


@given(markets, methods)
@settings(max_examples=300, deadline=None)
def test_overround_is_the_sum_of_implied_minus_one(market: tuple[list[float], str], method: str) -> None:
    prices, fmt = market

    def independent(x: float) -> float:  # SPEC 1 and 1/d, written out again
        if fmt == "american":
            return 100 / (x + 100) if x > 0 else -x / (100 - x)
        return 1 / x if fmt == "decimal" else x

    expected = sum(independent(x) for x in prices) - 1
    assert overround(prices, fmt=fmt) == pytest.approx(expected, rel=1e-12, abs=1e-15)  # type: ignore[arg-type]
    assert implied_probabilities(prices, fmt=fmt) == pytest.approx([independent(x) for x in prices], rel=1e-15)  # type: ignore[arg-type]
    r = _devig_or_refusal(prices, method, fmt)
    if r is not None:
        assert r.overround == overround(prices, fmt=fmt)  # type: ignore[arg-type]


@given(markets, methods)
@settings(max_examples=300, deadline=None)
def test_parameters(market: tuple[list[float], str], method: str) -> None:
    prices, fmt = market
    r = _devig_or_refusal(prices, method, fmt)
    if r is None:
        return
    pi = implied_probabilities(prices, fmt)  # type: ignore[arg-type]
    if method in ("multiplicative", "additive"):
        assert r.parameter is None
        s = math.fsum(pi)
        expected = [p / s for p in pi] if method == "multiplicative" else [p - (s - 1) / len(pi) for p in pi]
        assert r.probabilities == pytest.approx(expected, rel=1e-12, abs=1e-15)
    elif method == "power":
        k = r.parameter
        assert k is not None and k > 0
        assert (k > 1) == (r.overround > 0) or abs(k - 1) < 1e-9
        assert math.fsum(p**k for p in pi) == pytest.approx(1, abs=1e-12)
    else:
        z = r.parameter
        assert z is not None and 0 <= z < 1
        # the textbook formula (mberk/shin) at the returned z gives the returned probabilities; in
        # 40-digit decimals, since in floats it cancels badly for long shots and for z near 1
        with decimal.localcontext() as ctx:
            ctx.prec = 40
            dz, dpi = Decimal(z), [Decimal(p) for p in pi]
            ds = sum(dpi)
            if ds > 1:
                textbook = [((dz * dz + 4 * (1 - dz) * p * p / ds).sqrt() - dz) / (2 * (1 - dz)) for p in dpi]
                assert float(sum(textbook)) == pytest.approx(1, abs=1e-12)
                # absolute 1e-15: a 6e-8 long shot is sensitive to the last bit of z (seen: 4e-19 off)
                assert [float(t) for t in textbook] == pytest.approx(r.probabilities, rel=1e-12, abs=1e-15)


@given(st.lists(st.floats(1e-3, 1.0), min_size=2, max_size=3), methods)
@example([1.0, 1.0], "shin")
@example([1.0, 2.0, 1.0], "power")
@example([1.0, 3.0], "additive")
@settings(max_examples=300, deadline=None)
def test_a_market_without_vig_is_returned_unchanged(weights: list[float], method: str) -> None:
    total = math.fsum(weights)
    probs = [w / total for w in weights]
    assume(all(0 < p < 1 for p in probs))
    r = devig(probs, method, fmt="prob")  # type: ignore[arg-type]
    assert r.probabilities == pytest.approx(probs, rel=1e-12, abs=1e-15)
    assert abs(r.overround) < 1e-15
    if method == "power":
        assert r.parameter == pytest.approx(1.0, abs=1e-9)
    elif method == "shin":
        assert r.parameter == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("prices", [[100, -100], [200, -200], [300, -300], [0.25, 0.75], [0.5, 0.25, 0.25]])
@pytest.mark.parametrize("method", DEVIG_METHODS)
def test_exact_no_vig_examples(prices: list[float], method: str) -> None:
    fmt = "prob" if all(p < 1 for p in prices) else "american"
    pi = implied_probabilities(prices, fmt)  # type: ignore[arg-type]
    r = devig(prices, method, fmt=fmt)  # type: ignore[arg-type]
    assert r.probabilities == pytest.approx(pi, abs=1e-15)
    if math.fsum(pi) == 1.0:
        assert r.probabilities == pi  # bit for bit


two_way = st.one_of(
    st.tuples(american, american).map(lambda p: (list(p), "american")),
    st.tuples(probability, probability).map(lambda p: (list(p), "prob")),
)


@given(two_way)
@example(([-110, -110], "american"))
@example(([-100000, 100000], "american"))
@example(([-100000, -100000], "american"))
@settings(max_examples=300, deadline=None)
def test_two_outcome_shin_closed_form_agrees_with_the_solver(market: tuple[list[float], str]) -> None:
    prices, fmt = market
    pi = implied_probabilities(prices, fmt)  # type: ignore[arg-type]
    assume(math.fsum(pi) > 1)
    closed = devig(prices, "shin", fmt=fmt)  # type: ignore[arg-type]
    z, fair = _shin_numeric(pi)
    assert closed.parameter == pytest.approx(z, abs=1e-12)
    assert closed.probabilities == pytest.approx(fair, abs=1e-12)
    # ... and with the additive devig (Shin's two-outcome identity) and mberk/shin's expression for z
    assert closed.probabilities == devig(prices, "additive", fmt=fmt).probabilities  # type: ignore[arg-type]
    s, d = math.fsum(pi), pi[0] - pi[1]
    assert closed.parameter == pytest.approx((s - 1) * (d * d - s) / (s * (d * d - 1)), rel=1e-9, abs=1e-15)
