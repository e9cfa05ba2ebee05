"""fix15c: the dead-letter file never holds its caller (B15C-8): a FIFO without a reader is
refused at construction (opening it would wait for one), and a reader that stalls holds only
the file's writer thread; what was handed over is in the file once flushed."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from dropengine.core.errors import ConfigError
from dropengine.deliver import DeadLetterFile


def test_a_fifo_without_a_reader_is_refused_naming_the_flag(tmp_path: Path) -> None:
    fifo = tmp_path / "dead.fifo"
    os.mkfifo(fifo)
    box: list[BaseException] = []

    def build() -> None:
        try:
            DeadLetterFile(fifo, "--dead-letter")
        except ConfigError as exc:
            box.append(exc)

    t = threading.Thread(target=build, daemon=True)
    t.start()
    t.join(5.0)
    if t.is_alive():  # unblock the open so the thread ends, then fail
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        pytest.fail("DeadLetterFile waited for a reader of its FIFO")
    assert box and "--dead-letter" in str(box[0]) and "no reader" in str(box[0])


def test_records_are_written_by_the_files_thread_and_counted(tmp_path: Path) -> None:
    dead = DeadLetterFile(tmp_path / "dead.ndjson")
    got: list[int] = []
    assert dead.write([b'{"a":1}\n', b'{"a":2}\n'], got.append) == 2
    assert dead.write([b'{"a":3}\n']) == 1
    assert dead.flush(10.0)
    assert [json.loads(x)["a"] for x in (tmp_path / "dead.ndjson").read_text().splitlines()] == [1, 2, 3]
    assert got == [2] and (dead.written, dead.lost) == (3, 0)


def test_a_full_buffer_counts_the_loss_and_never_waits(tmp_path: Path) -> None:
    fifo = tmp_path / "dead.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, but never reads
    try:
        dead = DeadLetterFile(fifo, max_pending_bytes=1000)
        taken = sum(dead.write([b"x" * 99 + b"\n"]) for _ in range(2000))  # 200 KB: past the pipe and the buffer
        assert taken < 2000 and dead.lost >= 2000 - taken - 1000 // 100
    finally:
        os.close(reader)  # the writer thread's next write fails (EPIPE): counted as lost, the thread ends
    assert dead.flush(10.0)
    assert dead.written + dead.lost == 2000


def test_a_batch_broken_off_mid_line_does_not_glue_the_next_record(tmp_path: Path) -> None:
    """A reader that leaves part-way through a batch (EPIPE; a disk that fills: ENOSPC): the
    next record starts on a line of its own."""
    fifo = tmp_path / "dead.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    dead = DeadLetterFile(fifo)
    dead.write([b"x" * 99 + b"\n"] * 2000)  # 200 KB: far past the pipe's buffer
    got = b""
    deadline = time.monotonic() + 10
    while len(got) < 1000 and time.monotonic() < deadline:  # the writer thread has begun the batch
        try:
            got += os.read(reader, 1000 - len(got))
        except BlockingIOError:
            time.sleep(0.01)
    os.close(reader)  # the reader leaves mid-batch: the rest fails (EPIPE), counted as lost
    assert dead.flush(10.0) and dead.lost == 2000
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        dead.write([b'{"next":1}\n'])
        assert dead.flush(10.0) and dead.written == 1
        after = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert after == b'\n{"next":1}\n'  # the broken line ended first, the record whole on its own line
