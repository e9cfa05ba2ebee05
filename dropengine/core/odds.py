"""Checked price conversions on American odds (SPEC section 1): the public helpers.

The rules themselves (validity, the cents scale ``c(A) = A - 100`` / ``A + 100`` that makes
American odds continuous across even money, implied probability, direction) live in
:mod:`.rules`; these functions check their arguments (ConfigError naming the value) and call
them. The devig of a market (SPEC section 9) is in :mod:`dropengine.analysis.devig`.
"""

from __future__ import annotations

import math
import numbers

from . import rules
from .errors import ConfigError
from .rules import MAX_ABS_PRICE, MIN_ABS_PRICE, Direction, is_valid_price

__all__ = [
    "MAX_ABS_PRICE",
    "MIN_ABS_PRICE",
    "Direction",
    "american_to_decimal",
    "american_to_prob",
    "as_real",
    "cents",
    "check_price",
    "decimal_to_american",
    "delta",
    "direction_of",
    "is_valid_price",
    "prob_to_american",
]


def _number(value: object, name: str) -> float:
    """``value`` as a number: int and float as they are, any other real (numpy scalars,
    Fraction) as a float, as :func:`devig` reads prices; anything else (bools, text, None, an
    int too large for a float) is a ConfigError naming ``name``."""
    if type(value) is float:
        return value
    x = as_real(value)
    if x is not None and type(value) is int:
        return value  # ints stay ints (cents of an int price is an int), once known to fit a float
    if x is None:
        raise ConfigError(f"{name}: {str(value)[:40]!r} is not a number")
    return x


def check_price(price: object, name: str = "price") -> float:
    """``price`` as a number if it is a valid American price (SPEC 1), else a ConfigError
    naming ``name`` and the value: the one checker of every public price argument."""
    p = _number(price, name)
    if not is_valid_price(p):
        raise ConfigError(
            f"{name}: {str(price)[:40]} is not a valid American price"
            f" (need {MIN_ABS_PRICE} <= |A| <= {MAX_ABS_PRICE})"
        )
    return p


def cents(price: float) -> float:
    """Position of ``price`` on the cents scale: ``A - 100`` above even money, ``A + 100`` below."""
    return rules.to_cents(check_price(price))


def delta(prev: float, new: float) -> float:
    """Signed move in cents from ``prev`` to ``new``; negative means the price shortened.

    The exact difference; an alert writes it rounded (:func:`.rules.cents_move`)."""
    return cents(new) - cents(prev)


def direction_of(move: float) -> Direction | None:
    """``toward_favorite`` for a shortening (negative) move, ``toward_dog`` for a drift."""
    return rules.direction_of(_number(move, "move"))


def american_to_prob(price: float) -> float:
    """Implied probability (vig included): ``100/(A+100)`` or ``|A|/(|A|+100)``."""
    return rules.to_prob(check_price(price))


def american_to_decimal(price: float) -> float:
    """Decimal odds: ``1 + A/100`` for ``A >= 100``, ``1 + 100/|A|`` for ``A <= -100``."""
    p = check_price(price)
    return 1.0 + p / 100.0 if p > 0 else 1.0 - 100.0 / p


def decimal_to_american(decimal_odds: float) -> float:
    """American odds for decimal odds ``> 1``; 2.0 maps to ``+100``.

    The result is a float (fractional American prices are valid); round it if the caller
    wants the integer ladder books quote.
    """
    d = float(_number(decimal_odds, "decimal_odds"))
    if not math.isfinite(d) or d <= 1.0:
        raise ConfigError(f"decimal_odds: {decimal_odds!r} must be a finite number above 1")
    a = (d - 1.0) * 100.0 if d >= 2.0 else -100.0 / (d - 1.0)
    # 4.9 would give 390.00000000000006 and 7.2 719.9999999999999: alerts would print that noise.
    # Nine decimals keep every fractional price (1.91 -> -109.890109890) well inside the 1e-9
    # tolerance the threshold test already allows.
    a = round(a, 9)
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
    q = float(_number(prob, "prob"))
    if not (0.0 < q < 1.0):
        raise ConfigError(f"prob: {prob!r} must be strictly between 0 and 1")
    return decimal_to_american(1.0 / q)


def as_real(value: object) -> float | None:
    """``value`` as a float when it is a real number (int, float, numpy scalar, Fraction; not a
    bool), else ``None`` (also for an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except (OverflowError, ValueError, TypeError):
        return None

