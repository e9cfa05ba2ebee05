"""Devig: the fair probabilities of a market of two or more outcomes (SPEC section 9).

Moved here from ``dropengine.core.odds`` (issue 11): it is analysis (closing-line value, the
backtest), not a detection rule. Pure; prices are read with the checked helpers of
:mod:`dropengine.core.odds`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ..core.errors import ConfigError
from ..core.odds import american_to_prob, as_real, check_price

__all__ = [
    "DEVIG_METHODS",
    "PRICE_FORMATS",
    "DevigMethod",
    "Devigged",
    "PriceFormat",
    "devig",
    "implied_probabilities",
    "overround",
]

# --------------------------------------------------------------------------------------
# devig (SPEC section 9)
# --------------------------------------------------------------------------------------
#
# Notation: a market has n outcomes with implied probabilities pi_i (vig included; from
# American odds as in SPEC 1, from decimal odds as 1/d), their sum S = sum(pi_i) (the
# "booksum"), and the overround (margin) S - 1. Some sources call S itself the overround
# (1.048 for -110/-110); here ``overround`` is always S - 1 (0.0476 for -110/-110), and the
# bookmaker's hold is 1 - 1/S.
#
# multiplicative  p_i = pi_i / S                       (basic normalisation)
# additive        p_i = pi_i - (S - 1) / n             (equal share of the margin)
# power           p_i = pi_i ** k, with k solving sum(pi_i ** k) = 1
# shin            p_i = (sqrt(z^2 + 4 (1 - z) pi_i^2 / S) - z) / (2 (1 - z)),
#                 with z (the share of insider money) solving sum(p_i) = 1
#
# Shin: H. S. Shin, "Prices of state contingent claims with insider traders, and the
# favourite-longshot bias", Economic Journal 102 (1992) 426-435, and "Measuring the incidence
# of insider trading in a market for state-contingent claims", Economic Journal 103 (1993)
# 1141-1153. The formula above is Shin's model in the form implemented by the ``shin`` package
# (github.com/mberk/shin, python/shin/__init__.py), whose published 3-way test vector this
# reproduces at its tolerance (rel 1e-6), and its README's full output to about 1e-12.
#
# Two outcomes have a closed form. Inverting the formula gives pi_i^2 = S (z p_i + (1 - z) p_i^2);
# subtracting the two outcomes' equations and using p_1 + p_2 = 1 gives p_1 - p_2 = pi_1 - pi_2,
# so the Shin probabilities are the additive ones, p_i = pi_i - (S - 1)/2 (for any z), and
#     z = (pi_1^2 / S - p_1^2) / (p_1 p_2) = (S - 1)(S - D^2) / (S (1 - D^2)),  D = pi_1 - pi_2
# (mberk/shin's two-outcome expression, with numerator and denominator negated). Three or more outcomes
# solve for z in [0, 1] with a bracketed root finder: sum(p_i(z)) - 1 is sqrt(S) - 1 > 0 at
# z = 0 and sum(pi_i^2)/S - 1 < 0 at z = 1, where p_i(1) = pi_i^2 / S is the limit.
#
# Power: sum(pi_i ** k) is strictly decreasing in k (every pi_i < 1) from n at k = 0 to 0, so
# the root is unique: k > 1 for an overround, k < 1 for an underround, k = 1 for no vig.
#
# Markets a method cannot apply to raise ConfigError naming ``prices``: ``additive`` when an
# outcome's implied probability is at most its share of the margin (it would get a zero or
# negative fair probability: long shots in a high-margin book), and ``shin`` on an underround
# (S < 1 would need a negative share of insiders, which the model does not allow; a sum within
# 1e-12 below 1 counts as no vig: z = 0 and the implied probabilities normalised). ``power``
# and ``multiplicative`` accept underround markets (arbitrage across books).
#
# Inputs: a sequence of two or more prices, each a real number (bool excluded; numpy scalars
# are fine): American prices valid by SPEC 1, decimal odds finite and above 1, or probabilities
# strictly between 0 and 1. Outputs are rounded only by floating point: fair probabilities sum
# to 1 within a few units in the last place (power and shin end with a normalisation that
# removes the root finder's residual, itself below 1e-15), and an outcome priced at least as
# short as another never gets a smaller fair probability. Power and shin shrink long shots
# (to pi^k, about pi^2 / (S z)): in extreme markets (a +100000 shot beside two -100000
# favourites, k = 693) that can underflow to 0.0.

DevigMethod = Literal["multiplicative", "additive", "power", "shin"]
PriceFormat = Literal["american", "decimal", "prob"]

DEVIG_METHODS: Final[tuple[DevigMethod, ...]] = ("multiplicative", "additive", "power", "shin")
PRICE_FORMATS: Final[tuple[PriceFormat, ...]] = ("american", "decimal", "prob")

#: A booksum this close below 1 is no vig, not an underround (shin).
_NO_VIG_TOL: Final = 1e-12


@dataclass(frozen=True, slots=True)
class Devigged:
    """Fair probabilities of a market, in the order of its prices.

    ``overround`` is ``sum(implied) - 1`` (negative for an underround); ``parameter`` is
    Shin's ``z`` for ``shin``, the exponent ``k`` for ``power``, None otherwise.
    """

    probabilities: tuple[float, ...]
    overround: float
    method: str
    parameter: float | None


def _implied_one(value: object, fmt: str, where: str) -> float:
    x = as_real(value)
    if fmt == "american":
        return american_to_prob(check_price(value, where))
    if fmt == "decimal":
        if x is None or not math.isfinite(x) or x <= 1.0:
            raise ConfigError(f"{where}: {value!r} is not valid decimal odds (need a finite number above 1)")
        return 1.0 / x
    if x is None or not (0.0 < x < 1.0):
        raise ConfigError(f"{where}: {value!r} is not a valid probability (need 0 < p < 1)")
    return x


def _implied(prices: object, fmt: object) -> tuple[float, ...]:
    if not isinstance(fmt, str) or fmt not in PRICE_FORMATS:
        raise ConfigError(f"fmt: {fmt!r} is not one of {', '.join(map(repr, PRICE_FORMATS))}")
    if isinstance(prices, str | bytes | bytearray | Mapping) or not isinstance(prices, Iterable):
        raise ConfigError(f"prices: {prices!r} is not a sequence of prices")
    items = tuple(prices)
    n = len(items)
    if n < 2:
        raise ConfigError(f"prices: a market of at least 2 outcomes is needed, got {n}")
    return tuple(_implied_one(v, fmt, f"prices[{i}]") for i, v in enumerate(items))


def implied_probabilities(prices: Iterable[float], fmt: PriceFormat = "american") -> tuple[float, ...]:
    """Implied probabilities (vig included) of a market's prices, in order.

    ``fmt`` says what ``prices`` are: ``american`` odds (SPEC 1), ``decimal`` odds (``1/d``)
    or already probabilities (``prob``, returned as floats). At least two outcomes.
    """
    return _implied(prices, fmt)


def overround(prices: Iterable[float], fmt: PriceFormat = "american") -> float:
    """The market's margin ``sum(implied) - 1``: ``0.0476`` for ``-110/-110``, negative when underround."""
    return math.fsum(_implied(prices, fmt)) - 1.0


