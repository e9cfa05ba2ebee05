"""review24 (session 17): io.replay's collector policy (3d6901f) and a library caller's cycles.

``replay()`` (public: ``dropengine.replay``) freezes, while it runs, what survives a collection of
the older generations, process-wide, and unfreezes it all when its generator ends or is closed.
A caller that drops a replay before its end through a reference cycle (an object keeping its
replay and a bound method of itself: a common shape) never closes it: the cycle was frozen with
everything else, so no collection reaches it, the generator's ``finally`` never runs, the freeze
stays installed for the rest of the process, and the caller's buffered file in that cycle is never
flushed (0 bytes at exit; 053d02d: written). The same loss as break16's B16-2 / review22's R22-1,
which is why ``dropengine.fast.warm_up`` documents that a library call never freezes the collector.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay

_ROOT = Path(__file__).resolve().parents[1]
DEMO = _ROOT / "fixtures" / "demo_nba_frames.ndjson"


class _Consumer:
    """Keeps its replay and a bound method of itself (a reference cycle), as callers do."""

    def __init__(self) -> None:
        self.it = replay([DEMO], DropEngine(threshold=1), "frames", ReplayStats())
        self.on_alert = self.take

    def take(self, n: int) -> int:
        return sum(1 for _, _ in zip(range(n), self.it, strict=False))


def test_a_replay_dropped_in_a_cycle_leaves_the_collector_as_it_was() -> None:
    gc.unfreeze()
    callbacks = list(gc.callbacks)

    def use() -> None:
        consumer = _Consumer()
        assert consumer.on_alert(2) == 2
        gc.collect(1)  # (a collection of an older generation while the replay runs)

    use()  # the consumer, its replay unfinished, is cyclic garbage now
    gc.collect()
    try:
        assert gc.callbacks == callbacks, "the replay's freeze callback is still installed"
        assert gc.get_freeze_count() == 0
    finally:  # (whatever the outcome: the cycle collected, its replay closed, the collector as it was)
        gc.unfreeze()
        gc.collect()
        for cb in gc.callbacks[:]:
            if cb not in callbacks:
                gc.callbacks.remove(cb)


_CHILD = """
import gc, sys
from pathlib import Path
from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay

class Consumer:
    def __init__(self, out):
        self.out = open(out, "w")  # buffered: written when closed, or finalized
        self.it = replay([Path(sys.argv[1])], DropEngine(threshold=1), "frames", ReplayStats())
        self.on_alert = self.write  # a reference cycle

    def write(self, alert):
        self.out.write(alert.event_id + "\\n")

    def take(self, n):
        for _, a in zip(range(n), self.it):
            self.on_alert(a)

def main():
    c = Consumer(sys.argv[2])
    c.take(1)
    gc.collect(1)

main()
"""


def test_a_callers_buffered_file_in_that_cycle_is_written_at_exit(tmp_path: Path) -> None:
    out = tmp_path / "alerts.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(DEMO), str(out)], capture_output=True, text=True, timeout=120, cwd=_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count("\n") == 1
