"""reread20's RR20-1 (session 20): an output written whole (a file beside it, renamed over it) is
one rule for ``replay --output`` and ``simulate --out`` (:func:`dropengine.io.files.part_file`):
a FIFO, a device or a socket is written in place, as before, never replaced by a regular file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dropengine import DropEngine, Quote
from dropengine.core.alerts import Alert
from dropengine.io.files import part_file
from dropengine.io.sinks import AlertWriter


def _alerts() -> list[Alert]:
    engine = DropEngine(threshold=10)
    quotes = [Quote("nfl", "e1", "pin", "h2h_home", -110, 1000), Quote("nfl", "e1", "pin", "h2h_home", -130, 2000)]
    return [a for q in quotes for a in engine.observe(q)]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_fifo_output_gets_the_table_through_the_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert part_file(fifo) is None
    w = AlertWriter(fifo)
    w.write(_alerts())
    # (bounded: polars' own writers open a path twice, and a reader that took the first close for the
    # end of the file left the second open waiting for ever: a hung clean-clone CI, session 22)
    closing = threading.Thread(target=w.close, daemon=True)
    closing.start()
    closing.join(timeout=30)
    assert not closing.is_alive(), "the write to the FIFO still waits for a reader"
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert w.written
    assert got and got[0].splitlines()[0].startswith(b"type,") and len(got[0].splitlines()) == 2
    assert fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_regular_or_new_file_is_written_beside_it_and_a_long_name_keeps_its_extensions(tmp_path: Path) -> None:
    new = tmp_path / "a.csv.gz"
    part = part_file(new)
    assert part is not None and part.parent == tmp_path and part.name.endswith(".a.csv.gz")
    long = tmp_path / ("x" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 8) + ".csv.gz")
    part = part_file(long)
    assert part is not None and part.name == f".{os.getpid()}.part.csv.gz"
