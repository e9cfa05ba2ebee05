"""break24 (session 17): simulate writes to any file name the file system takes (B24-4).

Since f9f8994 (ctrl17) simulate writes the recording to a file beside ``--out`` named
``.PID.part.NAME`` and renames it over ``--out`` once complete, so that an interrupted run leaves a
previous file as it was. That name is longer than ``NAME`` by ``.PID.part.`` (11-18 characters): a
valid ``--out`` whose name is within that of the file system's limit (255 bytes on Linux) cannot get
its part file, and the run fails with "cannot write ...: File name too long" (exit 2) where 053d02d
wrote it. The file name's length is the file system's own limit minus a few characters.
"""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from dropengine.cli import main


def _long_name(directory: Path, suffix: str) -> str:
    """A file name of the directory's file system's longest length but 4, ending in ``suffix``."""
    limit = os.pathconf(directory, "PC_NAME_MAX")
    return "r" * (limit - 4 - len(suffix)) + suffix


def test_simulate_writes_a_file_whose_name_is_near_the_limit(tmp_path: Path) -> None:
    out = tmp_path / _long_name(tmp_path, ".ndjson")
    out.write_bytes(b"")  # (the control: the file system takes the name)
    out.unlink()
    got = CliRunner().invoke(main, ["simulate", "--events", "2", "--books", "2", "--hours", "1", "-o", str(out)])
    assert got.exit_code == 0, got.output
    assert out.stat().st_size > 0
