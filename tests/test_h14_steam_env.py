"""Issue 14: :mod:`dropengine.fast.signals` where numba can keep no cache (a read-only install and no
usable home directory, breaker14a F2): its passes compile in memory instead of failing. (Only the
smallest pass is compiled here: the others are jitted by the same lines, and compiling the routing
pass without a cache takes too long for a test.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import require_fast

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import numpy as np
from dropengine.fast import signals
order = signals.arrival_order(np.array([0, 3, 5]), np.array([3, 4]))
assert order.tolist() == [0, 1, 3, 4, 2], order
print("ok")
"""


def test_no_writable_numba_cache_compiles_in_memory(tmp_path: Path) -> None:
    require_fast()
    shutil.copytree(ROOT / "dropengine", tmp_path / "dropengine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "dropengine" / "fast" / "__pycache__").write_text("")  # no cache directory can be made there
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME="/dev/null", XDG_CACHE_HOME="/dev/null/cache", PYTHONPATH=str(tmp_path),
               PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-c", _CHILD], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
