"""fix14c: the compiled batch path's lazily built alert values (analysis.batch ``_LazyValues``)
are built once whatever reads them: threads reading at once share the one build (B14C-2's
thread-safety note), and a pickled result carries its values (B14C-2); the types it declares for
its number and time columns without building them are the values' (B14C-1, B14C-4)."""

from __future__ import annotations

import pickle
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from dropengine import Quote
from dropengine.analysis.batch import _LazyValues, detect_counted
from dropengine.core.alerts import NUMBER_FIELDS, TIME_FIELDS, Alert, Drop

from .conftest import require_fast
from .strategies import T0, signal_options, signal_streams_with_options
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


_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                              HealthCheck.data_too_large])


@_SETTINGS
@given(signal_streams_with_options(signal_options()))
def test_number_types_of_numbers_and_times_agree_across_paths(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """B14C-4 (and B14C-1): for every number and time column of the table, the compiled path's
    ``number_types`` (answered from its columns) is the pure path's and the types the values hold."""
    require_fast()
    quotes, opts = case
    frame = frame_of(quotes)
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    names = [c for c in fast.alerts.columns if c in NUMBER_FIELDS or c in TIME_FIELDS]
    declared = fast.number_types(names)
    assert declared == pure.number_types(names)
    values = fast.alert_values()
    assert declared == {c: {type(v) for a in values if (v := getattr(a, c, None)) is not None} for c in names}