def _brentq(f: Callable[[float], float], a: float, b: float, *, maxiter: int = 200) -> float:
    """Root of ``f`` in ``[a, b]`` where ``f(a)`` and ``f(b)`` differ in sign (Brent 1973).

    Inverse quadratic interpolation or secant steps, falling back to bisection whenever a step
    would not shrink the bracket fast enough, so it converges wherever bisection does; the
    bracket is narrowed to ``4e-16 + 4 eps |x|``.
    """
    xtol, rtol = 4e-16, 4 * 2.220446049250313e-16
    xpre, xcur = a, b
    fpre, fcur = f(xpre), f(xcur)
    if fpre == 0.0:
        return xpre
    if fcur == 0.0:
        return xcur
    if (fpre > 0.0) == (fcur > 0.0):
        raise ArithmeticError(f"root not bracketed: f({a!r}) = {fpre!r}, f({b!r}) = {fcur!r}")
    xblk = fblk = spre = scur = 0.0
    for _ in range(maxiter):
        if fpre != 0.0 and fcur != 0.0 and (fpre > 0.0) != (fcur > 0.0):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):  # keep xcur the best estimate
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        tol = (xtol + rtol * abs(xcur)) / 2.0
        sbis = (xblk - xcur) / 2.0
        if fcur == 0.0 or abs(sbis) < tol:
            return xcur
        if abs(spre) > tol and abs(fcur) < abs(fpre):
            if xpre == xblk:  # secant
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # inverse quadratic interpolation
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2.0 * abs(stry) < min(abs(spre), 3.0 * abs(sbis) - tol):
                spre, scur = scur, stry
            else:
                spre = scur = sbis
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > tol else math.copysign(tol, sbis)
        fcur = f(xcur)
    raise ArithmeticError(f"no convergence in {maxiter} iterations on [{a!r}, {b!r}]")


def _normalised(values: Sequence[float]) -> tuple[float, ...]:
    total = math.fsum(values)
    return tuple(v / total for v in values)


def _power(pi: tuple[float, ...], margin: float) -> tuple[float, tuple[float, ...]]:
    """Exponent ``k`` with ``sum(pi_i ** k) = 1`` and the probabilities ``pi_i ** k``."""
    if margin == 0.0:
        return 1.0, pi

    def g(k: float) -> float:
        return math.fsum(p**k for p in pi) - 1.0

    if margin < 0.0:
        lo, hi = 0.0, 1.0  # g(0) = n - 1 > 0, g(1) = margin < 0
    else:
        lo, hi = 1.0, 2.0  # g(1) = margin > 0; double hi until g(hi) < 0 (max(pi) < 1, so it ends)
        while g(hi) > 0.0:
            lo, hi = hi, hi * 2.0
            if hi > 1e300:
                raise ArithmeticError("power: no exponent bracket")
    k = _brentq(g, lo, hi)
    return k, _normalised([p**k for p in pi])


