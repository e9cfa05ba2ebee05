"""Issue 14 breaker (breaker14a): the compiled batch path's environment: numba missing, numba
present but broken, no writable numba cache, and the kernel's key-id arithmetic at its limits.

The contract (/tmp/notes/API14.md): ``accel="auto"`` runs compiled when it can and otherwise
gives the pure path's identical results; ``accel="fast"`` without a usable numba is a
ConfigError; importing dropengine loads no numba."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .conftest import require_fast

ROOT = Path(__file__).resolve().parents[1]

# A child script: pure vs auto (and fast) on a small table with every signal; prints JSON.
_SCRIPT = r"""
import json, sys
import polars as pl
from dropengine.analysis.batch import detect_counted
from dropengine.core.errors import ConfigError
from dropengine.core.alerts import encode_alert
T0 = 1_747_000_000_000
df = pl.DataFrame(dict(
    sport_key=["americanfootball_nfl"] * 6, event_id=["e"] * 6, bookmaker=["a", "b", "a", "b", "a", "b"],
    side=["spread_home@-3", "spread_home@-3", "spread_home@-3", "spread_home@-3", "spread_home@-3.5", "h2h_home"],
    price=[-110, -110, -130, -130, -110, -150], last_update=[T0, T0, T0 + 5, T0 + 6, T0 + 7, T0 + 8],
))
opts = dict(types="odds_drop,line_move,steam", steam_books=2)
pure = detect_counted(df, accel="pure", **opts)
out = {"pure": [encode_alert(a).decode() for a in pure.alert_values()], "pure_counters": repr(pure.counters)}
try:
    auto = detect_counted(df, accel="auto", **opts)
    out["auto"] = [encode_alert(a).decode() for a in auto.alert_values()]
    out["auto_counters"] = repr(auto.counters)
except Exception as e:
    out["auto"] = f"{type(e).__name__}: {e}"
try:
    detect_counted(df, accel="fast", **opts)
    out["fast"] = "ran"
except ConfigError as e:
    out["fast"] = f"ConfigError: {e}"
except Exception as e:
    out["fast"] = f"{type(e).__name__}: {e}"
out["numba_loaded"] = "numba" in sys.modules and sys.modules["numba"] is not None
print(json.dumps(out))
"""


def _child(env: dict[str, str], cwd: Path, pythonpath: str) -> dict[str, object]:
    full = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "DROPENGINE_PURE")}
    full.update(env, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=full, cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_no_numba_auto_is_pure_and_fast_is_a_config_error(tmp_path: Path) -> None:
    """numba not importable at all (a finder refuses it): ``auto`` gives pure's alerts and
    counters, ``fast`` the contract's ConfigError, and numba is never loaded."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['numba'] = None  # import numba: ImportError\n")
    out = _child({}, tmp_path, f"{site}{os.pathsep}{ROOT}")
    assert out["auto"] == out["pure"] and out["auto_counters"] == out["pure_counters"]
    assert out["pure"], "the table alerts (the comparison is not vacuous)"
    assert str(out["fast"]).startswith("ConfigError: accel: 'fast' needs numba")
    assert out["numba_loaded"] is False


def test_broken_numba_auto_is_pure(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    (bad / "numba").mkdir(parents=True)
    (bad / "numba" / "__init__.py").write_text('raise ImportError("Numba needs NumPy 2.3 or less. Got NumPy 2.4.")\n')
    out = _child({}, tmp_path, f"{bad}{os.pathsep}{ROOT}")
    assert out["auto"] == out["pure"] and out["auto_counters"] == out["pure_counters"]
    assert str(out["fast"]).startswith("ConfigError: accel: 'fast' needs numba")


def test_unwritable_numba_cache_does_not_crash(tmp_path: Path) -> None:
    """The package's ``fast/__pycache__`` cannot be created (a file sits there: root ignores
    permissions, a file does not) and HOME is not a directory: numba has nowhere to cache. The
    compiled modules still load (numba raised at their import, at the ``cache=True`` jit); only
    the import is asked, so the child compiles nothing (a compile without a cache takes minutes
    on a loaded 2-core box)."""
    require_fast()
    copy = tmp_path / "ro"
    shutil.copytree(ROOT / "dropengine", copy / "dropengine", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "dropengine" / "fast" / "__pycache__").write_text("not a directory\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "DROPENGINE_PURE")}
    env.update(HOME="/dev/null", XDG_CACHE_HOME="/dev/null/cache", PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    script = ("import dropengine.fast as f, dropengine.fast.kernel, dropengine.fast.signals\n"
              "assert f.resolve_accel('auto') is True\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=copy, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_pure_env_makes_fast_a_config_error_and_auto_pure() -> None:
    """DROPENGINE_PURE=1: auto is pure, fast names the variable, and no numba is loaded."""
    out = _child({"DROPENGINE_PURE": "1"}, ROOT, str(ROOT))
    assert out["auto"] == out["pure"]
    assert "DROPENGINE_PURE=1" in str(out["fast"]) and str(out["fast"]).startswith("ConfigError")
    assert out["numba_loaded"] is False


def test_key_ids_code_product_does_not_overflow() -> None:
    require_fast()
    from dropengine.fast import kernel

    n = 2**21
    a = np.array([0, 1, n - 1], np.int64)
    b = np.array([0, 1, 5], np.int64)
    c = np.array([0, 0, 3], np.int64)
    ids, k = kernel.key_ids(a, b, c, n, n, n)
    assert k >= 3 and len(set(ids.tolist())) == 3 and all(0 <= i < k for i in ids.tolist())


def test_key_ids_hashed_branch_distinct_triples() -> None:
    """Beyond the direct slots: one id per distinct triple, distinct triples distinct ids, every
    id below the bound returned (the state arrays' size)."""
    require_fast()
    from dropengine.fast import kernel

    rng = np.random.default_rng(7)
    na, nb, nc = 300, 300, 3
    a = rng.integers(0, na, 5000)
    b = rng.integers(0, nb, 5000)
    c = rng.integers(-1, nc, 5000)
    ids, k = kernel.key_ids(a, b, c, na, nb, nc)
    triples = {}
    for x, y, z, i in zip(a.tolist(), b.tolist(), c.tolist(), ids.tolist(), strict=True):
        if z < 0:
            assert i == -1
            continue
        assert triples.setdefault((x, y, z), i) == i
    assert len(set(triples.values())) == len(triples)
    assert all(0 <= i < k for i in triples.values())


def test_warm_up_imports_numba_in_its_thread() -> None:
    """Which thread imports numba when ``replay --engine batch`` warms up: the warm-up thread,
    not the caller's (a finder records the importing thread; no timing)."""
    require_fast()
    script = (
        "import sys, threading\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numba':\n"
        "            seen.append(threading.current_thread().name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Spy())\n"
        "import dropengine.fast as f\n"
        "t = f.warm_up()\n"
        "t.join()\n"
        "print(seen[-1])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DROPENGINE_PURE"}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "dropengine-fast-warm-up"
