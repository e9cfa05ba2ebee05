"""The detection rules of SPEC sections 1, 3 and 4, each written once. Pure, stdlib only.

Every path that judges a price or a move takes its constants and decisions from here: the
streaming engine (which binds them into its hot loop), the batch engine (which builds its
polars expressions from the same constants and checks its scalar steps with these functions),
the alert filter the server applies per connection, and the readers.

- price validity: :func:`is_valid_price` (SPEC 1: finite int/float, ``100 <= |A| <= 100000``);
- scales: :func:`to_cents` (``A - 100`` / ``A + 100``) and :func:`to_prob` (implied probability);
- moves: :func:`cents_move` (signed cents, the alert's ``delta``, see :func:`round_delta`) and
  :func:`prob_move` (signed implied-probability points, negative = shortened);
- the threshold: :func:`crosses` (``|move| >= threshold`` with :data:`THRESHOLD_EPSILON`);
- direction: :func:`direction_of` a move, and :func:`direction_accepts` (a direction choice);
- line moves (SPEC 10): :func:`line_side_of` / :func:`outcome_of` (a side without its line),
  :func:`line_points` (the move in points), :func:`line_direction` (by side),
  :func:`key_numbers_crossed`, and :func:`written_line` (how a line is written).

The functions take prices already known to be valid (the engine checks validity first); the
checked public conversions are in :mod:`dropengine.core.odds`.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

__all__ = [
    "DELTA_DECIMALS",
    "DIRECTIONS",
    "EXACT_STEPS",
    "INTEGER_TEXT",
    "MAX_ABS_LINE",
    "MAX_ABS_PRICE",
    "MIN_ABS_PRICE",
    "ROUNDING_MARGIN",
    "PLAIN_NUMBER",
    "THRESHOLD_EPSILON",
    "Direction",
    "DirectionChoice",
    "cents_move",
    "crosses",
    "direction_accepts",
    "direction_of",
    "is_valid_price",
    "key_numbers_crossed",
    "line_direction",
    "line_points",
    "line_side_of",
    "series_line",
    "outcome_of",
    "written_line",
    "number_from_text",
    "prob_move",
    "round_delta",
    "same_price",
    "threshold_floor",
    "to_cents",
    "to_prob",
]

#: SPEC 1: a valid price has ``MIN_ABS_PRICE <= |A| <= MAX_ABS_PRICE``.
MIN_ABS_PRICE: Final = 100
MAX_ABS_PRICE: Final = 100_000

#: SPEC 3 rule 4: tolerance on the threshold comparison, so that a move of exactly
#: ``threshold`` computed in floating point (fractional prices, probability points) is not
#: lost to rounding.
THRESHOLD_EPSILON: Final = 1e-9

#: A fractional ``delta`` is rounded to this many decimals (SPEC 4 leaves the writing open):
#: ``+261.9 -> +251.9`` is ``-10.0``, not ``-9.999999999999972``. The rounding error
#: (at most ``5e-10``) is below :data:`THRESHOLD_EPSILON`, and the threshold is compared on the
#: rounded delta, so an alert's own ``delta`` decides whether it passes a threshold.
DELTA_DECIMALS: Final = 9

#: The most :func:`round_delta` can move a delta (half of ``10**-DELTA_DECIMALS``), rounded up: a
#: raw delta farther than this from a threshold is decided without rounding it (the hot loops
#: round only the moves within it).
ROUNDING_MARGIN: Final = 10.0**-DELTA_DECIMALS

#: SPEC 1: "strings that are not plain numbers" are invalid prices. A plain number, as a regular
#: expression (no anchors; match it whole, after stripping surrounding white space), and the
#: integer literals among them (which stay ints: SPEC 4).
PLAIN_NUMBER: Final = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
INTEGER_TEXT: Final = r"[+-]?[0-9]+"
#: The white space a text cell's number is read between: exactly the characters of ``str.isspace``
#: (what ``str.strip()`` removes), spelt out so the polars reading of a text column
#: (analysis.batch: ``strip_chars(WHITESPACE)``) strips the same set; polars' own default keeps the
#: separators U+001C..U+001F, which Python strips (B25-3). tests pin it to ``str.isspace``.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_PLAIN_RE: Final = re.compile(PLAIN_NUMBER)
_INT_RE: Final = re.compile(INTEGER_TEXT)

Direction = Literal["toward_favorite", "toward_dog"]
DirectionChoice = Literal["both", "toward_favorite", "toward_dog"]
#: The direction choices (SPEC 3 rule 6), ``both`` first (the default).
DIRECTIONS: Final[tuple[DirectionChoice, ...]] = ("both", "toward_favorite", "toward_dog")


def is_valid_price(price: object) -> bool:
    """SPEC 1: a finite int/float with ``100 <= |price| <= 100000`` (bools, text, None are not)."""
    if type(price) is int or type(price) is float:
        return MIN_ABS_PRICE <= abs(price) <= MAX_ABS_PRICE  # NaN compares False
    return False


def number_from_text(text: str) -> int | float | None:
    """The number a text cell holds: an int for an integer literal, a float for another plain
    number, ``None`` when it is no plain number (or not finite)."""
    t = text.strip(WHITESPACE)
    if _INT_RE.fullmatch(t):
        return int(t)
    if _PLAIN_RE.fullmatch(t):
        value = float(t)
        return value if math.isfinite(value) else None
    return None


def to_cents(price: float) -> float:
    """Position of a valid price on the cents scale: ``A - 100`` above even money, ``A + 100``
    below (an int price gives an int)."""
    return price - 100 if price > 0 else price + 100


def to_prob(price: float) -> float:
    """Implied probability of a valid price (vig included): ``100/(A+100)`` or ``|A|/(|A|+100)``."""
    return 100.0 / (price + 100.0) if price > 0 else -price / (100.0 - price)


def same_price(a: float, b: float) -> bool:
    """SPEC 3 rule 2: a repeat (``+100`` and ``-100`` are the same price)."""
    return a == b or (a + b == 0 and (a == 100 or a == -100))


#: A float that is a whole multiple of ``1 / EXACT_STEPS`` (``0.5``, ``0.25``, ... ``1/512``) has at
#: most 9 decimals, so rounding it to :data:`DELTA_DECIMALS` leaves it as it is: the common
#: fractional deltas (half and quarter cents) skip ``round``, which costs far more than this test.
EXACT_STEPS: Final = 512.0


def round_delta(move: float) -> float:
    """The written form of a cents move: an int stays an int (the delta of two integer prices);
    a float is rounded to :data:`DELTA_DECIMALS` decimals (and stays a float)."""
    if type(move) is float and not (move * EXACT_STEPS).is_integer():
        return round(move, DELTA_DECIMALS)
    return move


def cents_move(prev: float, new: float) -> float:
    """The alert's ``delta``: ``c(new) - c(prev)`` in signed cents, written by :func:`round_delta`."""
    return round_delta(to_cents(new) - to_cents(prev))


