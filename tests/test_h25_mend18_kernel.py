"""mend18 (session 18), R25-7: fast.kernel.detect_pass's length error names each column it
checked with its length, and the rows it wanted (it named none)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropengine.core.errors import ConfigError

from .conftest import require_fast


@pytest.mark.parametrize(
    ("short", "thr", "nseries"),
    [("lu", 10.0, 0), ("price", 10.0, 0), ("invalid", 10.0, 0), ("line_only", 10.0, 0), ("kid", 10.0, 0),
     ("lid", math.inf, 2)],
)  # fmt: skip
def test_a_column_of_another_length_is_named_with_its_length(short: str, thr: float, nseries: int) -> None:
    require_fast()
    from dropengine.fast import kernel

    n = 4

    def col(name: str, dtype: type) -> np.ndarray:  # type: ignore[type-arg]
        return np.zeros(n - 1 if name == short else n, dtype)

    with pytest.raises(ConfigError) as err:
        kernel.detect_pass(
            col("kid", np.int32), 1, col("lid", np.int32), nseries, [col("lu", np.int64)], [col("price", np.float64)],
            np.zeros(n, np.bool_), col("invalid", np.bool_), col("line_only", np.bool_), np.zeros(n), True, False,
            False, thr, 0.5, line_by_key=False,
        )  # fmt: skip
    text = str(err.value)
    assert f"{short} {n - 1}" in text
    assert f"null {n}" in text and f"null's {n}" in text
    # every other checked column is named with its length too
    for other in ("lu", "price", "invalid", "line_only"):
        if other != short:
            assert f"{other} {n}" in text
