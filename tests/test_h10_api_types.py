"""Issue 10: ``direction`` is a Literal, so ``mypy --strict`` catches ``direction="down"``.

The snippet is type-checked by mypy itself (``mypy.api.run``), as a user's code would be.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = '''\
from dropengine import DirectionChoice, DropEngine
from dropengine.analysis.batch import detect, detect_counted
import polars as pl

good: DirectionChoice = "toward_dog"
DropEngine(10, good)
DropEngine(direction="toward_favorite")
DropEngine(direction="down")  # BAD 1
detect(pl.DataFrame(), direction="both")
detect(pl.DataFrame(), direction="up")  # BAD 2
detect_counted(pl.DataFrame(), threshold=10, direction="sideways")  # BAD 3
bad: DirectionChoice = "down"  # BAD 4
'''


def test_mypy_strict_rejects_a_direction_that_does_not_exist(tmp_path: Path) -> None:
    src = tmp_path / "user_code.py"
    src.write_text(textwrap.dedent(SNIPPET), encoding="utf-8")
    out, err, status = mypy_api.run([
        "--strict", "--no-incremental", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
        "--python-version", "3.11", str(src),
    ])
    errors = [line for line in out.splitlines() if ": error:" in line]
    bad_lines = {i for i, line in enumerate(SNIPPET.splitlines(), 1) if "# BAD" in line}
    flagged = {int(line.split(":")[1]) for line in errors}
    assert flagged == bad_lines, out + err
    assert status == 1
