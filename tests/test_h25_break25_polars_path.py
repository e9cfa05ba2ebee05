"""break25 (session 18), B25-4: the put-off rule for signals in polars' callbacks knows polars by
where it was imported from, whatever that folder is called (fixed in fe84b67; it knew polars by a
directory named ``site-packages`` or ``dist-packages`` in its frames' file names).

cli/interrupt.py (fix18's 1dd609a, narrowed in 3190146) puts off a signal handled in the Python that
native code calls back (polars, numba, llvmlite) and recognises those frames by
``{sep}site-packages{sep}polars{sep}`` in ``co_filename``. polars imported from any other directory
(``pip install --target DIR`` with ``PYTHONPATH=DIR``, a vendored or zipped dependency folder, a
symlinked environment) was not recognised: a signal in ``Categories._from_py_categories`` (a
Categorical Parquet schema read) is raised into polars' Rust again, review24's R24-12: a
``PanicException``, a traceback and exit 1. Here polars is the venv's own, reached through a symlink
named ``polars`` in a folder put first on ``PYTHONPATH`` (the file names then hold that folder).
The same child as test_h24_review24_polars_callback_ctrlc forces the signal inside the callback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .test_h24_review24_polars_callback_ctrlc import _CHILD, _quotes

_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_in_a_callback_of_polars_from_another_folder_ends_by_the_policy(tmp_path: Path, signame: str) -> None:
    quotes = _quotes(tmp_path / "q.parquet")
    deps = tmp_path / "deps"  # (as pip install --target deps leaves it)
    deps.mkdir()
    (deps / "polars").symlink_to(Path(pl.__file__).parent, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(deps), str(_ROOT)])}
    argv = ["replay", "--engine", "batch", str(quotes), "-q", "-o", str(tmp_path / "a.ndjson")]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, signame, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert "SENT IN THE CALLBACK" in proc.stderr.splitlines(), proc.stderr[-2000:]  # (the case itself)
    assert "PanicException" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == (143 if signame == "SIGTERM" else 130), (proc.returncode, proc.stderr[-2000:])
