"""A Ctrl-C while ``replay`` first imports polars (break22's B22-2) exits 130 with the output
written, not a traceback: the import runs with the signal held. The import is slowed by a real
import hook in the child (a finder that sleeps before one polars module), so the signal lands in
it every time instead of once in a dozen runs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote

from .ctrlc_util import ctrl_c_in_polars_import
from .parquet_util import write_quotes


@pytest.mark.parametrize(("engine", "suffix"), [("batch", "parquet"), ("stream", "csv")])
def test_ctrl_c_during_the_polars_import_writes_the_output_and_exits_130(
    tmp_path: Path, engine: str, suffix: str
) -> None:
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, -150))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    out = tmp_path / f"alerts.{suffix}"
    code, err = ctrl_c_in_polars_import(["replay", "--engine", engine, "-o", str(out), str(src)], timeout_s=120)
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted (Ctrl-C): 0 alerts written" in err
    read = pl.read_parquet(out) if suffix == "parquet" else pl.read_csv(out)
    assert read.height == 0  # a whole (empty) file: what was found before the interrupt
