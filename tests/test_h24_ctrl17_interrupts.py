"""ctrl17 (session 17): one interrupt policy for the command line (dropengine/cli/interrupt.py).

A Ctrl-C (SIGINT) or SIGTERM ends a run with exit 130 (143), one line on stderr naming what was
interrupted and what was (not) written, no traceback and no click "Aborted!", and an output file or
report directory either as it was or written whole, never half:

- ``backtest`` (it had no guard: "Aborted!" and exit 1 anywhere in it, a SIGTERM killed it) while it
  starts (the cluster extra's import for ``--workers``), while it reads and measures (nothing written,
  a previous report as it was), and while it writes its report (held: the report is written whole,
  then the run ends);
- every command before its module is loaded (``group.run``: the import of the command's module, ~0.35 s
  for ``backtest``); from there the command's own policy (the guard handed over);
- ``simulate`` (it truncated the file at its start: "Aborted!", exit 1 and half a recording): written
  beside the file and renamed over it once complete, so the file is whole or as it was.

Real child processes (tests/ctrlc_util.py): an import hook slows one module's first import, so the
signal lands there every time.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .ctrlc_util import ctrl_c_in_import
from .test_backtest import TABLE

SAID = {signal.SIGINT: ("interrupted (Ctrl-C)", 130), signal.SIGTERM: ("terminated (SIGTERM)", 143)}
STARTING = " while starting: no input read, no output written"
#: A previous run's report: every file a report directory holds (charts too).
REPORT = ("alerts.parquet", "alerts.csv", "summary.csv", "report.md", "clv_distribution.png", "cumulative_clv.png")


def _previous_report(out: Path) -> dict[str, bytes]:
    out.mkdir()
    for name in REPORT:
        (out / name).write_bytes(f"a previous run's {name}\n".encode())
    return _files(out)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _one_line(err: str, code: int, got: int) -> str:
    """The run's stderr is exactly one line (returned), without a traceback or click's "Aborted!"."""
    assert "Traceback" not in err, err[-2000:]
    assert "Aborted" not in err, err[-2000:]
    assert got == code, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-2000:]
    return lines[0]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A small quote table whose backtest has alerts with closes (so ``--out`` draws charts)."""
    src = tmp_path / "q.parquet"
    TABLE.write_parquet(src)
    return src


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_backtest_interrupted_while_the_cluster_extra_is_imported(tmp_path: Path, table: Path, signum: int) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "report"
    before = _previous_report(out)
    args = ["backtest", "--workers", "1", "--close", "last", "--out", str(out), str(table)]
    got, err = ctrl_c_in_import(args, "distributed.client", signum=signum)
    said, code = SAID[signum]
    assert _one_line(err, code, got) == said + STARTING
    assert _files(out) == before


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_backtest_interrupted_while_it_measures_writes_nothing(tmp_path: Path, table: Path, signum: int) -> None:
    # (the compiled kernel is imported on the first compiled call: inside the detection of the run)
    pytest.importorskip("numba")
    out = tmp_path / "report"
    before = _previous_report(out)
    said, code = SAID[signum]
    got, err = ctrl_c_in_import(
        ["backtest", "--close", "last", "--out", str(out), str(table)], "dropengine.fast.kernel", signum=signum
    )
    assert _one_line(err, code, got) == f"{said} while backtesting: no report written, {out} as it was"
    assert _files(out) == before
    # without --out: the tables are on stdout, and none is printed
    got, err = ctrl_c_in_import(["backtest", "--close", "last", str(table)], "dropengine.fast.kernel", signum=signum)
    assert _one_line(err, code, got) == f"{said} while backtesting: no tables printed"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_backtest_interrupted_while_its_tables_are_printed(table: Path, signum: int) -> None:
    # (with -q no spinner: rich's emoji table is first imported by the tables' print)
    got, err = ctrl_c_in_import(["backtest", "-q", "--close", "last", str(table)], "rich._emoji_codes", signum=signum)
    said, code = SAID[signum]
    assert _one_line(err, code, got) == f"{said} while the tables were printed"


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("command", "signum"), [("backtest", signal.SIGINT), ("backtest", signal.SIGTERM), ("replay", signal.SIGINT)]
)
def test_a_sharded_run_interrupted_while_its_local_cluster_starts_ends_cleanly(
    tmp_path: Path, table: Path, command: str, signum: int
) -> None:
    """The signal is held until the cluster has started, then it is closed: a cluster cut short in its
    start could not be (distributed's exit handler failed on a worker in Status.init: a traceback
    after the run's last line)."""
    pytest.importorskip("distributed")
    out = tmp_path / "report"
    before = _previous_report(out)
    args = {
        "backtest": ["backtest", "--workers", "1", "--close", "last", "--out", str(out), str(table)],
        "replay": ["replay", "-q", "--engine", "batch", "--workers", "1", "-o", str(tmp_path / "a.csv"), str(table)],
    }[command]
    # (the local cluster's start makes its worker processes: multiprocessing's locks are imported then)
    # (distributed warns on stderr when another process holds its port 8787, as other tests' clusters may)
    quiet = {"PYTHONWARNINGS": "ignore:Port :UserWarning"}
    got, err = ctrl_c_in_import(args, "multiprocessing.synchronize", signum=signum, env=quiet)
    said, code = SAID[signum]
    line = _one_line(err, code, got)
    if command == "backtest":
        assert line == f"{said} while backtesting: no report written, {out} as it was"
    else:
        assert line == f"{said}: 0 alerts written; the summary counts the input read until then"
    assert _files(out) == before


