"""break25 (session 18), B25-2: past the compiled pass's int32 row limit, ``accel="auto"`` is a
usage error where the pure path (and the compiled path at 7c16d19, int64 then) detects.

Since 72268d3 the compiled pass keeps row codes and ids as int32 and ``kernel.detect_pass`` refuses
more than ``MAX_ROWS`` (2**31 - 1) rows with a ConfigError (``replay --engine batch``: exit 2), and
``detect_counted`` has no fallback to the pure path inside a call. polars (u32 row index) takes up to
2**32 - 1 rows, so a table of 2**31 .. 2**32 - 1 rows with numba installed is refused under
``"auto"``, which promises identical results with or without the accelerator. The limit is lowered
here (2**31 rows cannot be built on a test machine); the rows and the bar are the real ones.
"""

from __future__ import annotations

import msgspec
import pytest

from dropengine import Quote
from dropengine.analysis.batch import detect_counted

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of

PRICES = (-110, -150, -110, -200, 120, -105, 150)


def _quotes() -> list[Quote]:
    return [
        Quote(
            sport_key="basketball_nba",
            event_id="E",
            bookmaker="b",
            side="h2h_home",
            price=p,
            last_update=1_747_000_000_000 + 1000 * i,
        )
        for i, p in enumerate(PRICES)
    ]


def test_under_the_limit_auto_is_the_pure_path() -> None:
    require_fast()
    df = frame_of(_quotes())
    auto, pure = detect_counted(df, threshold=5, accel="auto"), detect_counted(df, threshold=5, accel="pure")
    assert msgspec.json.encode(auto.alert_values()) == msgspec.json.encode(pure.alert_values())
    assert auto.counters == pure.counters and auto.alerts.height == 6


# B25-2 (a strict xfail until batch18's 801e7d7): more rows than the compiled pass's int32 limit
# were a ConfigError under accel='auto' (no fallback; 72268d3)
def test_past_the_compiled_row_limit_auto_still_detects(monkeypatch: pytest.MonkeyPatch) -> None:
    require_fast()
    import dropengine.fast as fast
    from dropengine.fast import kernel

    df = frame_of(_quotes())
    pure = detect_counted(df, threshold=5, accel="pure")
    # (the limit as if the table had 2**31 rows: 3 rows here, 7 in the table)
    monkeypatch.setattr(fast, "MAX_ROWS", 3)
    monkeypatch.setattr(kernel, "MAX_ROWS", 3)
    auto = detect_counted(df, threshold=5, accel="auto")
    assert msgspec.json.encode(auto.alert_values()) == msgspec.json.encode(pure.alert_values())
    assert auto.counters == pure.counters
