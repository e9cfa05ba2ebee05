"""core/merge.py's rule on the batch replay (review22 R22-9): ``replay --engine batch`` of several
Parquet files lists its skipped rows as the rule orders them, with the same caps and counts as
the stream engine (test_h22_ci15_skip_order's property for the stream engine, on the same
generated files). Pins io.tables.parquet_clock's -1 before a file's first time: with 0 a file's
leading skipped rows tie with another file's usable row at time 0 and are listed after that
file's later skips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from dropengine.io.replay import ReplayStats, replay_batch

from .test_h22_ci15_skip_order import _by_the_rule, _write, files_st


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=files_st)
def test_the_batch_replay_lists_skipped_rows_in_the_merged_order_of_the_rule(
    tmp_path_factory: pytest.TempPathFactory, files: list[list[tuple[int, str | None, float]]]
) -> None:
    paths = _write(tmp_path_factory.mktemp("batch_order"), files)
    expected = _by_the_rule(paths, files)
    got = ReplayStats()
    replay_batch([str(p) for p in paths], "auto", got)
    assert got.skips.first == expected.first
    assert got.skips.counts == expected.counts


def test_a_files_leading_skipped_row_stands_before_another_files_row_at_time_zero(tmp_path: Path) -> None:
    """b = [usable at t=0, bad], a = [bad, usable at t=0], given as b a: a's first row is skipped
    before a's first usable row, so it is listed first."""
    paths = _write(
        tmp_path, [[(0, None, -110.0), (0, "no sport", -110.0)], [(0, "no event", -110.0), (0, None, -120.0)]]
    )
    expected = _by_the_rule(
        paths, [[(0, None, -110.0), (0, "no sport", -110.0)], [(0, "no event", -110.0), (0, None, -120.0)]]
    )
    got = ReplayStats()
    replay_batch([str(p) for p in paths], "auto", got)
    assert [s.reason for s in expected.first] == ["missing field", "missing field"]
    assert got.skips.first == expected.first
