"""review22 R22-1: ``fast.warm_up`` (eb181cd) freezes the collector from its thread, so an
in-process caller of ``replay --engine batch`` (``dropengine.cli.main(..., standalone_mode=False)``,
a notebook, a test runner) gets its own objects frozen: a reference cycle it drops later is never
collected, and a buffered file held in one never flushes its data. That is break16's B16-2 again
(tests/test_h16_break16_e2e.py), which that test misses: its caller ends while the warm-up thread
may still be loading, so the freeze comes too late to matter. Here the caller goes on working
after the command, as a notebook does, so the freeze has happened: at 55f895f the log holds both
lines, at eb181cd..ca082c7 it was empty. The freeze is now only the executable's, at its exit
(``cli.group.run``): this passes again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from dropengine import Quote

from .conftest import require_fast
from .parquet_util import write_quotes

ROOT = Path(__file__).resolve().parents[1]

_CALLER = textwrap.dedent("""
    import sys, threading
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
    main(["replay", "-q", "--engine", "batch", sys.argv[2], "--output", sys.argv[1] + ".alerts.csv"],
         standalone_mode=False)
    for t in threading.enumerate():  # the caller goes on working: by then the warm-up is done
        if t.name == "dropengine-fast-warm-up":
            t.join()
    log.write("finished\\n")
""")


def test_an_in_process_batch_replay_leaves_the_callers_cycles_collectable(tmp_path: Path) -> None:
    require_fast()
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, 120))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    script = tmp_path / "caller.py"
    script.write_text(_CALLER, encoding="utf-8")
    log = tmp_path / "log.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DROPENGINE_PURE", None)
    done = subprocess.run(
        [sys.executable, str(script), str(log), str(src)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "log.txt.alerts.csv").read_text(encoding="utf-8").count("odds_drop") == 2
    # the interpreter's last collection finalizes the dropped cycle: the file is closed, its buffer written
    assert log.read_text(encoding="utf-8") == "started\nfinished\n"