def _shin_p(p: float, z: float, s: float) -> float:
    """Shin's fair probability of an outcome with implied probability ``p`` at insider share ``z``.

    ``(sqrt(z^2 + c) - z) / (2 (1 - z))`` with ``c = 4 (1 - z) p^2 / s`` is evaluated as
    ``p * 2 / (s (sqrt(w^2 + b) + w))`` with ``w = z / p`` and ``b = 4 (1 - z) / s`` (multiply
    by ``sqrt(z^2 + c) + z`` and divide by ``p``): no cancellation for long shots, ``p^2 / s`` at
    ``z = 1`` without a division by zero, and every step is monotone in ``p``, so rounding can
    never reverse the order of two outcomes (the textbook form can, by an ulp, for near ties).
    """
    w = z / p
    b = 4.0 * (1.0 - z) / s
    root = w if w > 1e150 else math.sqrt(w * w + b)  # beyond 1e150, b is far below w's last digit
    return p * (2.0 / (s * (root + w)))


def _shin_numeric(pi: Sequence[float]) -> tuple[float, tuple[float, ...]]:
    """Shin's ``z`` and probabilities for any ``n >= 2`` outcomes of an overround market, by Brent's method."""
    s = math.fsum(pi)

    def f(z: float) -> float:
        return math.fsum(_shin_p(p, z, s) for p in pi) - 1.0

    z = _brentq(f, 0.0, 1.0)
    return z, _normalised([_shin_p(p, z, s) for p in pi])


def _shin_two(pi: tuple[float, ...], s: float) -> tuple[float, tuple[float, ...]]:
    """Closed form for two outcomes: the additive probabilities and ``z = (S-1)(S-D^2) / (S (1-D^2))``."""
    margin = s - 1.0
    d2 = (pi[0] - pi[1]) ** 2
    z = margin * (s - d2) / (s * (1.0 - d2))
    return z, tuple(p - margin / 2.0 for p in pi)


def devig(
    prices: Iterable[float], method: DevigMethod = "multiplicative", *, fmt: PriceFormat = "american"
) -> Devigged:
    """Fair (no-vig) probabilities of a market of two or more outcomes (a moneyline, a line's two
    sides, an exchange market's runners), in the order of ``prices``.

    ``prices`` are American odds, or decimal odds with ``fmt="decimal"``, or implied
    probabilities with ``fmt="prob"``. ``method`` is ``multiplicative`` (default),
    ``additive``, ``power`` or ``shin``; the formulas, and the markets each method refuses,
    are described in the comment above. Raises :class:`ConfigError` naming the argument
    (``prices``, ``prices[i]``, ``method`` or ``fmt``) for anything it cannot devig.

    >>> devig([-110, -110]).probabilities
    (0.5, 0.5)
    """
    if not isinstance(method, str) or method not in DEVIG_METHODS:
        raise ConfigError(f"method: {method!r} is not one of {', '.join(map(repr, DEVIG_METHODS))}")
    pi = _implied(prices, fmt)
    s = math.fsum(pi)
    margin = s - 1.0
    parameter: float | None = None
    if method == "multiplicative":
        probs = tuple(p / s for p in pi)
    elif method == "additive":
        share = margin / len(pi)
        probs = tuple(p - share for p in pi)
        for i, (p, q) in enumerate(zip(pi, probs, strict=True)):
            if q <= 0.0:
                raise ConfigError(
                    f"prices: additive devig gives outcome {i} a fair probability of {q!r} (implied {p!r} "
                    f"minus its share {share!r} of the margin); use 'multiplicative', 'power' or 'shin'"
                )
    elif method == "power":
        try:
            parameter, probs = _power(pi, margin)
        except ArithmeticError as exc:  # not expected: the bracket is proven above
            raise ConfigError(f"prices: power devig failed for {pi!r}: {exc}") from exc
    else:
        if margin < -_NO_VIG_TOL:
            raise ConfigError(
                f"prices: shin needs a market with an overround, this one sums to {s!r} < 1 "
                "(use 'multiplicative' or 'power' for an underround)"
            )
        if margin <= 0.0:
            parameter, probs = 0.0, tuple(p / s for p in pi)
        elif len(pi) == 2:
            parameter, probs = _shin_two(pi, s)
        else:
            try:
                parameter, probs = _shin_numeric(pi)
            except ArithmeticError as exc:  # not expected: the bracket is proven above
                raise ConfigError(f"prices: shin devig failed for {pi!r}: {exc}") from exc
    return Devigged(probabilities=probs, overround=margin, method=method, parameter=parameter)
