"""break24 (session 17): replay's interrupt policy while its summary is printed (B24-2).

The policy (cli/interrupt.py, README "exit status"): a Ctrl-C ends a run with exit 130 (143 after
SIGTERM) and one line saying what was interrupted and what was written; never click's "Aborted!" with
exit 1 (which is replay's "no usable input" status) and never a process killed by SIGTERM. replay's
guard covered its start and its run and was let go when the alerts were written: the summary on stderr
(and the unusable-input check) came after it, where a Ctrl-C gave "Aborted!" and exit 1, a SIGTERM
killed the process (-15). The alerts file is whole by then. Pre-existing (053d02d and before); fixed in
5edc8fa (the summary and exit status under the guard); this test fails at 62e2a9f. Real child
processes: the summary is slowed (a marker on stderr, then a sleep) so that the signal lands in it
every time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RECORDING = Path(__file__).resolve().parent.parent / "fixtures" / "demo_nba_frames.ndjson"

_CHILD = textwrap.dedent(
    """
    import sys, time

    import dropengine.cli.replay as replay_cli

    real = replay_cli._summary

    def slow(*args, **kwargs):
        sys.stderr.write("SUMMARY\\n")
        sys.stderr.flush()
        time.sleep(2.0)  # the signal comes in here
        return real(*args, **kwargs)

    if __name__ == "__main__":
        replay_cli._summary = slow
        from dropengine.cli import run

        sys.argv = ["dropengine", *sys.argv[1:]]
        run()
    """
)


def _signal_in_summary(args: list[str], signum: int) -> tuple[int, str]:
    """Run ``dropengine *args``; send ``signum`` once its summary has begun: exit status and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # (blocks until the summary begins: the alerts are written)
    if first != "SUMMARY\n":
        proc.kill()
        proc.communicate()
        pytest.fail(f"the summary was not reached: {first!r}")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=100)
    return proc.returncode, err


@pytest.mark.parametrize(
    ("engine", "signum", "status"), [("stream", signal.SIGINT, 130), ("batch", signal.SIGTERM, 143)]
)
def test_a_signal_while_the_summary_is_printed_exits_130_or_143(
    tmp_path: Path, engine: str, signum: int, status: int
) -> None:
    whole = tmp_path / "whole.ndjson"
    done = subprocess.run(
        [sys.executable, "-m", "dropengine", "replay", str(RECORDING), "--engine", engine, "-q", "-o", str(whole)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr  # (the control: an uninterrupted run)
    out = tmp_path / "out.ndjson"
    rc, err = _signal_in_summary(["replay", str(RECORDING), "--engine", engine, "-o", str(out)], signum)
    assert out.read_bytes() == whole.read_bytes()  # (written whole before the summary: holds today)
    assert "Traceback" not in err
    assert "Aborted" not in err
    assert rc == status, err
