"""io.replay's collector policy (session 17): while a replay runs, what survives a collection of
the older generations is frozen (a growing replay state is not walked by every full collection),
and the collector is left as it was when the replay ends, however it ends."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo_nba_frames.ndjson"


@pytest.fixture(autouse=True)
def _collector_as_found() -> None:
    gc.unfreeze()
    assert gc.isenabled()


@pytest.mark.parametrize("fused", [True, False])
def test_survivors_are_frozen_while_the_replay_runs_and_unfrozen_after(fused: bool) -> None:
    callbacks = list(gc.callbacks)
    seen = []
    for _ in replay([DEMO], DropEngine(threshold=1), "frames", ReplayStats(), fused=fused):
        gc.collect(1)
        seen.append(gc.get_freeze_count())
    assert seen and min(seen) > 0  # the policy is on while the replay runs
    assert gc.get_freeze_count() == 0
    assert gc.callbacks == callbacks


def test_the_collector_is_restored_when_the_replay_is_closed_early_or_fails(tmp_path: Path) -> None:
    callbacks = list(gc.callbacks)
    it = replay([DEMO], DropEngine(threshold=1), "frames", ReplayStats())
    next(it)
    gc.collect(1)
    assert gc.get_freeze_count() > 0
    it.close()
    assert gc.get_freeze_count() == 0 and gc.callbacks == callbacks
    with pytest.raises(RuntimeError, match="a caller's error"):
        for _ in replay([DEMO], DropEngine(threshold=1), "frames", ReplayStats()):
            gc.collect(1)
            raise RuntimeError("a caller's error")
    assert gc.get_freeze_count() == 0 and gc.callbacks == callbacks


def test_cyclic_garbage_made_during_a_replay_is_collected_after_it() -> None:
    class Node:
        other: object

    alerts = 0
    for _ in replay([DEMO], DropEngine(threshold=1), "frames", ReplayStats()):
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.collect(1)  # (alive at a collection: frozen with the rest)
        del a, b
        alerts += 1
    assert alerts
    assert gc.collect() >= 2 * alerts  # freed once the replay ended
