"""The kernel's rounding of a written delta or points move (``fast.kernel.round_decimals``) is
Python's ``round(x, 9)`` bit for bit for every finite double: also between 4e6 and 2**23, where
it returned ``x`` unrounded before (4000000.0009765625: ``round`` gives 4000000.000976562), and
from 2**23 on, where a double is its own rounding."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from .conftest import require_fast

#: doubles 2**-30 apart (below 2**23 the grid is finer than 1e-9): integers over 2**30
_FINE = st.integers(-(2**53) + 1, 2**53 - 1).map(lambda m: m / 2**30)


def _same(got: float, want: float) -> bool:
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.floats(allow_nan=False, allow_infinity=False)
    | _FINE
    | st.floats(min_value=3.9e6, max_value=2.0**24, allow_nan=False)
)
@example(4000000.0009765625)
@example(-4000000.0009765625)
@example(float(2**23))
@example(math.nextafter(float(2**23), 0.0))
@example(math.nextafter(float(2**23), math.inf))
@example(8388607.999999999)
@example(4503599.627370496)  # x * 10**9 at 2**52: the product's spacing becomes 1
def test_round_decimals_is_round_for_every_finite_double(x: float) -> None:
    require_fast()
    from dropengine.fast import kernel

    assert _same(kernel.round_decimals(x), round(x, 9))


@pytest.mark.parametrize("x", [4000000.0009765625, 5000000.0000000065, 8388607.0000000065, -6000000.0000000065])
def test_round_decimals_rounds_between_4e6_and_2_23(x: float) -> None:
    """The range the kernel used to leave unrounded: ``round`` moves these, and so does the kernel."""
    require_fast()
    from dropengine.fast import kernel

    want = round(x, 9)
    assert want != x
    assert _same(kernel.round_decimals(x), want)
