"""A Ctrl-C while ``replay`` first imports polars (break22's B22-2) exits 130 with the output
written, not a traceback: the import runs with the signal held. The import is slowed by a real
import hook in the child (a finder that sleeps before one polars module), so the signal lands in
it every time instead of once in a dozen runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote

from .parquet_util import write_quotes

_CHILD = textwrap.dedent(
    """
    import importlib.abc, sys, time

    class SlowPolars(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "polars.series":
                sys.stderr.write("IMPORTING\\n")
                sys.stderr.flush()
                time.sleep(2.0)  # the signal comes in here
            return None

    sys.meta_path.insert(0, SlowPolars())
    from dropengine.cli import run

    sys.argv = ["dropengine", *sys.argv[1:]]
    run()
    """
)


@pytest.mark.parametrize(("engine", "suffix"), [("batch", "parquet"), ("stream", "csv")])
def test_ctrl_c_during_the_polars_import_writes_the_output_and_exits_130(
    tmp_path: Path, engine: str, suffix: str
) -> None:
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, -150))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    out = tmp_path / f"alerts.{suffix}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "replay", "--engine", engine, "-o", str(out), str(src)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # (blocks until the hook runs: the import has begun)
    if first != "IMPORTING\n":
        proc.kill()
        proc.communicate()
        pytest.fail(f"polars was not imported where the test expects it: {first!r}")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted (Ctrl-C): 0 alerts written" in err
    read = pl.read_parquet(out) if suffix == "parquet" else pl.read_csv(out)
    assert read.height == 0  # a whole (empty) file: what was found before the interrupt
