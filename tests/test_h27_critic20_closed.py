"""critic20 (session 20), C20-4: after a Ctrl-C the summary said "alerts written to X" while X still held the
previous run's file (regression test: fixed by 0ca012a + ed0c775, a strict xfail before).

polars 2.x aborts its next query after a SIGINT it saw itself with ``KeyboardInterrupt('')``; when that query is
the output's write (``AlertWriter.close`` after an interrupted run), nothing is written and the summary's "alerts
written to" line is printed anyway (random Ctrl-C during a 1M ``replay --engine batch``: 1 to 3 of 10 SIGINTs, at
9cc3fe7 as at HEAD). Here deterministically: the run is interrupted during detection and the first Parquet write
raises as polars does. The policy: the output whole or as before, and never "alerts written to" a file not written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

HOOK = """
import sys
from dropengine.io import sinks as S
from dropengine.cli import replay as R
calls = []
write = S._write_parquet
def aborted_once(frame, path):
    calls.append(1)
    if len(calls) == 1:
        raise KeyboardInterrupt("")  # polars' own abort of its next query after a SIGINT
    return write(frame, path)
S._write_parquet = aborted_once
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt  # the Ctrl-C, during detection
R.replay_batch = interrupted
from dropengine.cli.group import run
sys.argv = ["dropengine", *sys.argv[1:]]
run()
"""

QUOTES = (
    "sport_key,event_id,bookmaker,side,price,last_update\n"
    "nfl,e1,pin,h2h_home,-110,1000\nnfl,e1,pin,h2h_home,-130,2000\n"
)


def test_an_aborted_write_after_ctrl_c_is_not_said_written(tmp_path: Path) -> None:
    quotes = tmp_path / "q.csv"
    quotes.write_text(QUOTES)
    out = tmp_path / "a.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(out)  # a previous run's file
    before = out.read_bytes()
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", HOOK, "replay", str(quotes), "--engine", "batch", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 130, done.stderr[-300:]
    assert "Traceback" not in done.stderr
    assert "interrupted (Ctrl-C): 0 alerts written" in done.stderr  # the premise: interrupted, nothing found
    if out.read_bytes() == before:  # not written: then never said written
        assert f"alerts written to {out}" not in done.stderr, done.stderr[-300:]
    else:  # written: this run's (empty) alerts table, whole
        assert pl.read_parquet(out).height == 0
        assert "type" in pl.read_parquet(out).columns
