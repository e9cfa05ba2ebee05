"""Issue 14 (session 19, kernel19): the compiled passes ask for a later row's state ahead of it.

- ``kernel.detect_pass`` and ``kernel.key_ids`` read a row ``kernel._AHEAD`` (and ``2 * _AHEAD``)
  rows on, to prefetch the key state or table slot it will touch: that read stays inside the
  columns for every length, also around the look-ahead itself (run with numba's bounds checks
  on, in a process of its own with a fresh cache: an index past a column's end is an IndexError
  there, where the normal build would read past the end unnoticed). The results are the normal
  build's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import require_fast

ROOT = Path(__file__).resolve().parent.parent

#: Runs the passes on inputs of lengths around the look-ahead; prints their results as JSON.
_SCRIPT = r"""
import json, sys
import numpy as np
from dropengine.fast import kernel

out = []
for n in json.loads(sys.argv[1]):
    rng = np.random.default_rng(n)
    kid = rng.integers(0, 7, n).astype(np.int32)
    lid = rng.integers(-1, 3, n).astype(np.int32)
    lu = rng.integers(0, 50, n).astype(np.int64)
    price = rng.choice([100.0, -120.0, 150.0, -200.0, 250.0], n)
    null = rng.random(n) < 0.1
    invalid = rng.random(n) < 0.05
    line_only = rng.random(n) < 0.05
    line = rng.choice([0.5, 1.5, 3.0, -2.5], n)
    cut = n // 2  # two chunks: a chunk's rows look ahead into the next one's
    m = kernel.detect_pass(kid, 7, lid, 3, [lu[:cut], lu[cut:]], [price[:cut], price[cut:]], null, invalid,
                           line_only, line, True, bool(n % 2), False, 10.0, 0.5)
    # (event, side) pairs through the lookup tables: more combinations than DIRECT_SLOTS
    a = rng.integers(0, 300, n).astype(np.int32)
    b = rng.integers(0, 2, n).astype(np.int32)
    c = rng.integers(-1, 300, n).astype(np.int32)
    ids, k = kernel.key_ids(a, b, c, 300, 2, 300)
    out.append([m.moves.tolist(), m.refs.tolist(), m.lmoves.tolist(), m.lrefs.tolist(), m.lprices.tolist(),
                m.counts.tolist(), ids.tolist(), int(k)])
print(json.dumps(out))
"""


def _lengths() -> list[int]:
    from dropengine.fast import kernel

    ahead = kernel._AHEAD
    return sorted({0, 1, 2, ahead - 1, ahead, ahead + 1, 2 * ahead - 1, 2 * ahead, 2 * ahead + 1, 3 * ahead + 5, 100})


def test_look_ahead_stays_inside_the_columns(tmp_path: Path) -> None:
    require_fast()
    lengths = _lengths()
    env = {
        **os.environ,
        "NUMBA_BOUNDSCHECK": "1",
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("NUMBA_DISABLE_JIT", None)
    checked = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(lengths)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    # the same script in the normal build (no bounds checks, the cache): the same results
    here = {**os.environ, "PYTHONPATH": env["PYTHONPATH"]}
    plain = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(lengths)],
        env=here,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert json.loads(checked.stdout) == json.loads(plain.stdout)