def prob_move(prev: float, new: float) -> float:
    """Signed move in implied-probability points (``2.0`` = 2 percentage points); negative
    when the price shortened, as a cents move is. Not rounded (it is never written out)."""
    return (to_prob(new) - to_prob(prev)) * -100.0


def threshold_floor(threshold: float) -> float:
    """The smallest ``|move|`` that crosses ``threshold`` (the tolerance taken off once, so a
    hot loop can compare against a bound it computed before the loop)."""
    return threshold - THRESHOLD_EPSILON


def crosses(move: float, threshold: float) -> bool:
    """SPEC 3 rule 4: whether ``|move| >= threshold``, within :data:`THRESHOLD_EPSILON`."""
    floor = threshold_floor(threshold)
    return move >= floor or -move >= floor


def direction_of(move: float) -> Direction | None:
    """SPEC 1: ``toward_favorite`` for a shortening (negative) move, ``toward_dog`` for a
    drift; ``None`` for no move."""
    if move < 0:
        return "toward_favorite"
    if move > 0:
        return "toward_dog"
    return None


def direction_accepts(choice: str, direction: str) -> bool:
    """SPEC 3 rule 6: whether an alert of ``direction`` passes the choice ``choice``."""
    return choice == "both" or direction == choice


# -- line moves (SPEC 10) ------------------------------------------------------------------

#: SPEC 10 says a line is a finite number; a line series also needs it to be one that every
#: writer can hold (msgpack, JSON, an Int64 column) and whose moves stay finite. No market's line
#: comes near a million points, so a line beyond it observes no line series (its price still counts).
MAX_ABS_LINE: Final = 1_000_000


def series_line(side: str) -> float | None:
    """SPEC 10: the line a quote of ``side`` observes on its line series: the line its side
    string spells (``spread_home@-3.5`` -> ``-3.5``; the side is the key, so a ``line`` field
    that disagrees with it, or is missing, does not matter). ``None``, no line series, for a
    side without a line (h2h) and for a line beyond :data:`MAX_ABS_LINE`."""
    at = side.rfind("@")
    if at < 0:
        return None
    try:
        line = float(side[at + 1 :])
    except ValueError:
        return None
    return line if -MAX_ABS_LINE <= line <= MAX_ABS_LINE else None


def line_side_of(side: str) -> str:
    """SPEC 10: the line series a side observes, the side without its ``@{line}`` suffix
    (``spread_home@-3`` -> ``spread_home``; a prop's player may hold ``@``, so the suffix is the
    last one). A side without a line is returned unchanged."""
    at = side.rfind("@")
    return side if at < 0 else side[:at]


#: SPEC 11: the outcome of a side (its market side without a line) is its line series' name.
outcome_of = line_side_of


def written_line(value: float) -> int | float:
    """A line (or points, or a key number) as it is written (SPEC 2's spelling): an integral
    value as an int (``-3``), any other as a float rounded to :data:`DELTA_DECIMALS` decimals."""
    if type(value) is int:
        return value
    if value.is_integer():
        return int(value)
    return round(value, DELTA_DECIMALS)


def line_points(prev: float, new: float) -> int | float:
    """SPEC 10: ``points = new_line - prev_line``, written by :func:`written_line` (the
    threshold is compared on this written value, as a price move's ``delta`` is)."""
    return written_line(new - prev)


def line_direction(line_side: str, points: float) -> Direction | None:
    """SPEC 10: ``toward_favorite`` when the side became dearer to back, its line moved against
    it: down for spread and under sides, up for over sides; ``None`` for no move."""
    if points == 0:
        return None
    shortened = points > 0 if line_side.endswith("over") else points < 0
    return "toward_favorite" if shortened else "toward_dog"


def key_numbers_crossed(prev: float, new: float, numbers: tuple[float, ...]) -> tuple[int | float, ...]:
    """SPEC 10: every configured ``k > 0`` with ``k`` or ``-k`` in the closed interval between
    ``prev`` and ``new`` (a move starting or ending on one lists it), ascending, each written
    by :func:`written_line`."""
    lo, hi = (prev, new) if prev <= new else (new, prev)
    return tuple(written_line(k) for k in sorted(numbers) if k > 0 and (lo <= k <= hi or lo <= -k <= hi))
