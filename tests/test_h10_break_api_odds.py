"""Issue 10 (api-breaker): the odds helpers take what ``devig`` takes, and refuse the rest alike.

``devig`` already read any real number (numpy scalars included) and raised ConfigError naming
the argument for anything else; the one-price helpers raised TypeError, ValueError or
OverflowError, read ``"110"`` and ``True`` as numbers, and refused ``numpy.float64(-110)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dropengine import ConfigError
from dropengine.analysis.devig import devig
from dropengine.core import odds

np = pytest.importorskip("numpy")

ONE_PRICE: list[tuple[Callable[[Any], Any], str]] = [
    (odds.cents, "price"),
    (odds.american_to_prob, "price"),
    (odds.american_to_decimal, "price"),
    (odds.decimal_to_american, "decimal_odds"),
    (odds.prob_to_american, "prob"),
    (odds.direction_of, "move"),
]


@pytest.mark.parametrize(("fn", "name"), ONE_PRICE)
@pytest.mark.parametrize("bad", [None, "110", "ab", [1, 2], True, 10**400, b"1"])
def test_a_value_that_is_no_number_is_a_config_error_naming_the_argument(
    fn: Callable[[Any], Any], name: str, bad: object
) -> None:
    with pytest.raises(ConfigError, match=name):
        fn(bad)


def test_numpy_scalars_are_numbers_as_in_devig() -> None:
    assert odds.american_to_prob(np.float64(-110)) == odds.american_to_prob(-110)
    assert odds.american_to_decimal(np.int64(150)) == 2.5
    assert odds.cents(np.float32(-120)) == -20
    assert odds.delta(np.int64(-110), np.int64(-120)) == -10
    assert odds.decimal_to_american(np.float64(2.5)) == 150
    assert odds.prob_to_american(np.float64(0.5)) == 100
    assert odds.direction_of(np.float64(-3)) == "toward_favorite"
    assert devig([np.float64(-110), np.int64(-110)]).probabilities == (0.5, 0.5)
