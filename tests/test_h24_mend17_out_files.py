"""mend17 (session 17): simulate's part file and backtest's report deferral (R24-4, B24-4, R24-8).

simulate writes a file beside ``-o``'s target named from the name given (``.PID.part.NAME``: its
extensions decide the format) and renames it over the target; what is written in place instead is
decided by ``os.stat`` of the name given (a FIFO, a device: in place) and by whether the part file can
be made at all (a name past the directory's limit, a directory it may not write: in place). backtest
holds a signal while its report is written and acts on it as soon as the report is whole, not after
its last line is printed.
"""

from __future__ import annotations

import gzip
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli import main

from .ctrlc_util import ctrl_c_in_import
from .test_backtest import TABLE

_ARGS = ["simulate", "--events", "2", "--books", "3", "--hours", "2", "--seed", "7"]
SAID = {signal.SIGINT: ("interrupted (Ctrl-C)", 130), signal.SIGTERM: ("terminated (SIGTERM)", 143)}


def _fresh(tmp_path: Path, name: str) -> bytes:
    """The recording a plain run writes to a new file named ``name`` (the reference bytes)."""
    ref = tmp_path / "ref"
    ref.mkdir(exist_ok=True)
    got = CliRunner().invoke(main, [*_ARGS, "-o", str(ref / name)])
    assert got.exit_code == 0, got.output
    return (ref / name).read_bytes()


def _parts(*dirs: Path) -> list[str]:
    return [p.name for d in dirs for p in d.iterdir() if ".part." in p.name]


def test_a_dangling_link_gets_its_target_made_and_stays_a_link(tmp_path: Path) -> None:
    where = tmp_path / "store"
    where.mkdir()
    link = tmp_path / "latest.ndjson"
    link.symlink_to(where / "recording-2")  # (no such file yet: the target is made, by -o's name's format)
    got = CliRunner().invoke(main, [*_ARGS, "-o", str(link)])
    assert got.exit_code == 0, got.output
    assert link.is_symlink()
    assert (where / "recording-2").read_bytes() == _fresh(tmp_path, "x.ndjson")
    assert not _parts(tmp_path, where)


def test_the_format_and_compression_come_from_the_name_given_not_the_targets(tmp_path: Path) -> None:
    where = tmp_path / "store"
    where.mkdir()
    target = where / "day.ndjson"  # (its own name says: plain frames)
    target.write_bytes(b"old\n")
    link = tmp_path / "day.csv.gz"
    link.symlink_to(target)
    got = CliRunner().invoke(main, [*_ARGS, "-o", str(link)])
    assert got.exit_code == 0, got.output
    assert link.is_symlink()
    assert gzip.decompress(target.read_bytes()) == gzip.decompress(_fresh(tmp_path, "x.csv.gz"))
    assert not _parts(tmp_path, where)


def test_a_previous_file_whose_name_leaves_no_room_for_the_part_name_is_written_whole_by_a_short_one(
    tmp_path: Path,
) -> None:
    """Until session 20 the longest name was written in place (``.PID.part.NAME`` did not fit); since
    io.files.part_file (one rule with ``replay --output``) its part is ``.PID.part`` + the name's last
    two extensions: written whole too, a rename (another inode), no part left."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("r" * (limit - len(".csv")) + ".csv")  # (the longest name the directory takes)
    out.write_bytes(b"a previous recording\n")
    inode = out.stat().st_ino
    got = CliRunner().invoke(main, [*_ARGS, "-o", str(out)])
    assert got.exit_code == 0, got.output
    assert out.stat().st_ino != inode  # (renamed over it: a part beside it, by a short name)
    assert out.read_bytes() == _fresh(tmp_path, "x.csv")
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
    # a name the part name still fits: a rename (another inode), the same bytes
    short = tmp_path / ("r" * (limit - len(".csv") - len(f".{os.getpid()}.part.")) + ".csv")
    short.write_bytes(b"a previous recording\n")
    inode = short.stat().st_ino
    got = CliRunner().invoke(main, [*_ARGS, "-o", str(short)])
    assert got.exit_code == 0, got.output
    assert short.stat().st_ino != inode and short.read_bytes() == out.read_bytes()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_backtest_a_signal_after_the_report_is_written_says_so(tmp_path: Path, signum: int) -> None:
    """R24-8: the deferral ends with the report; a signal while its last line is printed is said as
    coming after it (the report whole), not as coming while it was written."""
    table = tmp_path / "q.parquet"
    TABLE.write_parquet(table)
    out = tmp_path / "report"
    # (with -q no spinner: rich's emoji table is first imported by the print of the files written)
    got, err = ctrl_c_in_import(
        ["backtest", "-q", "--close", "last", "--out", str(out), str(table)], "rich._emoji_codes", signum=signum
    )
    said, code = SAID[signum]
    assert "Traceback" not in err, err[-2000:]
    assert got == code, err[-2000:]
    assert err.strip().splitlines() == [f"{said} after the report was written: written whole to {out}"]
    assert {"alerts.parquet", "alerts.csv", "summary.csv", "report.md"} <= {p.name for p in out.iterdir()}
