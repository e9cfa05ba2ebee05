"""fix14c: the compiled batch path's lazily built alert values (analysis.batch ``_LazyValues``)
are built once whatever reads them: threads reading at once share the one build (B14C-2's
thread-safety note), and a pickled result carries its values (B14C-2)."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from dropengine import Quote
from dropengine.analysis.batch import _LazyValues, detect_counted
from dropengine.core.alerts import Alert, Drop

from .conftest import require_fast
from .strategies import T0
from .test_h12_batch_equivalence import frame_of


def _drop(i: int) -> Drop:
    return Drop("basketball_nba", "ev1", "pin", "h2h_home", "game", "h2h", -110, -130 - i, -20 - i, "toward_favorite",
                T0 + i, T0 + i, 10)


def test_threads_reading_at_once_share_one_build() -> None:
    calls: list[int] = []
    start = threading.Barrier(8)

    def build() -> tuple[Alert, ...]:
        calls.append(1)
        time.sleep(0.05)  # widens the window in which a second reader would start a second build
        return tuple(_drop(i) for i in range(3))

    lazy = _LazyValues(build, 3, {})
    got: list[tuple[Alert, ...]] = []
    errors: list[BaseException] = []

    def read() -> None:
        start.wait()
        try:
            got.append(lazy.get())
        except BaseException as exc:  # (an AssertionError of a cleared builder: the defect)
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(calls) == 1
    assert len(got) == 8 and all(v is got[0] for v in got)


def test_a_failed_build_can_be_retried() -> None:
    tries: list[int] = []

    def build() -> tuple[Alert, ...]:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("first build fails")
        return (_drop(0),)

    lazy = _LazyValues(build, 1, {})
    with pytest.raises(RuntimeError, match="first build fails"):
        lazy.get()
    assert lazy.get() == (_drop(0),)
    assert len(tries) == 2


def test_pickled_unbuilt_result_keeps_values_and_number_types() -> None:
    require_fast()
    quotes = []
    for i, b in enumerate(("pin", "dk", "fd")):
        quotes.append(Quote("basketball_nba", "ev1", b, "spread_home@-3", -110, T0 + i))
        quotes.append(Quote("basketball_nba", "ev1", b, "spread_home@-4.5", -125.5, T0 + 10 + i))
    opts = {"types": "odds_drop,line_move,steam", "steam_books": 2}
    frame = frame_of(quotes)
    fast = detect_counted(frame, accel="fast", **opts)
    names = ["prev", "new", "delta", "prev_line", "new_line", "points", "lag_ms", "last_update"]
    back = pickle.loads(pickle.dumps(fast))
    again = pickle.loads(pickle.dumps(back))
    pure = detect_counted(frame, accel="pure", **opts)
    assert back.alert_values() == again.alert_values() == pure.alert_values() == fast.alert_values()
    assert back.number_types(names) == fast.number_types(names)
    assert back.alerts.equals(fast.alerts) and back.counters == fast.counters
