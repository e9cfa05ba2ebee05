"""break23 (session 16), B23-4: a Ctrl-C while ``replay --engine batch --workers N`` first imports
polars exits 130 with a whole output file, as 6ff3ceb made it for one process (break22's B22-2).

The sharded path imports polars first at ``from ..cluster import detect_sharded`` (cluster/shard.py
imports it at module level), outside the held signals of ``_import_polars``: the interrupt leaves a
half-imported polars, the Parquet writer's close then fails (AttributeError traceback, exit 1) and
the output is not a Parquet file. A real import hook in the child slows one polars module so the
signal lands in the import every time. The cluster never starts (the signal comes first): cheap.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote

from .ctrlc_util import ctrl_c_in_polars_import
from .parquet_util import write_quotes


@pytest.mark.timeout(120)
def test_ctrl_c_during_the_polars_import_of_a_sharded_replay_exits_130_with_a_whole_file(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, -150))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    out = tmp_path / "alerts.parquet"
    code, err = ctrl_c_in_polars_import(["replay", "--engine", "batch", "--workers", "1", "-o", str(out), str(src)])
    assert "Traceback" not in err, err[-2000:]
    assert code == 130, err[-2000:]
    assert pl.read_parquet(out).height == 0  # a whole (empty) file: nothing was found before the interrupt
