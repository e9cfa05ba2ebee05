"""critic20 (session 20), C20-5: ``--output`` through a symlink, and a long valid output name (regression tests:
fixed by 82ad845; strict xfails before).

0ca012a writes a CSV/Parquet output to a temporary file beside the path and renames it over the path
(``os.replace``): where the path is a symlink, the link itself is replaced by a regular file and the file it
pointed to keeps its old content. Before, the output was written through the link (9cc3fe7). Pinned through the
writer itself (the CLI's ``-o`` is this writer): the link stays a link, its target holds the table.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine.io.sinks import AlertWriter


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_an_output_through_a_symlink_is_written_to_its_target(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "real" / f"alerts.{kind}"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / f"link.{kind}"
    link.symlink_to(target)
    with AlertWriter(link) as writer:
        writer.write([])
    assert link.is_symlink()
    got = pl.read_csv(target) if kind == "csv" else pl.read_parquet(target)
    assert "type" in got.columns or "sport_key" in got.columns  # the alerts table's header, not "old"


def test_a_long_valid_output_name_is_written(tmp_path: Path) -> None:
    out = tmp_path / ("a" * 246 + ".csv")  # 250 characters: a valid name (NAME_MAX 255)
    with AlertWriter(out) as writer:
        writer.write([])
    assert "sport_key" in pl.read_csv(out).columns
