"""break22 (session 15): what makes the executable's exit freeze (1235c69, ``cli.group.run``) safe.

``run()`` moves every object alive when the command is done into the collector's permanent
generation, so the interpreter's last collections skip them. An object that only a collection
would have finalized then never is: a buffered file held by a reference cycle that is reachable
until the modules are torn down loses what it buffered (measured, CPython 3.11: such a file keeps
its 23 bytes under ``main()`` and has 0 under ``run()``). ``run()``'s docstring rests on "each
command closes its own files and connections (none is left to a collector)". These tests pin that
statement for the commands that write files, in the executable's own process: at exit (an atexit
hook, which runs after ``run()``'s freeze) no file object is open but the standard streams, and
each file written is the one ``main()`` writes in-process. A control shows the hook does find a
file left open.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from dropengine.cli import main

from .conftest import require_fast

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT / "fixtures" / "demo_nba_frames.ndjson"

# The executable's entry in a child. An atexit hook registered before anything else (so it runs
# last, after run()'s freeze) lists the file objects still open, frozen ones included.
# LEAK=<path>: the control, a buffered file held by a cycle that a module global reaches.
_CHILD = """
import atexit, gc, io, os, sys
def open_files():
    gc.unfreeze()  # (the process is ending: the objects run() froze are listed too)
    names = [getattr(o, "name", "?") for o in gc.get_objects() if isinstance(o, io.IOBase) and not o.closed]
    print("OPEN", sorted({str(n) for n in names if n not in (0, 1, 2, "<stdin>", "<stdout>", "<stderr>")}),
          file=sys.__stderr__, flush=True)
atexit.register(open_files)
if os.environ.get("LEAK"):
    class Holder:
        pass
    held = Holder()
    held.me = held
    held.f = open(os.environ["LEAK"], "w")
    held.f.write("buffered, never closed\\n")
sys.argv = ["dropengine", *sys.argv[1:]]
from dropengine.cli import run
run()
"""


def _child(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    import os

    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    hooks = [line for line in done.stderr.splitlines() if line.startswith("OPEN ")]
    assert len(hooks) == 1, done.stderr[-2000:]
    return done.returncode, hooks


def test_the_hook_finds_a_file_left_open(tmp_path: Path) -> None:
    """The control: a buffered file a cycle holds is listed (else the tests below prove nothing)."""
    leak = tmp_path / "leak.txt"
    code, hooks = _child(["--version"], {"LEAK": str(leak)})
    assert code == 0
    assert hooks == [f"OPEN {[str(leak)]}"]


def _same_file(got: Path, want: Path) -> None:
    if got.suffix == ".parquet":
        assert_frame_equal(pl.read_parquet(got), pl.read_parquet(want), check_exact=True)
    else:
        assert got.read_bytes() == want.read_bytes()


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["replay", "--engine", "stream", "--types", "odds_drop,line_move,steam", "--steam-books", "2"], "a.csv"),
        (["replay", "--engine", "stream"], "a.parquet"),
        (["replay", "--engine", "batch", "--types", "odds_drop,line_move,steam", "--steam-books", "2"], "a.parquet"),
        (["replay", "--engine", "batch", "--reference", "anchor"], "a.ndjson"),
    ],
)
def test_replay_leaves_no_file_open_at_exit_and_writes_what_main_writes(
    tmp_path: Path, args: list[str], name: str
) -> None:
    if "batch" in args:
        require_fast()
    child, inproc = tmp_path / "child", tmp_path / "inproc"
    child.mkdir()
    inproc.mkdir()
    code, hooks = _child([*args, "-o", str(child / name), str(FRAMES)])
    assert (code, hooks) == (0, ["OPEN []"])
    got = CliRunner().invoke(main, [*args, "-o", str(inproc / name), str(FRAMES)])
    assert got.exit_code == 0, got.output
    _same_file(child / name, inproc / name)


def test_simulate_and_backtest_leave_no_file_open_at_exit(tmp_path: Path) -> None:
    sim = tmp_path / "sim.ndjson"
    code, hooks = _child(["simulate", "--events", "2", "--books", "3", "--hours", "2", "--out", str(sim)])
    assert (code, hooks) == (0, ["OPEN []"])
    again = tmp_path / "again.ndjson"
    assert (
        CliRunner()
        .invoke(main, ["simulate", "--events", "2", "--books", "3", "--hours", "2", "--out", str(again)])
        .exit_code
        == 0
    )
    assert sim.read_bytes() == again.read_bytes()
    code, hooks = _child(["backtest", "--out", str(tmp_path / "bt"), str(sim)])
    assert (code, hooks) == (0, ["OPEN []"])
    assert CliRunner().invoke(main, ["backtest", "--out", str(tmp_path / "bt2"), str(sim)]).exit_code == 0
    written = sorted(p.name for p in (tmp_path / "bt").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "bt2").iterdir()) and "alerts.parquet" in written
    for f in ("alerts.parquet", "alerts.csv", "summary.csv"):
        _same_file(tmp_path / "bt" / f, tmp_path / "bt2" / f)
