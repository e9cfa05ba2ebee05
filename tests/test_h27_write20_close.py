"""Session 20 (write20, critic20's C20-4): a CSV/Parquet output is whole or as it was; a cut write is redone.

polars aborts a query (a Parquet or CSV write among them) with ``KeyboardInterrupt('')`` on a
Ctrl-C. ``AlertWriter.close`` writes the table to a temporary file beside the path and puts it in
place only when complete; a close whose write failed keeps the table, says so
(``AlertWriter.written`` is false) and writes it when called again. Pinned here, for a batch run's
table and for alert values' rows, Parquet and CSV: a write that fails after writing part of its
file leaves the path's old bytes and no temporary file; the next close writes the whole table
(the same file a close that never failed writes); NDJSON's ``written`` after its close.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.options import DetectOptions
from dropengine.formats.tables import QUOTE_COLUMNS, table_row
from dropengine.io import files, sinks
from dropengine.io.sinks import AlertWriter


def _result() -> Any:
    quotes = [
        Quote("nfl", "e1", "pin", "h2h_home", 120, 1000),
        Quote("nfl", "e1", "pin", "h2h_home", 100, 2000),
        Quote("nfl", "e1", "dk", "h2h_home", 130.5, 1200),
        Quote("nfl", "e1", "dk", "h2h_home", 110.5, 2200),
        Quote("nfl", "e2", "pin", "spread_home@-3", -110, 1000),
        Quote("nfl", "e2", "pin", "spread_home@-3.5", -110, 3000),
    ]
    rows = [table_row(q) for q in quotes]
    frame = pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS}, strict=False)
    options = DetectOptions.build(types="odds_drop,line_move")
    return detect_counted(frame, options), options


def _writer(path: Path, how: str) -> AlertWriter:
    result, options = _result()
    w = AlertWriter(path, types=options.types)
    if how == "batch":
        w.write_batch(result)
    else:
        w.write(result.alert_values())
    assert w.count  # the premise: a table to write
    return w


@pytest.mark.parametrize("how", ["batch", "rows"])
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_cut_write_leaves_the_old_file_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, suffix: str
) -> None:
    want = tmp_path / f"want{suffix}"
    w = _writer(want, how)
    w.close()  # the file a close that never failed writes
    assert w.written

    path = tmp_path / ("o" * 240 + suffix)  # a long name (the file system allows 255): the temporary one is short
    path.write_bytes(b"the previous run's file")
    cuts: list[Path] = []

    def cut(real: Any) -> Any:
        def write(frame: Any, file: Any, *args: Any, **kwargs: Any) -> None:
            if not cuts:  # the first write: part of a file, then polars' abort
                cuts.append(Path(file))
                Path(file).write_bytes(b"PAR1 half a table")
                raise KeyboardInterrupt("")
            real(frame, file, *args, **kwargs)

        return write

    if suffix == ".parquet":
        monkeypatch.setattr(sinks, "_write_parquet", cut(sinks._write_parquet))
    else:
        monkeypatch.setattr(pl.DataFrame, "write_csv", cut(pl.DataFrame.write_csv))
    w = _writer(path, how)
    with pytest.raises(KeyboardInterrupt):
        w.close()
    assert cuts and cuts[0] != path  # written beside the path, not over it
    assert path.read_bytes() == b"the previous run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, want.name])  # no temporary file left
    assert not w.written
    w.close()  # again: the whole table
    assert w.written
    assert path.read_bytes() == want.read_bytes()
    w.close()  # written: nothing more
    assert path.read_bytes() == want.read_bytes()


def test_a_failed_write_is_a_config_error_and_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.parquet"
    path.write_bytes(b"the previous run's file")

    def full(frame: Any, file: Any) -> None:
        Path(file).write_bytes(b"PAR1 half a table")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sinks, "_write_parquet", full)
    w = _writer(path, "batch")
    with pytest.raises(sinks.ConfigError, match="cannot write"):
        w.close()
    assert not w.written
    assert path.read_bytes() == b"the previous run's file"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_ndjson_is_written_once_closed(tmp_path: Path) -> None:
    w = _writer(tmp_path / "out.ndjson", "rows")
    assert not w.written
    w.close()
    assert w.written
    assert (tmp_path / "out.ndjson").read_bytes().count(b"\n") == w.count


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_through_a_symlink_with_the_old_mode_and_a_long_name(tmp_path: Path, suffix: str) -> None:
    want = tmp_path / f"want{suffix}"
    w = _writer(want, "rows")
    w.close()
    real = tmp_path / "real" / ("a" * 240 + suffix)  # a long name (the file system allows 255)
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / f"link{suffix}"
    link.symlink_to(real)
    w = _writer(link, "rows")
    w.close()
    assert w.written
    assert link.is_symlink()  # written through the link, as a write in place is
    assert real.read_bytes() == want.read_bytes()
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == [real.name]


def test_written_in_place_where_no_file_can_be_made_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = tmp_path / "want.parquet"
    w = _writer(want, "batch")
    w.close()
    path = tmp_path / "out.parquet"
    path.write_bytes(b"old")
    # (a folder this process may not write: io.files.part_file gives no file beside it)
    monkeypatch.setattr(files.os, "access", lambda *args, **kwargs: False)
    inode = path.stat().st_ino
    w = _writer(path, "batch")
    w.close()
    assert w.written
    assert path.read_bytes() == want.read_bytes()
    assert path.stat().st_ino == inode  # (written in place, not renamed over)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "want.parquet"]
