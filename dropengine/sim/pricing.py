"""How a book turns a fair probability into a quoted price: overround, shading, ladders.

Pure arithmetic shared by the game and prop quotes of :mod:`dropengine.sim.market`.
"""

from __future__ import annotations

import math

from ..core.odds import prob_to_american
from ..core.rules import MAX_ABS_PRICE, MIN_ABS_PRICE
from .profiles import Ladder

__all__ = ["clamp_p", "half", "logit", "price_on_ladder", "round_to_ladder", "sigmoid", "two_way_probs"]


def round_to_ladder(price: float, ladder: Ladder) -> int:
    """The nearest price on ``ladder`` (``-103.4`` on the 5-cent ladder is ``-105``).

    Even money comes out as ``+100``; the result is always a valid American price.
    """
    magnitude = abs(price)
    step = ladder[-1][1]
    for limit, band_step in ladder:
        if magnitude < limit:
            step = band_step
            break
    rounded = min(MAX_ABS_PRICE, max(MIN_ABS_PRICE, round(magnitude / step) * step))
    if rounded == 100:
        return 100
    return rounded if price > 0 else -rounded


def two_way_probs(p: float, overround: float) -> tuple[float, float]:
    """Implied probabilities of a two-way market with fair probability ``p`` and a given overround.

    Both sides are shifted by the same amount in log-odds, so the two implied probabilities
    sum to ``1 + overround`` and each stays below 1 however lopsided the market (the
    favourite-longshot shading books apply). Closed form of
    ``sigmoid(x + s) + sigmoid(-x + s) = 1 + v`` with ``x = logit(p)``.
    """
    a = p / (1.0 - p)
    v = overround
    b = a * a + 1.0
    u = (v * b + math.sqrt(v * v * b * b + 4.0 * a * a * (1.0 - v) * (1.0 + v))) / (2.0 * a * (1.0 - v))
    return u * a / (1.0 + u * a), u / (a + u)


def price_on_ladder(q: float, ladder: Ladder) -> int:
    """The American price of implied probability ``q`` (kept within 1%-99%) on ``ladder``."""
    return round_to_ladder(prob_to_american(min(0.99, max(0.01, q))), ladder)


def logit(p: float) -> float:
    """Log-odds of ``p``: books shade prices by adding to it."""
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    """Probability of log-odds ``x`` (the inverse of :func:`logit`)."""
    return 1.0 / (1.0 + math.exp(-x))


def clamp_p(p: float, lo: float = 0.005) -> float:
    """``p`` kept ``lo`` away from 0 and 1, where log-odds and prices blow up."""
    return min(1.0 - lo, max(lo, p))


def half(x: float, step: float = 0.5) -> float:
    """``x`` rounded to the nearest half point: the lines books hang."""
    return round(x / step) * step

