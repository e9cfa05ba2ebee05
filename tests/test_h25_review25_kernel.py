"""review25 (session 18): the compiled pass's columns are checked before a pass that checks no bounds.

``fast.kernel.detect_pass`` checks its per-row columns to be one length, since the compiled pass reads
them unchecked (numba's default). Held: whenever the pass reads ``kid`` per row, a ``kid`` that is not
per row is a ConfigError, never a read past its end. R25-1: with an infinite ``thr`` (the line series
alone) and ``line_values`` the pass writes each line move's key from ``kid[row]``, while the check takes a
one-entry ``kid`` there (as the docstring said: "kid is not read"); fixed by batch18's 801e7d7.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from dropengine.core.errors import ConfigError

from .conftest import require_fast

N = 16  # (a few line moves: what the pass would read past a one-entry kid stays small)


def _line_pass(kid: Any, nkeys: int) -> Any:
    """The line series alone (infinite ``thr``), not by key, with the line moves' values."""
    from dropengine.fast import kernel

    lid = (np.arange(N) % 2).astype(np.int32)
    line = np.where(np.arange(N) % 4 < 2, 1.5, 2.5)  # (each series changes line every other row)
    f = np.zeros(N, np.bool_)
    columns = ([np.arange(N, dtype=np.int64)], [np.full(N, 100.0)], f, f, f, line)
    return kernel.detect_pass(kid, nkeys, lid, 2, *columns, True, False, False, math.inf, 0.5,
                              line_by_key=False, price_values=False, line_values=True)  # fmt: skip


# R25-1 (a strict xfail until batch18's 801e7d7): line_values with an infinite thr read kid per row, unchecked
def test_line_values_without_per_row_kid_is_refused() -> None:
    require_fast()
    with pytest.raises(ConfigError, match="lengths"):
        _line_pass(np.zeros(1, np.int32), 1)


def test_line_values_with_per_row_kid_name_each_moves_key() -> None:
    """The same call with ``kid`` per row: the line moves' keys are ``kid`` at their rows (the gather)."""
    require_fast()
    kid = (np.arange(N) % 3).astype(np.int32)
    m = _line_pass(kid, 3)
    assert len(m.lmoves) > 0
    np.testing.assert_array_equal(m.lkey, kid[m.lmoves.astype(np.int64)])
