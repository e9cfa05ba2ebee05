"""reread22's RR22-10: a Ctrl-C after ``replay --engine batch``'s detection returned keeps its alerts.

Between the warm-up wait (``CtrlC.wait_held``, which set the hold back to off) and ``guard.defer = True``
before the write, the collector block (``_long_lived_frozen``) ends: a signal landing there -- contextlib's
``__exit__``, the generator's resume at its ``yield``, before the block's own hold -- raised, skipped the
write, and the run said "0 alerts written" though the detection had returned (RR21-10's policy: a signal
after a detection that returned ends the run once its alerts are written). The signal is made to land there
deterministically: ``_GeneratorContextManager.__exit__`` is wrapped to raise SIGINT at its entry for that
block's normal exit. Run in a child process: the guard installs process-wide signal handlers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo_nba_frames.ndjson"

_CHILD = textwrap.dedent(
    """
    import contextlib, os, signal, sys
    from click.testing import CliRunner
    from dropengine.cli import main

    real_exit = contextlib._GeneratorContextManager.__exit__

    def landing_exit(self, typ, value, tb):
        if self.gen.gi_code.co_name == "_long_lived_frozen" and typ is None and sys.argv[3] == "land":
            signal.raise_signal(signal.SIGINT)  # (the handler runs at the next bytecode: in this frame)
        return real_exit(self, typ, value, tb)

    contextlib._GeneratorContextManager.__exit__ = landing_exit
    out = sys.argv[2]
    got = CliRunner().invoke(main, ["replay", "--engine", "batch", "--threshold", "1", "-q", sys.argv[1], "-o", out])
    lines = sum(1 for _ in open(out)) if os.path.exists(out) else -1
    print(got.exit_code, lines, "|", got.output.strip())
    """
)


def _run(tmp_path: Path, land: str) -> tuple[int, int, str]:
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    out = tmp_path / f"{land}.ndjson"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(DEMO), str(out), land], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    code, lines, said = done.stdout.split(" ", 2)
    return int(code), int(lines), said


def test_a_signal_as_the_collector_block_ends_after_detection_keeps_the_alerts(tmp_path: Path) -> None:
    code, found, _ = _run(tmp_path, "none")
    assert code == 0 and found > 0
    code, lines, said = _run(tmp_path, "land")
    assert code == 130, said
    assert lines == found and f"{found:,} alerts written" in said, said
