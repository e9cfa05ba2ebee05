"""Issue 14 (session 20, par20): after the routing, the compiled signals path cuts the moves' tables
(the drops' and line moves' tables and the kernel's columns the values read) down to the moves read
afterwards (returned, completing a steam or counted in one), and renumbers the arrival order into
them, where those are at most ``batch._CUT_AT`` of the moves (steam's peak memory at 10M quotes).

Whether the tables are cut or not, the alerts table, the values (built lazily from the cut tables),
the counters and the alerts' rows are the pure path's: on adversarial signal streams (hypothesis),
with the cut forced (every time), never taken, and as configured.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis import batch

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of, signal_options, signal_streams

BOOKS = ("pinnacle", "fanduel", "betmgm")
#: (share, of): cut where the moves read are at most share/of of the moves. (1, 1): always;
#: (0, 1): only when none is read; the configured share.
CUTS = ((1, 1), (0, 1), batch._CUT_AT)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    signal_streams(),
    signal_options(),
    st.sampled_from(["steam", "steam", "line_move,steam", "odds_drop,steam", "odds_drop,line_move,steam", "odds_drop"]),
    st.sampled_from(CUTS),
)
def test_cut_tables_give_the_pure_paths_alerts_values_and_counters(
    quotes: list[Quote], opts: dict[str, Any], types: str, cut: tuple[int, int]
) -> None:
    require_fast()
    opts = {**opts, "types": types}
    frame = frame_of(quotes)
    pure = batch.detect_counted(frame, accel="pure", **opts)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_CUT_AT", cut)
        fast = batch.detect_counted(frame, accel="fast", **opts)
    assert fast.counters == pure.counters
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.alert_values() == pure.alert_values()
    assert fast.rows is not None and pure.rows is not None
    assert fast.rows.to_list() == pure.rows.to_list()


def test_the_cut_is_taken_and_renumbers_the_order() -> None:
    """A steam-only stream with moves that no steam counts: the cut runs (every table cut to the moves
    read) and the result is still the pure path's (the test above would pass with the cut never taken)."""
    require_fast()
    base = [
        # another event's line at pinnacle alone, moving back and forth (moves no steam counts: one book)
        *(
            Quote("americanfootball_nfl", "e2", "pinnacle", "h2h_home", (-110, -150)[i % 2], 1_000 + i)
            for i in range(12)
        ),
        # three books move event e1 the same way (a steam)
        *(Quote("americanfootball_nfl", "e1", b, "h2h_home", -110, 4_000 + i) for i, b in enumerate(BOOKS)),
        *(Quote("americanfootball_nfl", "e1", b, "h2h_home", -150, 5_000 + i) for i, b in enumerate(BOOKS)),
    ]
    frame = frame_of(base)
    opts = {"types": "steam", "steam_books": 3, "steam_window_ms": 60_000}
    seen: list[int] = []
    gather = batch._gather

    def spy(table: Any, names: Any, at: Any) -> Any:
        seen.append(len(at))
        return gather(table, names, at)

    pure = batch.detect_counted(frame, accel="pure", **opts)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_gather", spy)
        fast = batch.detect_counted(frame, accel="fast", **opts)
    assert pure.counters.steam == 1
    assert seen, "the tables were not cut"
    assert fast.counters == pure.counters
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.alert_values() == pure.alert_values()


def test_a_steam_completed_by_a_line_move_after_the_cut() -> None:
    """A steam of line moves (its completing move a line move, its side the move's line side) after
    line moves of another side that no steam counts: the cut line moves keep their own sides."""
    require_fast()
    quotes = [
        # another event's total moving at pinnacle alone (line moves of another side, not read again)
        *(
            Quote("americanfootball_nfl", "e2", "pinnacle", f"total_over@{(220.5, 221.5)[i % 2]}", -110, 1_000 + i)
            for i in range(12)
        ),
        # three books move event e1's spread from -3 to -4 (a steam of line moves)
        *(Quote("americanfootball_nfl", "e1", b, "spread_home@-3", -110, 4_000 + i) for i, b in enumerate(BOOKS)),
        *(Quote("americanfootball_nfl", "e1", b, "spread_home@-4", -110, 5_000 + i) for i, b in enumerate(BOOKS)),
    ]
    frame = frame_of(quotes)
    opts = {"types": "steam", "steam_books": 3, "steam_window_ms": 60_000, "line_threshold": 0.5}
    pure = batch.detect_counted(frame, accel="pure", **opts)
    fast = batch.detect_counted(frame, accel="fast", **opts)
    assert pure.counters.steam >= 1
    assert fast.counters == pure.counters
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.alert_values() == pure.alert_values()