@pytest.mark.timeout(180)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_backtest_interrupted_while_its_report_is_written_writes_it_whole(
    tmp_path: Path, table: Path, signum: int
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    args = ["backtest", "--close", "last", "--out", str(out), str(table)]
    done = subprocess.run([sys.executable, "-m", "dropengine", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    whole = _files(out)
    assert sorted(whole) == sorted(REPORT)
    for name in REPORT:  # the same directory (report.md names it), holding a previous run's files
        (out / name).write_bytes(f"a previous run's {name}\n".encode())
    # matplotlib is imported inside the report's write, after its first files are written (the signal is held)
    got, err = ctrl_c_in_import(args, "matplotlib.pyplot", signum=signum)
    said, code = SAID[signum]
    assert _one_line(err, code, got) == f"{said} while the report was written: written whole to {out}"
    assert _files(out) == whole


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("command", "module", "signum"),
    [
        ("backtest", "dropengine.cli.backtest", signal.SIGINT),
        ("backtest", "dropengine.cli.backtest", signal.SIGTERM),
        ("replay", "dropengine.cli.replay", signal.SIGINT),
        ("simulate", "dropengine.cli.simulate", signal.SIGTERM),
    ],
)
def test_a_signal_before_the_command_starts_ends_the_process_with_one_line(
    tmp_path: Path, table: Path, command: str, module: str, signum: int
) -> None:
    """The command's module is being imported: ``group.run``'s guard, as a command's own start."""
    out = tmp_path / "report"
    before = _previous_report(out)
    args = {  # each would write over a previous file of the report directory
        "backtest": ["backtest", "--out", str(out), str(table)],
        "replay": ["replay", "--engine", "batch", "-o", str(out / "alerts.csv"), str(table)],
        "simulate": ["simulate", "--events", "2", "-o", str(out / "alerts.csv")],
    }[command]
    got, err = ctrl_c_in_import(args, module, signum=signum)
    said, code = SAID[signum]
    assert _one_line(err, code, got) == said + STARTING
    assert _files(out) == before
    assert pl.read_parquet(table).height == TABLE.height  # (the input: read only)


# -- simulate: the recording is written whole (renamed over the name once complete) or not at all


def _simulate(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["simulate", "--events", "2", "--books", "3", "--hours", "2", "--seed", "5", "-o", str(out), *extra]
    return subprocess.run([sys.executable, "-m", "dropengine", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_simulate_interrupted_while_it_writes_leaves_a_previous_file_as_it_was(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "sim.parquet"
    out.write_bytes(b"a previous recording\n")
    # polars is imported by the Parquet writer, once the simulation runs
    got, err = ctrl_c_in_import(
        ["simulate", "--events", "2", "--books", "3", "--hours", "2", "-o", str(out)], "polars.series", signum=signum
    )
    said, code = SAID[signum]
    assert _one_line(err, code, got) == f"{said} while simulating: nothing written, {out} as it was"
    assert out.read_bytes() == b"a previous recording\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sim.parquet"]  # (the unfinished file is gone)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["sim.ndjson.gz", "sim.csv", "sim.parquet"])
def test_simulate_over_a_previous_file_writes_the_same_bytes_and_keeps_its_mode(tmp_path: Path, name: str) -> None:
    fresh = tmp_path / "fresh" / name
    fresh.parent.mkdir()
    assert _simulate(fresh).returncode == 0
    out = tmp_path / "over" / name
    out.parent.mkdir()
    out.write_bytes(b"a previous recording\n")
    out.chmod(0o600)
    link = tmp_path / "over" / ("link-" + name)  # a symbolic link stays one: the file it names is written
    link.symlink_to(out)
    done = _simulate(link)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == fresh.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    assert link.is_symlink()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([name, link.name])


def test_simulate_replaces_a_file_by_a_rename_unless_its_directory_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file in a directory the process may not write (it may write the file) is written in place,
    as before: the same inode. Otherwise a new file takes the name: another inode, the same bytes."""
    from click.testing import CliRunner

    from dropengine.cli.group import main
    from dropengine.io import files

    args = ["simulate", "--events", "2", "--books", "3", "--hours", "2", "--seed", "5", "-o"]
    fresh = tmp_path / "fresh.csv"
    assert CliRunner().invoke(main, [*args, str(fresh)]).exit_code == 0
    out = tmp_path / "sim.csv"
    out.write_bytes(b"a previous recording\n")
    inode = out.stat().st_ino
    assert CliRunner().invoke(main, [*args, str(out)]).exit_code == 0
    assert out.stat().st_ino != inode and out.read_bytes() == fresh.read_bytes()
    inode = out.stat().st_ino
    out.write_bytes(b"a previous recording\n")
    # (as root every directory is writable: the check is faked; the write itself is real)
    # (the rule is io.files.part_file's since session 20, one for simulate --out and replay --output)
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != tmp_path)
    assert CliRunner().invoke(main, [*args, str(out)]).exit_code == 0
    assert out.stat().st_ino == inode and out.read_bytes() == fresh.read_bytes()


@pytest.mark.timeout(120)
def test_simulate_into_a_fifo_writes_through_it(tmp_path: Path) -> None:
    """A FIFO (a reader on the other end) is written as the recording is made, not replaced."""
    fresh = tmp_path / "sim.ndjson"
    assert _simulate(fresh).returncode == 0
    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)
    args = ["simulate", "--events", "2", "--books", "3", "--hours", "2", "--seed", "5", "-o", str(fifo)]
    proc = subprocess.Popen([sys.executable, "-m", "dropengine", *args], stderr=subprocess.PIPE)
    with open(fifo, "rb") as fh:
        got = fh.read()
    assert proc.wait(timeout=120) == 0
    assert got == fresh.read_bytes()
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_simulate_into_a_fifo_interrupted_says_what_was_written(tmp_path: Path, signum: int) -> None:
    """A FIFO cannot be left as it was: the line says its reader got what was written until then."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    args = ["simulate", "--events", "8", "--books", "6", "--hours", "24", "-o", str(fifo)]  # (megabytes)
    proc = subprocess.Popen([sys.executable, "-m", "dropengine", *args], stderr=subprocess.PIPE, text=True)
    with open(fifo, "rb") as fh:
        assert fh.read(4096)  # the recording has begun; the pipe fills and the writer waits on it
        proc.send_signal(signum)
        fh.read()  # (until the writer has closed its end)
    _, err = proc.communicate(timeout=100)
    said, code = SAID[signum]
    assert _one_line(err, code, proc.returncode) == f"{said} while simulating: {fifo} holds what was written until then"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# -- the executable's start guard (group.run): on until the command's module is loaded, then handed over


def test_the_start_guard_ends_the_process_before_the_command_is_loaded_and_hands_over_after(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dropengine.cli.group import main
    from dropengine.cli.interrupt import launching

    mine, term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, launching():
        assert signal.getsignal(signal.SIGINT) != mine
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 143
    assert capsys.readouterr().err == "terminated (SIGTERM)" + STARTING + "\n"
    assert signal.getsignal(signal.SIGINT) == mine and signal.getsignal(signal.SIGTERM) == term
    with launching():
        main.commands["simulate"]  # a lookup (as --help's listing makes) keeps the guard on (B24-6)
        assert signal.getsignal(signal.SIGINT) != mine
        main.callback()  # click runs the group's callback once the command is loaded: handed over
        assert signal.getsignal(signal.SIGINT) == mine and signal.getsignal(signal.SIGTERM) == term
    main.callback()  # (in-process, without the start guard: nothing to hand over)
    assert signal.getsignal(signal.SIGINT) == mine
