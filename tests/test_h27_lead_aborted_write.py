"""critic20's C20-4, the command's part (session 20): after a Ctrl-C, polars' own SIGINT hook aborts
its next query, which can be the output's write (``KeyboardInterrupt('')`` in ``AlertWriter.close``).
``replay`` writes it once more with the signals held; aborted again, the output is left as it was
and the run says so: never "alerts written to" a file that was not written.
(The once-aborted case, written on the retry, is tests/test_h27_critic20_closed.py.)"""

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
def aborted(frame, path):
    raise KeyboardInterrupt("")  # polars' own abort, every time
S._write_parquet = aborted
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt  # the Ctrl-C, during detection
R.replay_batch = interrupted
from dropengine.cli.group import run
sys.argv = ["dropengine", *sys.argv[1:]]
run()
"""

QUOTES = "sport_key,event_id,bookmaker,side,price,last_update\nnfl,e1,pin,h2h_home,-110,1000\n"

#: Detection runs (one price drop found); every write of the output is aborted as polars aborts it.
WRITES_ABORTED = HOOK.replace("R.replay_batch = interrupted", "")
DROP = QUOTES + "nfl,e1,pin,h2h_home,-130,2000\n"


def test_an_output_whose_every_write_is_aborted_is_left_as_it_was_and_said_so(tmp_path: Path) -> None:
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
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert "alerts written to" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"interrupted (Ctrl-C): no alerts written, {out} as it was; the summary counts the input read until then"
    )


def test_an_output_that_did_not_exist_is_absent_again_and_no_type_is_said_written(tmp_path: Path) -> None:
    """reread20's RR20-2/RR20-3: the empty file the writer makes at the start (to fail early on a bad
    path) goes when its every write was aborted, so "as it was" holds; the summary's per-type rows
    say 0 like its total (the alerts were found, not written)."""
    quotes = tmp_path / "q.csv"
    quotes.write_text(DROP)
    out = tmp_path / "new.parquet"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WRITES_ABORTED,
            "replay",
            str(quotes),
            "--engine",
            "batch",
            "--types",
            "odds_drop,steam",
            "-o",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 130, done.stderr[-300:]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.csv"]
    rows = {
        line.split()[0]: line.split()[-1] for line in done.stderr.splitlines() if line.startswith(("  odds", "  steam"))
    }
    assert rows == {"odds_drop": "0", "steam": "0"}, done.stderr  # (one drop found, none written)
    assert any(line.split() == ["detected", "1"] for line in done.stderr.splitlines()), done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        f"no alerts written, {out} as it was; the summary counts the input read until then"
    )
