"""The ``replay`` command's collector policy (session 17): while its stream engine runs, what
survives a collection of the older generations is frozen (a growing replay state is not walked by
every full collection), and the collector is left as it was when the block ends, however it ends.
The library's ``replay()`` leaves the collector alone (review24's R24-3: a caller's cycles and its
own freezes are the caller's; tests/test_h24_review24_replay_gc.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine import DropEngine
from dropengine.cli import main
from dropengine.cli import replay as cli_replay
from dropengine.io.replay import ReplayStats, replay

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo_nba_frames.ndjson"


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    gc.unfreeze()
    callbacks = list(gc.callbacks)
    yield
    assert gc.callbacks == callbacks
    gc.unfreeze()


def test_survivors_are_frozen_in_the_block_and_unfrozen_after() -> None:
    with cli_replay._long_lived_frozen():
        kept = [[i] for i in range(1000)]
        gc.collect(1)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert kept


def test_the_collector_is_restored_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError, match="a caller's error"), cli_replay._long_lived_frozen():
        gc.collect(1)
        assert gc.get_freeze_count() > 0
        raise RuntimeError("a caller's error")
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_made_in_the_block_is_collected_after_it() -> None:
    class Node:
        other: object

    with cli_replay._long_lived_frozen():
        for _ in range(100):
            a, b = Node(), Node()
            a.other, b.other = b, a
            gc.collect(1)  # (alive at a collection: frozen with the rest)
            del a, b
    assert gc.collect() >= 200  # freed once the block ended


def test_what_another_part_froze_stays_frozen() -> None:
    mine = [[i] for i in range(100)]
    gc.freeze()
    before = gc.get_freeze_count()
    with cli_replay._long_lived_frozen():
        gc.collect(1)
    assert gc.get_freeze_count() >= before > 0
    assert mine


def test_the_library_replay_leaves_the_collector_alone() -> None:
    seen = []
    for _ in replay([DEMO], DropEngine(threshold=1), "frames", ReplayStats()):
        gc.collect(1)
        seen.append(gc.get_freeze_count())
    assert seen and max(seen) == 0


def test_the_command_runs_its_stream_engine_under_the_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entered = []
    real = cli_replay._long_lived_frozen

    def spy(guard: object) -> object:
        entered.append(guard is not None)  # (the command hands its guard: RR21-6)
        return real(guard)  # type: ignore[arg-type]

    monkeypatch.setattr(cli_replay, "_long_lived_frozen", spy)
    out = tmp_path / "a.ndjson"
    got = CliRunner().invoke(main, ["replay", "--threshold", "1", "-q", str(DEMO), "-o", str(out)])
    assert got.exit_code == 0, got.output
    assert entered == [True] and out.stat().st_size > 0
    assert gc.get_freeze_count() == 0
