"""``dropengine.fast.warm_up`` (session 15, sig15): once numba and the cached kernels are loaded,
its thread takes the objects alive then out of the cyclic collector's walks (``gc.freeze``), so
that no later full collection, the interpreter's at exit among them, walks numba's ~100k objects
again; objects made afterwards are collected as before. Checked in a fresh process (the freeze
is process-wide), by counts, never by time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import require_fast

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import gc, sys
import dropengine.fast as f
before = gc.get_freeze_count()
t = f.warm_up()
t.join()
frozen = gc.get_freeze_count()
import numba
# numba's module objects are among the frozen ones: a full collection no longer walks them
numba_tracked = sum(1 for o in gc.get_objects() if getattr(o, "__module__", "") and
                    str(getattr(o, "__module__", "")).startswith("numba"))
class Cycle:
    pass
a, b = Cycle(), Cycle()
a.other, b.other = b, a
del a, b
collected = gc.collect()
print(before, frozen, numba_tracked, collected)
"""


def test_warm_up_freezes_what_it_loaded_and_later_garbage_is_still_collected() -> None:
    require_fast()
    env = {k: v for k, v in os.environ.items() if k != "DROPENGINE_PURE"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, frozen, numba_tracked, collected = map(int, done.stdout.split())
    assert before == 0
    # numba and the kernels are tens of thousands of objects (~100k with polars' and ours)
    assert frozen > 20_000
    # gc.get_objects() lists the collector's generations, not the frozen (permanent) one
    assert numba_tracked == 0
    # a cycle made after the warm-up is garbage the collector still finds (its two objects, their dicts)
    assert collected >= 2
