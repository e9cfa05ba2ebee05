"""break16 (issue 14, session 9): ``replay --engine batch`` after e2e14's changes.

- B16-2 (fixed: 6843e34): the batch replay registered ``gc.freeze`` to run at interpreter exit. Called in-process (an
  embedding caller: ``dropengine.cli.main([...], standalone_mode=False)``, a notebook, a test
  runner), it froze the caller's objects too, so their reference cycles are never collected at
  exit: a buffered file held in a cycle is never flushed (its data is lost). The stream engine, and
  the batch engine at 0f8d4cb, leave them to the interpreter's last collections (they are flushed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote
from dropengine.formats.tables import QUOTE_COLUMNS, table_row

from .conftest import require_fast

_CALLER = textwrap.dedent("""
    import sys
    from dropengine.cli import main

    class Log:
        '''A buffered log held in a reference cycle (it keeps a bound method of itself).'''
        def __init__(self, path):
            self.fh = open(path, "w", buffering=1 << 20)
            self.me = self.write
        def write(self, text):
            self.fh.write(text)

    log = Log(sys.argv[1])
    log.write("started\\n")
    main(["replay", "-q", "--engine", sys.argv[3], sys.argv[2], "--output", sys.argv[1] + ".alerts.csv"],
         standalone_mode=False)
    log.write("finished\\n")
""")


def _table(path: Path) -> Path:
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, 120))]
    rows = [table_row(q) for q in quotes]
    pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS}, strict=False).write_parquet(path)
    return path


# B16-2 (fixed by 6843e34, the revert of 2e96170's atexit gc.freeze): the batch engine failed this
@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_an_in_process_replay_leaves_the_callers_exit_alone(tmp_path: Path, engine: str) -> None:
    if engine == "batch":
        require_fast()
    log = tmp_path / "log.txt"
    script = tmp_path / "caller.py"
    script.write_text(_CALLER, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(log), str(_table(tmp_path / "q.parquet")), engine],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "log.txt.alerts.csv").read_text(encoding="utf-8").count("odds_drop") == 2
    # the interpreter's last collection finalizes the cycle: the file is closed, its buffer written
    assert log.read_text(encoding="utf-8") == "started\nfinished\n"
