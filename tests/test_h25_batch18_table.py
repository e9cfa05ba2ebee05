"""Issue 14 (session 18, batch18): ``analysis.batch._columns_table`` never writes a part's ``type``
literal out: the parts lose it by ``DataFrame.drop`` (a new frame in the list), not
``drop_in_place``, which returns the column and so writes a literal column out, a 16-byte view a row
(5M line moves: 80 MB and ~0.1 s for a column thrown away). The table is still the null-filled
concatenation in ``_at`` order (test_h24_sig17_table's reference), parts whose ``type`` is a
literal (``pl.lit``, as the detector's tables write it) among them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal

from dropengine.analysis import batch

from .test_h24_sig17_table import _COLUMNS, _reference, parts_st


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts_st())
def test_type_is_dropped_not_taken_out(parts: list[pl.DataFrame]) -> None:
    want = _reference(parts)
    n = want.height
    # each part's ``type`` as the detector writes it: one literal per part
    literal = [
        p.with_columns(pl.lit(p.get_column("type")[0] if p.height else "t", pl.String).alias("type"))
        if "type" in p.columns
        else p.clone()
        for p in parts
    ]
    taken: list[str] = []
    real = pl.DataFrame.drop_in_place

    def drop_in_place(self: pl.DataFrame, name: str) -> Any:
        taken.append(name)
        return real(self, name)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pl.DataFrame, "drop_in_place", drop_in_place)
        got = batch._columns_table(
            literal, tuple(_COLUMNS), pl.Schema({}), pl.DataFrame(), np.zeros(n, np.int64), np.zeros(n, np.bool_)
        )
    assert_frame_equal(got, want)
    if sum("type" in p.columns for p in parts) and len(parts) > 1:
        assert "type" not in taken
