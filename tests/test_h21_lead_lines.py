"""A line's text is the text of the value a quote holds (break21's F3): ``Quote`` keeps a line
as a float, so an int line past 2**53 is spelt as that float by every decoder (vendor frames,
The Odds API, the fused path) as by ``Quote``, ``parse_side`` and the batch engine; before, the
frame decoders spelt it exactly and the stream and batch engines keyed two lines as one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError
from dropengine.core.sides import format_line


@given(st.one_of(st.integers(-(2**70), 2**70), st.integers(-(2**1030), 2**1030)))
def test_an_int_line_is_spelt_as_the_float_a_quote_holds(n: int) -> None:
    try:
        value = float(n)
    except OverflowError:
        with pytest.raises(ConfigError, match=r"line: .* is not finite"):
            format_line(n)
        return
    assert format_line(n) == format_line(value)
    assert float(format_line(n)) == value


def test_lines_about_2_53() -> None:
    assert format_line(2**53) == "9007199254740992"
    assert format_line(2**53 + 1) == "9007199254740992"  # the float it becomes
    assert format_line(-(2**53) - 1) == "-9007199254740992"
    assert format_line(3) == format_line(3.0) == "3"
    with pytest.raises(ConfigError, match="not finite"):
        format_line(2**1100)
