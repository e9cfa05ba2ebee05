"""break26 (session 19), B26-2: a signal landing after a command's run ended, before the process exits.

cli/interrupt.py's policy: a run ends after SIGINT with exit 130 (143 after SIGTERM) and one line,
never click's "Aborted!" with exit 1, a traceback or a SIGTERM's death. ``replay``'s guard used
to be let go when the command's body ended (the summary and "alerts written to ..." already on
stderr); from there until the process exited Python's default handlers were back, so a Ctrl-C in
that window raised KeyboardInterrupt inside click ("Aborted!", exit 1; 3 of 5 runs when sent as
soon as "alerts written" appeared, at c07d9c3). Since :meth:`CtrlC.running` the executable hands
the signals from the run's guard straight to a tail guard that holds them; :func:`tail_end` ends
the process as one (its line, 130/143), the output whole. Here the window is hit
deterministically: the signal is sent right after the run's guard handed over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HOOK = """
import contextlib, os, signal, sys
from dropengine.cli import interrupt as I
orig = I.CtrlC.running
SIG = getattr(signal, os.environ["LATE_SIGNAL"]) if os.environ.get("LATE_SIGNAL") else None
@contextlib.contextmanager
def running(self):
    with orig(self):
        yield
    if SIG is not None:
        os.kill(os.getpid(), SIG)  # a signal landing just after the run's guard handed over
I.CtrlC.running = running
from dropengine.cli.group import run
sys.argv = ["dropengine", *sys.argv[1:]]
run()
"""

QUOTES = (
    "sport_key,event_id,bookmaker,side,price,last_update\n"
    "nfl,e1,pin,h2h_home,-110,1000\nnfl,e1,pin,h2h_home,-130,2000\n"
)


def _replay(tmp_path: Path, late: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    quotes = tmp_path / "q.csv"
    quotes.write_text(QUOTES)
    out = tmp_path / "a.csv"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("LATE_SIGNAL", None)
    if late is not None:
        env["LATE_SIGNAL"] = late
    done = subprocess.run(
        [sys.executable, "-c", HOOK, "replay", str(quotes), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    return done, out


@pytest.mark.parametrize(
    ("late", "code", "said"), [("SIGINT", 130, "interrupted (Ctrl-C)"), ("SIGTERM", 143, "terminated (SIGTERM)")]
)
def test_a_signal_just_after_the_run_ends_it_as_one_with_the_output_whole(
    tmp_path: Path, late: str, code: int, said: str
) -> None:
    done, out = _replay(tmp_path, late)
    assert "alerts written to" in done.stderr  # the premise: the run was done, the file whole
    assert len(out.read_text().splitlines()) == 2
    assert "Traceback" not in done.stderr
    assert "Aborted!" not in done.stderr
    assert done.returncode == code, (done.returncode, done.stderr[-300:])
    assert done.stderr.splitlines()[-1] == f"{said} as the run ended: its output was written whole"


def test_no_signal_no_line(tmp_path: Path) -> None:
    done, out = _replay(tmp_path, None)
    assert done.returncode == 0, done.stderr[-300:]
    assert "as the run ended" not in done.stderr
    assert len(out.read_text().splitlines()) == 2


def test_in_process_the_callers_handlers_are_back_after_the_run(tmp_path: Path) -> None:
    """No tail guard outside the executable: ``dropengine.cli.main`` run in-process (a test, a
    notebook) sets the caller's handlers back when the command ends, as before."""
    from dropengine.cli.group import main

    quotes = tmp_path / "q.csv"
    quotes.write_text(QUOTES)
    mine, term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as ended:
        main(["replay", "-q", str(quotes), "-o", str(tmp_path / "a.csv")])
    assert ended.value.code == 0
    assert signal.getsignal(signal.SIGINT) == mine and signal.getsignal(signal.SIGTERM) == term


@pytest.mark.parametrize(("late", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_simulate_holds_a_late_signal_too(tmp_path: Path, late: str, code: int) -> None:
    """``simulate`` runs under the same guard (its run ends by :meth:`CtrlC.running`): a signal right
    after its run ends it as one, the recording whole (reread20's RR20-7)."""
    out = tmp_path / "sim.ndjson"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""), "LATE_SIGNAL": late}
    done = subprocess.run(
        [sys.executable, "-c", HOOK, "simulate", "--events", "1", "--books", "2", "--hours", "1", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert "Aborted!" not in done.stderr and "Traceback" not in done.stderr
    assert done.returncode == code, (done.returncode, done.stderr[-300:])
    assert done.stderr.splitlines()[-1].endswith("as the run ended: its output was written whole")
    assert out.stat().st_size > 0 and out.read_text().endswith("\n")
