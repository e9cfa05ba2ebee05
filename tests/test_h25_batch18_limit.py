"""Issue 14 (session 18, batch18): past the compiled pass's int32 row limit (``fast.MAX_ROWS``,
2**31 - 1 rows) ``accel="auto"`` detects by the pure path, as without numba (break25's B25-2: it was
a ConfigError), for a DataFrame and a LazyFrame; ``accel="fast"`` is a ConfigError naming the rows.
The limit is lowered here (2**31 rows cannot be built on a test machine)."""

from __future__ import annotations

import msgspec
import pytest

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.errors import ConfigError

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of

PRICES = (-110, -150, -110, -200, 120, -105, 150)


def _quotes() -> list[Quote]:
    return [
        Quote(sport_key="s", event_id="E", bookmaker="b", side="h2h_home", price=p, last_update=1_000 * (i + 1))
        for i, p in enumerate(PRICES)
    ]


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("limit", [3, 7])
def test_past_the_row_limit_auto_is_the_pure_path(monkeypatch: pytest.MonkeyPatch, lazy: bool, limit: int) -> None:
    require_fast()
    import dropengine.fast as fast
    from dropengine.fast import kernel

    df = frame_of(_quotes())
    pure = detect_counted(df, threshold=5, accel="pure")
    monkeypatch.setattr(fast, "MAX_ROWS", limit)
    monkeypatch.setattr(kernel, "MAX_ROWS", limit)
    auto = detect_counted(df.lazy() if lazy else df, threshold=5, accel="auto")
    assert msgspec.json.encode(auto.alert_values()) == msgspec.json.encode(pure.alert_values())
    assert auto.counters == pure.counters and auto.alerts.height == 6
    if limit < df.height:
        with pytest.raises(ConfigError, match="7 rows"):
            detect_counted(df.lazy() if lazy else df, threshold=5, accel="fast")
    else:
        assert detect_counted(df, threshold=5, accel="fast").counters == pure.counters
