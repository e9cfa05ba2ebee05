"""Price math on American odds (SPEC section 1): validity, the cents scale, conversions.

The cents scale ``c(A) = A - 100`` for ``A >= 100`` and ``A + 100`` for ``A <= -100`` makes
American odds continuous across even money, so ``+105 -> -105`` is a 10-cent move, not 210.
Everything here is pure and works on plain floats/ints so the hot loops can inline it.
"""

from __future__ import annotations

import math
from typing import Final, Literal

from .errors import ConfigError

__all__ = [
    "MAX_ABS_PRICE",
    "MIN_ABS_PRICE",
    "Direction",
    "american_to_decimal",
    "american_to_prob",
    "cents",
    "decimal_to_american",
    "delta",
    "direction_of",
    "is_valid_price",
    "prob_to_american",
]

MIN_ABS_PRICE: Final = 100
MAX_ABS_PRICE: Final = 100_000

Direction = Literal["toward_favorite", "toward_dog"]


def is_valid_price(price: object) -> bool:
    """True for a finite int/float with ``100 <= |price| <= 100000`` (bools are not prices)."""
    if type(price) is int or type(price) is float:
        return MIN_ABS_PRICE <= abs(price) <= MAX_ABS_PRICE  # NaN compares False
    return False


def _require(price: float) -> float:
    if not is_valid_price(price):
        raise ConfigError(f"price: {price!r} is not a valid American price (need 100 <= |A| <= 100000)")
    return price


def cents(price: float) -> float:
    """Position of ``price`` on the cents scale: ``A - 100`` above even money, ``A + 100`` below."""
    p = _require(price)
    return p - 100 if p > 0 else p + 100


def delta(prev: float, new: float) -> float:
    """Signed move in cents from ``prev`` to ``new``; negative means the price shortened."""
    return cents(new) - cents(prev)


def direction_of(move: float) -> Direction | None:
    """``toward_favorite`` for a shortening (negative) move, ``toward_dog`` for a drift."""
    if move < 0:
        return "toward_favorite"
    if move > 0:
        return "toward_dog"
    return None


def american_to_prob(price: float) -> float:
    """Implied probability (vig included): ``100/(A+100)`` or ``|A|/(|A|+100)``."""
    p = _require(price)
    return 100.0 / (p + 100.0) if p > 0 else -p / (100.0 - p)


def american_to_decimal(price: float) -> float:
    """Decimal odds: ``1 + A/100`` for ``A >= 100``, ``1 + 100/|A|`` for ``A <= -100``."""
    p = _require(price)
    return 1.0 + p / 100.0 if p > 0 else 1.0 - 100.0 / p


def decimal_to_american(decimal_odds: float) -> float:
    """American odds for decimal odds ``> 1``; 2.0 maps to ``+100``.

    The result is a float (fractional American prices are valid); round it if the caller
    wants the integer ladder books quote.
    """
    d = float(decimal_odds)
    if not math.isfinite(d) or d <= 1.0:
        raise ConfigError(f"decimal_odds: {decimal_odds!r} must be a finite number above 1")
    a = (d - 1.0) * 100.0 if d >= 2.0 else -100.0 / (d - 1.0)
    # Floating point can land a hair outside the valid range at its ends (-100000 comes
    # back as -100000.00000001): snap values within a relative 1e-9 of a bound onto it.
    for bound in (MIN_ABS_PRICE, MAX_ABS_PRICE):
        if abs(abs(a) - bound) <= bound * 1e-9:
            a = math.copysign(bound, a)
    if not is_valid_price(a):
        raise ConfigError(f"decimal_odds: {decimal_odds!r} maps outside the valid American range")
    return a


def prob_to_american(prob: float) -> float:
    """American odds whose implied probability is ``prob`` (``0 < prob < 1``)."""
    q = float(prob)
    if not (0.0 < q < 1.0):
        raise ConfigError(f"prob: {prob!r} must be strictly between 0 and 1")
    return decimal_to_american(1.0 / q)
