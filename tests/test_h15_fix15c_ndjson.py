"""fix15c: an ndjson:PATH sink whose file cannot be written (a full disk: /dev/full) counts
its alerts as failed and says why, never raising into the caller (B15C-14)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dropengine.deliver.ndjson import NdjsonSink
from dropengine.deliver.options import sinks_summary

from .test_h15_sinks_rules import drop


def test_a_full_disk_is_counted_not_raised(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    full = tmp_path / "full.ndjson"
    full.symlink_to("/dev/full")
    sink = NdjsonSink(path=full)
    assert [sink.offer(drop(i)) for i in range(3)] == [False] * 3
    assert sink.offer_many([drop(3), drop(4)]) == 0
    asyncio.run(sink.aclose())
    c = sink.counters
    assert (c.offered, c.delivered, c.failed) == (5, 0, 5)
    [line] = sinks_summary([sink])
    assert "failed 5" in line and "No space left on device" in line


def test_a_writable_file_is_written_as_before(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    sink = NdjsonSink(path=path)
    assert sink.offer(drop(1)) and sink.offer_many([drop(2), drop(3)]) == 2
    asyncio.run(sink.aclose())
    assert len(path.read_text().splitlines()) == 3 and sink.error is None
    assert sinks_summary([sink]) == [f"ndjson {path}: delivered 3 of 3"]
