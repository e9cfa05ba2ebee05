"""break23 (session 16), B23-4: a Ctrl-C while ``replay --engine batch --workers N`` first imports
polars exits 130 with a whole output file, as 6ff3ceb made it for one process (break22's B22-2).

The sharded path imports polars first at ``from ..cluster import detect_sharded`` (cluster/shard.py
imports it at module level), outside the held signals of ``_import_polars``: the interrupt leaves a
half-imported polars, the Parquet writer's close then fails (AttributeError traceback, exit 1) and
the output is not a Parquet file. A real import hook in the child slows one polars module so the
signal lands in the import every time. The cluster never starts (the signal comes first): cheap.
"""

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

# (a guarded main: a spawned Dask worker re-imports the main module when it is a file; -c is not)
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

    if __name__ == "__main__":
        sys.meta_path.insert(0, SlowPolars())
        from dropengine.cli import run

        sys.argv = ["dropengine", *sys.argv[1:]]
        run()
    """
)


@pytest.mark.timeout(120)
def test_ctrl_c_during_the_polars_import_of_a_sharded_replay_exits_130_with_a_whole_file(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, -150))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    out = tmp_path / "alerts.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "replay", "--engine", "batch", "--workers", "1", "-o", str(out), str(src)],
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
    _, err = proc.communicate(timeout=100)
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode == 130, err[-2000:]
    assert pl.read_parquet(out).height == 0  # a whole (empty) file: nothing was found before the interrupt
