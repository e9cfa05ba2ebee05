"""``fast.warm_up(signals=False)`` (session 15, sig15; review22's R22-5): a run that detects price
drops alone loads the kernel but not the signals pass, so a cold numba cache is never compiled in
a thread the process may kill at exit. Checked in fresh processes by what was loaded, not by time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import require_fast

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import dropengine.fast as f
t = f.warm_up(signals=sys.argv[1] == "1")
t.join()
from dropengine.fast import kernel, signals
print(len(signals._JIT), "dense_codes" in dir(kernel))
"""


@pytest.mark.parametrize(("signals", "loaded"), [("1", True), ("0", False)])
def test_warm_up_loads_the_signals_pass_only_when_asked(signals: str, loaded: bool) -> None:
    require_fast()
    env = {k: v for k, v in os.environ.items() if k != "DROPENGINE_PURE"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, signals], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    n_jit, has_kernel = done.stdout.split()
    assert has_kernel == "True"
    assert (int(n_jit) > 0) == loaded
