"""review24 (session 17): simulate -o through a symbolic link (R24-4).

Since f9f8994 simulate writes beside the file ``-o`` names and renames over it. The part file is
named after the link's *target* (``.PID.part.TARGETNAME``) and its format is read from that name, so
``-o latest.ndjson`` linking to a file named otherwise (``recording-1``, ``day.ndjson.v2``) fails
"must end in .ndjson, ..." (exit 2), where 053d02d wrote the target by ``-o``'s name; and a link to
``/dev/stdout`` with stdout a pipe resolves to a path that does not exist (``/proc/PID/fd/pipe:[N]``),
is taken for "nothing yet", and fails "cannot write ... No such file or directory" (053d02d streamed it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dropengine.cli import main

_ROOT = Path(__file__).resolve().parents[1]
_SMALL = ["simulate", "--events", "2", "--books", "2", "--hours", "1"]


def test_a_link_named_for_the_format_to_a_file_named_otherwise(tmp_path: Path) -> None:
    target = tmp_path / "recording-1"
    target.write_bytes(b"old\n")
    link = tmp_path / "latest.ndjson"
    link.symlink_to(target)
    got = CliRunner().invoke(main, [*_SMALL, "-o", str(link)])
    assert got.exit_code == 0, got.output
    assert link.is_symlink()  # (the link stays one: its target is written)
    assert target.read_bytes().startswith(b'{"type"')
    assert not [p.name for p in tmp_path.iterdir() if ".part." in p.name]


def test_a_link_to_stdout_streams_into_a_pipe(tmp_path: Path) -> None:
    link = tmp_path / "out.ndjson"
    link.symlink_to("/dev/stdout")
    proc = subprocess.run(
        [sys.executable, "-m", "dropengine", *_SMALL, "-o", str(link)],
        capture_output=True,
        timeout=120,
        cwd=_ROOT,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b'{"type"')
