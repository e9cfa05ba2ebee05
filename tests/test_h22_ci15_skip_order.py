"""ci15: where a skipped row stands in a replay of several files (break21's F5), as
core/merge.py writes it down.

The rule: a file's replay clock is the running maximum of the times of its usable rows; a
skipped row holds it (its own time, whatever it is, moves nothing: a bad row is skipped,
counted and reported, and changes nothing else). Files are merged by that clock, ties in
file order, then row order, and the skip report lists skipped rows in that merged order:
each at (its file's clock at the row, file, row); rows skipped before a file's first usable
row stand before everything (no clock yet), in file order.

The stream engine follows it (pinned here, computed from the rows, not from the engine). The
batch engine's Parquet loader did not (a skipped row's time moved its file's clock: skips listed
in another order, F5, and alerts too): ``replay_batch`` now detects again in the rule's order
when a skipped row had moved its file's clock (io.tables.parquet_replay_order). Since session 16
the sharded path and ``backtest`` keep the rule too (tests/test_h23_ord16_rule_order.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.cli.group import main
from dropengine.core.skips import SkipLog
from dropengine.io.replay import ReplayStats, read_quotes, replay
from dropengine.io.tables import parquet_position

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA, h2h_row

_SCHEMA = QUOTE_SCHEMA
# what makes a row bad (each a reader skip with its own reason), or None: a usable row
_FAULTS: dict[str | None, dict[str, Any]] = {
    None: {},
    "no sport": {"sport_key": None},
    "no event": {"event_id": None},
    "bad side": {"side": "sideways"},
}

row_st = st.tuples(
    st.sampled_from([0, 1000, 2000, 3000, 5000, 8000]),
    st.sampled_from(list(_FAULTS)),
    st.sampled_from([-110.0, -130.0, 105.0]),
)
files_st = st.lists(st.lists(row_st, min_size=1, max_size=12), min_size=2, max_size=3)


def _write(tmp: Path, files: list[list[tuple[int, str | None, float]]]) -> list[Path]:
    paths = []
    for f, rows in enumerate(files):
        table = [
            h2h_row(t, price, f"e{f}", "nba", **_FAULTS[fault])
            for t, fault, price in rows
        ]
        path = tmp / f"f{f}.parquet"
        pl.DataFrame(table, schema=_SCHEMA).write_parquet(path)
        paths.append(path)
    return paths


def _by_the_rule(paths: list[Path], files: list[list[tuple[int, str | None, float]]]) -> SkipLog:
    """The skip report the rule gives: each file read alone (its own order, no merge) for which
    rows it skips and why, then the skipped rows added in the order of (file's clock at the row,
    file, row), a file's clock being the running maximum of its usable rows' times."""
    placed: list[tuple[float, int, int, str, str, str]] = []
    for f, (path, rows) in enumerate(zip(paths, files, strict=True)):
        alone = ReplayStats(skips=SkipLog(keep=10**6, per_reason=10**6))
        for _ in read_quotes([path], stats=alone):
            pass
        skipped = {s.where: s for s in alone.skips.first}
        assert {s.where for s in skipped.values()} == {
            parquet_position(path.name, r) for r, (_, fault, _) in enumerate(rows) if fault is not None
        }  # the rows made bad, and only they, are skipped
        clock = -math.inf  # no usable row yet
        for r, (t, _, _) in enumerate(rows):
            skip = skipped.get(parquet_position(path.name, r))
            if skip is None:
                clock = max(clock, t)
            else:
                placed.append((clock, f, r, skip.where, skip.reason, skip.message))
    log = SkipLog()
    for *_, where, reason, message in sorted(placed):
        log.add(where, reason, message)
    return log


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=files_st)
def test_the_stream_engine_lists_skipped_rows_in_the_merged_order_of_the_rule(
    tmp_path_factory: pytest.TempPathFactory, files: list[list[tuple[int, str | None, float]]]
) -> None:
    """Property: the stream engine's skip report (the rows listed, their order, the counts,
    with the per-reason and total caps) is the rule's, for any rows of 2-3 Parquet files:
    times out of order and tied, bad rows first, last, in runs, whole files of them."""
    paths = _write(tmp_path_factory.mktemp("order"), files)
    expected = _by_the_rule(paths, files)
    got = ReplayStats()
    for _ in replay(paths, DropEngine(), stats=got):
        pass
    assert got.skips.first == expected.first
    assert got.skips.counts == expected.counts


def _cli(args: list[str]) -> tuple[list[str], str]:
    out = CliRunner().invoke(main, args, catch_exceptions=False)
    assert out.exit_code in (0, 1), out.output
    alerts = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return alerts, out.stderr


def test_a_skipped_rows_time_does_not_reorder_the_batch_alerts(tmp_path: Path) -> None:
    """a: t=1000, then a row without its sport at t=9000, then t=3000 (a drop); b: t=2000, then
    t=4000 (a drop). The skipped row changes nothing: a's drop (clock 3000) comes before b's
    (4000) on both engines. (Batch put b's first: its clock had a at 9000 from the bad row.)"""
    require_fast()
    files: list[list[tuple[int, str | None, float]]] = [
        [(1000, None, -110.0), (9000, "no sport", -120.0), (3000, None, -150.0)],
        [(2000, None, -110.0), (4000, None, -150.0)],
    ]
    paths = [str(p) for p in _write(tmp_path, files)]
    stream, _ = _cli(["replay", "--engine", "stream", *paths])
    assert ['"event_id":"e0"' in a for a in stream] == [True, False]  # the rule, on the stream engine
    batch, _ = _cli(["replay", "--engine", "batch", *paths])
    assert batch == stream
